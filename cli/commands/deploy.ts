import { createPublicClient, createWalletClient, defineChain, http } from 'viem';
import { z } from 'zod';
import { abiHash } from '../../chain/abi/contracts.generated.js';
import { deployCore } from '../../chain/devnet/index.js';
import { DEFAULT_KEYSTORE_DIR } from '../../chain/keystore/index.js';
import { DEFAULT_MANIFEST_PATH, type Manifest, writeManifest } from '../../chain/manifest/index.js';
import { explainNetworkError, unlockKey } from '../context.js';
import {
  checkDeploymentOptions,
  deploymentOptions,
  deploymentOptionsHelp,
  deploymentOptionsShape,
  deploymentParameters,
} from '../deploymentOptions.js';
import { type Io, json } from '../io.js';
import { arg, parseCommandLine, parseOptions } from '../options.js';

export const deployHelp = `gridcell deploy: deploy gridcell to any EVM chain

Deploys the cell registry, the wallets, the clearing pool and the debt channels with the key
--key from the keystore, authorises the pool and the channels in the wallets, and writes the
deployment manifest.

Options:
  --rpc URL                the chain's JSON-RPC endpoint (required)
  --key NAME               deployer key (password from GRIDCELL_PASSWORD or a prompt)
  --token ADDRESS          the settlement token (a plain ERC-20 with ERC-2612 permit)
  --devnet-token           deploy the devnet token (dEUR, open faucet) instead: test chains only
${deploymentOptionsHelp}
  --keystore DIR           key files (default ${DEFAULT_KEYSTORE_DIR})
  --manifest FILE          where to write the manifest (default ${DEFAULT_MANIFEST_PATH})
  --json                   print the manifest as JSON
  -h, --help               show this help

The deployer remains the wallets' admin, who may authorise more markets; renounce it once
the deployment is complete (docs/contracts.md).
`;

const schema = z
  .object({
    rpc: z.string().url('expected an http(s) URL'),
    key: z.string().min(1, 'expected a key name'),
    token: arg.address.optional(),
    'devnet-token': z.boolean().default(false),
    ...deploymentOptionsShape,
    keystore: z.string().default(DEFAULT_KEYSTORE_DIR),
    manifest: z.string().default(DEFAULT_MANIFEST_PATH),
    json: z.boolean().default(false),
  })
  .refine((o) => o.token !== undefined || o['devnet-token'], {
    message: 'pass --token ADDRESS, or --devnet-token on a test chain',
    path: ['token'],
  })
  .refine((o) => !(o.token !== undefined && o['devnet-token']), {
    message: 'pass --token or --devnet-token, not both',
    path: ['devnet-token'],
  })
  .superRefine(checkDeploymentOptions);

/** `gridcell deploy` */
export async function deployCommand(argv: string[], io: Io): Promise<void> {
  const { values } = parseCommandLine(
    argv,
    {
      rpc: { type: 'string' },
      key: { type: 'string' },
      token: { type: 'string' },
      'devnet-token': { type: 'boolean' },
      ...deploymentOptions,
      keystore: { type: 'string' },
      manifest: { type: 'string' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
    'deploy',
  );
  if (values.help) {
    io.out(deployHelp);
    return;
  }
  const o = parseOptions(schema, values, 'deploy');
  const account = await unlockKey(io, o.keystore, o.key);
  const log = o.json ? () => {} : (line: string) => io.out(`deploy: ${line}\n`);
  let chainId: number;
  const probe = createPublicClient({ transport: http(o.rpc) });
  try {
    chainId = await probe.getChainId();
  } catch (error) {
    throw explainNetworkError(error, o.rpc);
  }
  const chain = defineChain({
    id: chainId,
    name: `chain ${chainId}`,
    nativeCurrency: { name: 'Ether', symbol: 'ETH', decimals: 18 },
    rpcUrls: { default: { http: [o.rpc] } },
  });
  const publicClient = createPublicClient({ chain, transport: http(o.rpc), pollingInterval: 200 });
  const walletClient = createWalletClient({ chain, transport: http(o.rpc), account });
  log(`deploying to chain ${chainId} at ${o.rpc} from ${account.address}`);
  const { pool, channels } = deploymentParameters(o);
  let deployment: Awaited<ReturnType<typeof deployCore>>;
  try {
    deployment = await deployCore({
      publicClient,
      walletClient,
      pool,
      channels,
      ...(o.token ? { token: o.token } : {}),
      onStep: log,
    });
  } catch (error) {
    throw explainNetworkError(error, o.rpc);
  }
  const manifest: Manifest = {
    version: 1,
    chainId,
    rpcUrl: o.rpc,
    deploymentBlock: deployment.deploymentBlock,
    abiHash,
    pool,
    channels,
    contracts: {
      token: deployment.token,
      registry: deployment.registry,
      wallets: deployment.wallets,
      pool: deployment.pool,
      channels: deployment.channels,
    },
  };
  const path = writeManifest(o.manifest, manifest);
  if (o.json) io.out(json(manifest));
  else log(`wrote the deployment manifest to ${path}`);
}
