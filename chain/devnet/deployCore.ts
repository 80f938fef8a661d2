import {
  type Account,
  type Address,
  type Chain,
  getAddress,
  type Hex,
  type PublicClient,
  type Transport,
  type WalletClient,
} from 'viem';
import {
  cellRegistryAbi,
  cellRegistryBytecode,
  cellWalletsAbi,
  cellWalletsBytecode,
  clearingPoolAbi,
  clearingPoolBytecode,
  devnetTokenAbi,
  devnetTokenBytecode,
} from '../abi/contracts.generated.js';

export interface PoolParameters {
  intervalSeconds: bigint;
  gateClosureLead: bigint;
  settlementWindow: bigint;
  maxOrdersPerInterval: bigint;
}

/** IDEA's 15-minute market; the gate closes 5 minutes before delivery; 1 hour to settle. */
export const defaultPoolParameters: PoolParameters = {
  intervalSeconds: 900n,
  gateClosureLead: 300n,
  settlementWindow: 3600n,
  maxOrdersPerInterval: 1200n,
};

export interface DeployCoreParameters {
  publicClient: PublicClient;
  walletClient: WalletClient<Transport, Chain, Account>;
  pool: PoolParameters;
  /** The settlement token; a DevnetToken is deployed when absent. */
  token?: Address;
  /** Called after each step, for progress output. */
  onStep?: (step: string) => void;
}

export interface CoreDeployment {
  token: Address;
  registry: Address;
  wallets: Address;
  pool: Address;
  deploymentBlock: bigint;
}

/**
 * Deploys the TE core: token (devnets), cell registry, wallets, clearing pool, and
 * authorises the pool as a market of the wallets.
 */
export async function deployCore(parameters: DeployCoreParameters): Promise<CoreDeployment> {
  const { publicClient, walletClient, pool } = parameters;
  const step = parameters.onStep ?? (() => {});
  const admin = walletClient.account.address;

  async function deployed(hash: Hex, what: string): Promise<{ address: Address; block: bigint }> {
    const receipt = await publicClient.waitForTransactionReceipt({ hash });
    if (receipt.status !== 'success' || !receipt.contractAddress) throw new Error(`deploying ${what} failed`);
    const address = getAddress(receipt.contractAddress);
    step(`deployed ${what} at ${address}`);
    return { address, block: receipt.blockNumber };
  }

  let token = parameters.token;
  let firstBlock: bigint | undefined;
  if (!token) {
    const t = await deployed(
      await walletClient.deployContract({ abi: devnetTokenAbi, bytecode: devnetTokenBytecode }),
      'DevnetToken',
    );
    token = t.address;
    firstBlock = t.block;
  }
  const registry = await deployed(
    await walletClient.deployContract({ abi: cellRegistryAbi, bytecode: cellRegistryBytecode }),
    'CellRegistry',
  );
  const wallets = await deployed(
    await walletClient.deployContract({
      abi: cellWalletsAbi,
      bytecode: cellWalletsBytecode,
      args: [token, registry.address, admin],
    }),
    'CellWallets',
  );
  const clearingPool = await deployed(
    await walletClient.deployContract({
      abi: clearingPoolAbi,
      bytecode: clearingPoolBytecode,
      args: [
        registry.address,
        wallets.address,
        pool.intervalSeconds,
        pool.gateClosureLead,
        pool.settlementWindow,
        pool.maxOrdersPerInterval,
      ],
    }),
    'ClearingPool',
  );
  const hash = await walletClient.writeContract({
    address: wallets.address,
    abi: cellWalletsAbi,
    functionName: 'addMarket',
    args: [clearingPool.address],
  });
  await publicClient.waitForTransactionReceipt({ hash });
  step('authorised the pool as a market of the wallets');
  return {
    token,
    registry: registry.address,
    wallets: wallets.address,
    pool: clearingPool.address,
    deploymentBlock: firstBlock ?? registry.block,
  };
}
