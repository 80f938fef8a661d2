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
  debtChannelsAbi,
  debtChannelsBytecode,
  devnetTokenAbi,
  devnetTokenBytecode,
} from '../abi/contracts.generated.js';
import { BaseError } from '../errors/index.js';

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

/** The debt channels' parameters; their interval length is the pool's. */
export interface ChannelParameters {
  /** How long a unilateral close stays open to newer vouchers, s. */
  challengeWindow: bigint;
  /** How long a collateral withdrawal waits, s; longer than the challenge window. */
  withdrawalDelay: bigint;
}

/**
 * A 4-hour challenge window (docs/channels.md: a rollup needs 24 h or more) and a withdrawal
 * delay an hour longer, so a seller always has the window to answer a buyer leaving.
 */
export const defaultChannelParameters: ChannelParameters = {
  challengeWindow: 14_400n,
  withdrawalDelay: 18_000n,
};

export interface DeployCoreParameters {
  publicClient: PublicClient;
  walletClient: WalletClient<Transport, Chain, Account>;
  pool: PoolParameters;
  channels: ChannelParameters;
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
  channels: Address;
  deploymentBlock: bigint;
}

/**
 * Deploys the TE core: token (devnets), cell registry, wallets, clearing pool, debt channels,
 * and authorises the pool and the channels as markets of the wallets. The deployer stays the
 * wallets' admin (docs/contracts.md says when to renounce it).
 */
export async function deployCore(parameters: DeployCoreParameters): Promise<CoreDeployment> {
  const { publicClient, walletClient, pool, channels } = parameters;
  // The channels' constructor refuses anything else; say so before anything is paid for.
  const { challengeWindow, withdrawalDelay } = channels;
  if (!(challengeWindow > 0n && withdrawalDelay > challengeWindow && withdrawalDelay < 2n ** 32n - 1n)) {
    throw new BaseError('invalid channel parameters', {
      details: `expected 0 < challengeWindow < withdrawalDelay < 2^32 - 1, received challengeWindow=${challengeWindow}, withdrawalDelay=${withdrawalDelay}`,
    });
  }
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
  const debtChannels = await deployed(
    await walletClient.deployContract({
      abi: debtChannelsAbi,
      bytecode: debtChannelsBytecode,
      args: [
        registry.address,
        wallets.address,
        pool.intervalSeconds,
        channels.challengeWindow,
        channels.withdrawalDelay,
      ],
    }),
    'DebtChannels',
  );
  for (const [market, what] of [
    [clearingPool.address, 'the pool'],
    [debtChannels.address, 'the channels'],
  ] as const) {
    const hash = await walletClient.writeContract({
      address: wallets.address,
      abi: cellWalletsAbi,
      functionName: 'addMarket',
      args: [market],
    });
    const receipt = await publicClient.waitForTransactionReceipt({ hash });
    if (receipt.status !== 'success') throw new Error(`authorising ${what} in the wallets failed`);
    step(`authorised ${what} as a market of the wallets`);
  }
  return {
    token,
    registry: registry.address,
    wallets: wallets.address,
    pool: clearingPool.address,
    channels: debtChannels.address,
    deploymentBlock: firstBlock ?? registry.block,
  };
}
