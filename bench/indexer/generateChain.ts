/**
 * A devnet with many pool events for the indexer benchmark: `cells` prosumer cells, then
 * sell orders signed by their agents and submitted in batches of up to `batch` orders
 * (one transaction each), spread over intervals at most 16 orders per cell (the pool's cap).
 */
import { createPublicClient, createWalletClient, defineChain, http, parseEventLogs } from 'viem';
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts';
import { cellRegistryAbi, clearingPoolAbi } from '../../chain/abi/contracts.generated.js';
import {
  type Devnet,
  defaultChannelParameters,
  defaultPoolParameters,
  devnetAccount,
  startDevnet,
} from '../../chain/devnet/index.js';
import { gridcellDomain, type Order, signOrder, toSignedOrderArg } from '../../chain/typed-data/index.js';
import { CellType, Side } from '../../chain/units/index.js';

export interface GenerateChainParameters {
  port: number;
  manifestPath: string;
  /** Pool events wanted (OrderSubmitted). */
  orders: number;
  cells?: number;
  /** Orders per transaction (default 1000). */
  batch?: number;
  log?: (line: string) => void;
  /** anvil --state: the chain is written here when the devnet stops (to reuse it). */
  stateFile?: string;
}

export interface GeneratedChain {
  devnet: Devnet;
  orders: number;
  intervals: bigint[];
  firstBlock: bigint;
  lastBlock: bigint;
}

/** Starts anvil, deploys gridcell and fills the pool; the caller stops `devnet`. */
export async function generateChain(parameters: GenerateChainParameters): Promise<GeneratedChain> {
  const log = parameters.log ?? (() => {});
  const cellCount = parameters.cells ?? 100;
  const batch = parameters.batch ?? 1000;
  const perCell = 10;
  const devnet = await startDevnet({
    port: parameters.port,
    pool: { ...defaultPoolParameters, maxOrdersPerInterval: 1200n },
    channels: defaultChannelParameters,
    manifestPath: parameters.manifestPath,
    fundedAccounts: 1,
    ...(parameters.stateFile ? { stateFile: parameters.stateFile } : {}),
  });
  const { manifest } = devnet;
  const chain = defineChain({
    id: manifest.chainId,
    name: 'bench',
    nativeCurrency: { name: 'Ether', symbol: 'ETH', decimals: 18 },
    rpcUrls: { default: { http: [devnet.anvil.rpcUrl] } },
  });
  const transport = http(devnet.anvil.rpcUrl, { timeout: 120_000 });
  const publicClient = createPublicClient({ chain, transport, pollingInterval: 20 });
  const deployer = devnetAccount(0);
  const wallet = createWalletClient({ chain, transport, account: deployer });
  const firstBlock = await publicClient.getBlockNumber({ cacheTime: 0 });

  const cells: { id: bigint; agent: ReturnType<typeof privateKeyToAccount> }[] = [];
  for (let i = 0; i < cellCount; i++) {
    const agent = privateKeyToAccount(generatePrivateKey());
    const hash = await wallet.writeContract({
      address: manifest.contracts.registry,
      abi: cellRegistryAbi,
      functionName: 'connect',
      args: [deployer.address, CellType.Prosumer, 0n, 100_000, 100_000, agent.address, []],
    });
    const receipt = await publicClient.waitForTransactionReceipt({ hash });
    const [event] = parseEventLogs({ abi: cellRegistryAbi, eventName: 'CellConnected', logs: receipt.logs });
    if (!event) throw new Error('connect emitted no CellConnected');
    cells.push({ id: event.args.cellId, agent });
  }
  log(`${cellCount} cells connected`);

  const L = manifest.pool.intervalSeconds;
  const now = (await publicClient.getBlock()).timestamp;
  const firstInterval = now / L + 2n;
  const perInterval = cellCount * perCell;
  const domain = gridcellDomain(manifest.chainId, manifest.contracts.pool);
  const intervals: bigint[] = [];
  let submitted = 0;
  let pending: Awaited<ReturnType<typeof signOrder>>[] = [];
  const started = Date.now();
  // One transaction in flight while the next batch is signed: anvil executes, we sign.
  let inFlight: Promise<void> = Promise.resolve();
  let queued = 0;
  const flush = async () => {
    if (pending.length === 0) return;
    const orders = pending;
    pending = [];
    queued += orders.length;
    await inFlight;
    inFlight = (async () => {
      const hash = await wallet.writeContract({
        address: manifest.contracts.pool,
        abi: clearingPoolAbi,
        functionName: 'submitOrders',
        args: [orders.map(toSignedOrderArg)],
        gas: 29_000_000n,
      });
      const receipt = await publicClient.waitForTransactionReceipt({ hash });
      if (receipt.status !== 'success')
        throw new Error(`submitOrders reverted in block ${receipt.blockNumber}`);
      submitted += orders.length;
      if (submitted % 10_000 === 0 || submitted === parameters.orders) {
        log(
          `${submitted} orders submitted (${Math.round(submitted / ((Date.now() - started) / 1000))} orders/s)`,
        );
      }
    })();
  };
  for (let t = firstInterval; queued + pending.length < parameters.orders; t++) {
    intervals.push(t);
    for (let k = 0; k < perInterval && queued + pending.length < parameters.orders; k++) {
      const cell = cells[k % cellCount] as (typeof cells)[number];
      const order: Order = {
        cell: cell.id,
        interval: t,
        side: Side.Sell,
        energyWh: 500n + BigInt((k * 37) % 2000),
        limitPrice: 150_000n + BigInt((k * 7919) % 100_000),
        nonce: Math.floor(k / cellCount),
        expiry: t * L,
      };
      pending.push(await signOrder(cell.agent, domain, order));
      if (pending.length >= batch) await flush();
    }
  }
  await flush();
  await inFlight;
  // Empty blocks on top, so every event is final for both indexers (Ponder treats the last
  // blocks of a devnet as unfinalised and indexes them one block at a time).
  await publicClient.request({ method: 'anvil_mine' as never, params: ['0x40', '0x0'] as never });
  const lastBlock = await publicClient.getBlockNumber({ cacheTime: 0 });
  return { devnet, orders: submitted, intervals, firstBlock, lastBlock };
}
