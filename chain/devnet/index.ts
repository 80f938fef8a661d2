/**
 * A one-command devnet: anvil from the npm registry, the TE core deployed, test accounts
 * funded with the devnet token, and the manifest written.
 */

import { existsSync } from 'node:fs';
import {
  type Account,
  createPublicClient,
  createWalletClient,
  defineChain,
  http,
  type PublicClient,
} from 'viem';
import { mnemonicToAccount } from 'viem/accounts';
import { abiHash, devnetTokenAbi } from '../abi/contracts.generated.js';
import { type Manifest, readManifest, writeManifest } from '../manifest/index.js';
import {
  type ChannelParameters,
  type CoreDeployment,
  deployCore,
  type PoolParameters,
} from './deployCore.js';
import { type Anvil, startAnvil } from './startAnvil.js';

export {
  type ChannelParameters,
  type CoreDeployment,
  defaultChannelParameters,
  defaultPoolParameters,
  deployCore,
  type PoolParameters,
} from './deployCore.js';
export { type Anvil, AnvilStartError, anvilBinaryPath, startAnvil } from './startAnvil.js';

/** anvil's well-known development mnemonic: its keys are public, use them on devnets only. */
export const DEVNET_MNEMONIC = 'test test test test test test test test test test test junk';

/** The i-th anvil development account. */
export function devnetAccount(index: number): Account {
  return mnemonicToAccount(DEVNET_MNEMONIC, { addressIndex: index });
}

export interface StartDevnetParameters {
  port: number;
  chainId?: number;
  stateFile?: string;
  pool: PoolParameters;
  channels: ChannelParameters;
  manifestPath: string;
  /** How many development accounts get devnet tokens (100,000 dEUR each). */
  fundedAccounts?: number;
  onStep?: (step: string) => void;
}

export interface Devnet {
  anvil: Anvil;
  manifest: Manifest;
  manifestPath: string;
  deployment: CoreDeployment;
  stop(): Promise<void>;
}

function reuseable(path: string, chainId: number): Manifest | undefined {
  try {
    const manifest = readManifest(path);
    return manifest.chainId === chainId && manifest.abiHash === abiHash ? manifest : undefined;
  } catch {
    return undefined;
  }
}

/** Whether every contract the manifest names has code on the chain. */
async function deployedAt(publicClient: PublicClient, manifest: Manifest): Promise<boolean> {
  const codes = await Promise.all(
    Object.values(manifest.contracts).map((address) => publicClient.getCode({ address })),
  );
  return codes.every((code) => code !== undefined && code !== '0x');
}

/** Starts anvil, deploys the TE core, funds test accounts and writes the manifest. */
export async function startDevnet(parameters: StartDevnetParameters): Promise<Devnet> {
  const step = parameters.onStep ?? (() => {});
  const anvil = await startAnvil({
    port: parameters.port,
    ...(parameters.chainId !== undefined ? { chainId: parameters.chainId } : {}),
    ...(parameters.stateFile !== undefined ? { stateFile: parameters.stateFile } : {}),
  });
  step(`anvil listening on ${anvil.rpcUrl} (chain id ${anvil.chainId})`);
  try {
    const chain = defineChain({
      id: anvil.chainId,
      name: 'gridcell devnet',
      nativeCurrency: { name: 'Ether', symbol: 'ETH', decimals: 18 },
      rpcUrls: { default: { http: [anvil.rpcUrl] } },
    });
    const transport = http(anvil.rpcUrl);
    const publicClient = createPublicClient({ chain, transport, pollingInterval: 50 });
    const deployer = devnetAccount(0);
    const walletClient = createWalletClient({ chain, transport, account: deployer });

    // A chain reloaded from --state still holds the deployment its manifest names: reuse it,
    // so the cells and balances made before the restart are still there.
    if (parameters.stateFile && existsSync(parameters.manifestPath)) {
      const previous = reuseable(parameters.manifestPath, anvil.chainId);
      if (previous && (await deployedAt(publicClient, previous))) {
        step(
          `reloaded the chain from ${parameters.stateFile}; the deployment in ${parameters.manifestPath} is live`,
        );
        const deployment: CoreDeployment = {
          ...previous.contracts,
          deploymentBlock: previous.deploymentBlock,
        };
        return {
          anvil,
          manifest: previous,
          manifestPath: parameters.manifestPath,
          deployment,
          stop: () => anvil.stop(),
        };
      }
    }
    const deployment = await deployCore({
      publicClient,
      walletClient,
      pool: parameters.pool,
      channels: parameters.channels,
      onStep: step,
    });

    const funded = parameters.fundedAccounts ?? 10;
    for (let i = 0; i < funded; i++) {
      const hash = await walletClient.writeContract({
        address: deployment.token,
        abi: devnetTokenAbi,
        functionName: 'faucet',
        args: [devnetAccount(i).address, 100_000_000_000n],
      });
      await publicClient.waitForTransactionReceipt({ hash });
    }
    step(`funded ${funded} development accounts with 100,000 dEUR each`);

    const manifest: Manifest = {
      version: 1,
      chainId: anvil.chainId,
      rpcUrl: anvil.rpcUrl,
      deploymentBlock: deployment.deploymentBlock,
      abiHash,
      pool: parameters.pool,
      channels: parameters.channels,
      contracts: {
        token: deployment.token,
        registry: deployment.registry,
        wallets: deployment.wallets,
        pool: deployment.pool,
        channels: deployment.channels,
      },
    };
    const manifestPath = writeManifest(parameters.manifestPath, manifest);
    step(`wrote the deployment manifest to ${manifestPath}`);
    return { anvil, manifest, manifestPath, deployment, stop: () => anvil.stop() };
  } catch (error) {
    await anvil.stop();
    throw error;
  }
}
