/**
 * Test helpers for the indexer and GraphQL tests: a full pool interval on the shared anvil
 * (cells, orders, clearing, readings, settlement), waiting with a deadline, and comparing a
 * database with the chain.
 */
import { createTestClient, http } from 'viem';
import { clearingPoolAbi, debtChannelsAbi } from '../../chain/abi/contracts.generated.js';
import { quoteClearing } from '../../chain/clearing/quoteClearing.js';
import { freshInterval } from '../../chain/test/freshInterval.js';
import type { Kit, TestCell } from '../../chain/test/kit.js';
import {
  channelId,
  type Deal,
  type MeterReading,
  type Order,
  signDeal,
  signMeterReading,
  signOrder,
  signVoucher,
  toChannelSignature,
  toSignedOrderArg,
  toSignedReadingArg,
  toSignedVoucherArg,
} from '../../chain/typed-data/index.js';
import { CellType, Side } from '../../chain/units/index.js';
import type { Database } from '../database/index.js';
import { derivedTables } from '../schema/tables.js';

/** Polls `check` until it returns a value (not undefined/false) or the deadline passes. */
export async function waitFor<T>(
  what: string,
  check: () => Promise<T | undefined | false> | T | undefined | false,
  timeoutMs = 30_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined && value !== false) return value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) {
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${String(last)}` : ''}`,
      );
    }
    await new Promise((r) => setTimeout(r, 25));
  }
}

export function testClientFor(kit: Kit) {
  return createTestClient({ chain: kit.chain, mode: 'anvil', transport: http(kit.rpcUrl) });
}

export interface IntervalRun {
  interval: bigint;
  sellers: TestCell[];
  buyers: TestCell[];
}

/** Submits two asks and two bids for a fresh interval (no clearing yet). */
export async function submitBook(kit: Kit): Promise<IntervalRun & { orders: Order[] }> {
  const L = kit.manifest.pool.intervalSeconds;
  const sellers = [await kit.newCell(CellType.Prosumer), await kit.newCell(CellType.StochasticGenerator)];
  const buyers = [await kit.newCell(CellType.PassiveConsumer), await kit.newCell(CellType.ActiveConsumer)];
  const interval = await freshInterval(kit);
  const expiry = interval * L;
  const order = (cell: TestCell, side: number, energyWh: bigint, limitPrice: bigint): Order => ({
    cell: cell.id,
    interval,
    side,
    energyWh,
    limitPrice,
    nonce: 0,
    expiry,
  });
  const [s0, s1] = sellers as [TestCell, TestCell];
  const [b0, b1] = buyers as [TestCell, TestCell];
  const book = [
    { cell: s0, order: order(s0, Side.Sell, 3000n, 180_000n) },
    { cell: b0, order: order(b0, Side.Buy, 2000n, 260_000n) },
    { cell: s1, order: order(s1, Side.Sell, 2000n, 220_000n) },
    { cell: b1, order: order(b1, Side.Buy, 2500n, 220_000n) },
  ];
  const signed = await Promise.all(
    book.map(({ cell, order }) => signOrder(cell.agent, kit.poolDomain, order)),
  );
  await kit.write(await kit.freshAccount(), {
    address: kit.manifest.contracts.pool,
    abi: clearingPoolAbi,
    functionName: 'submitOrders',
    args: [signed.map(toSignedOrderArg)],
  });
  return { interval, sellers, buyers, orders: book.map((b) => b.order) };
}

/** Clears the interval of `run` at gate closure (moves the chain clock). */
export async function clearBook(kit: Kit, run: IntervalRun & { orders: Order[] }): Promise<void> {
  const L = kit.manifest.pool.intervalSeconds;
  await kit.setChainTime(run.interval * L - kit.manifest.pool.gateClosureLead);
  const quote = quoteClearing(run.orders);
  await kit.write(await kit.freshAccount(), {
    address: kit.manifest.contracts.pool,
    abi: clearingPoolAbi,
    functionName: 'clear',
    args: [run.interval, quote.priceLow, quote.priceHigh, run.orders],
  });
}

/** After delivery: every meter reports its order's energy; the pool settles them. */
export async function settleBook(kit: Kit, run: IntervalRun & { orders: Order[] }): Promise<void> {
  const L = kit.manifest.pool.intervalSeconds;
  await kit.setChainTime((run.interval + 1n) * L);
  const cells = [run.sellers[0], run.buyers[0], run.sellers[1], run.buyers[1]] as TestCell[];
  const readings = await Promise.all(
    run.orders.map((order, i) => {
      const cell = cells[i] as TestCell;
      const reading: MeterReading = {
        meter: cell.meter.address,
        cell: cell.id,
        interval: run.interval,
        importWh: order.side === Side.Buy ? order.energyWh : 0n,
        exportWh: order.side === Side.Sell ? order.energyWh : 0n,
        importCumWh: order.side === Side.Buy ? order.energyWh : 0n,
        exportCumWh: order.side === Side.Sell ? order.energyWh : 0n,
        seq: 1n,
      };
      return signMeterReading(cell.meter, kit.poolDomain, reading);
    }),
  );
  const relayer = await kit.freshAccount();
  await kit.write(relayer, {
    address: kit.manifest.contracts.pool,
    abi: clearingPoolAbi,
    functionName: 'settle',
    args: [readings.map(toSignedReadingArg)],
  });
  await kit.write(relayer, {
    address: kit.manifest.contracts.pool,
    abi: clearingPoolAbi,
    functionName: 'claim',
    // Buyers first, then sellers (the pool pays sellers from what buyers paid).
    args: [run.interval, [...run.buyers, ...run.sellers].map((c) => c.id)],
  });
}

/** Orders, clearing, readings and settlement of one interval. */
export async function runInterval(kit: Kit): Promise<IntervalRun> {
  const run = await submitBook(kit);
  await clearBook(kit, run);
  await settleBook(kit, run);
  return run;
}

/**
 * A debt channel: a prosumer sells to a passive consumer (2000 Wh per interval at 0.20/kWh,
 * four intervals, 1.6 tokens collateral); the seller redeems a voucher for 1500 Wh (0.3 tokens)
 * backed by its meter's reading.
 */
export async function openChannelWithVoucher(kit: Kit) {
  const L = kit.manifest.pool.intervalSeconds;
  const seller = await kit.newCell(CellType.Prosumer);
  const buyer = await kit.newCell(CellType.PassiveConsumer);
  const now = await kit.chainTime();
  const first = now / L + 2n;
  const deal: Deal = {
    buyerCell: buyer.id,
    sellerCell: seller.id,
    sellerMeter: seller.meter.address,
    pricePerKWh: 200_000n,
    maxWhPerInterval: 2000n,
    firstInterval: first,
    lastInterval: first + 3n,
    collateral: 1_600_000n,
    expiry: now + 3600n,
    salt: 1n,
  };
  const id = channelId(kit.channelsDomain, deal);
  const channels = { address: kit.manifest.contracts.channels, abi: debtChannelsAbi } as const;
  const [b, s] = await Promise.all([
    signDeal(buyer.agent, kit.channelsDomain, deal),
    signDeal(seller.agent, kit.channelsDomain, deal),
  ]);
  await kit.write(await kit.freshAccount(), {
    ...channels,
    functionName: 'open',
    args: [deal, toChannelSignature(b.signature), toChannelSignature(s.signature)],
  });
  const reading = await signMeterReading(seller.meter, kit.channelsDomain, {
    meter: seller.meter.address,
    cell: seller.id,
    interval: first,
    importWh: 0n,
    exportWh: 1500n,
    importCumWh: 0n,
    exportCumWh: 11_500n,
    seq: first,
  });
  const voucher = await signVoucher(buyer.agent, kit.channelsDomain, {
    channel: id,
    seq: 1,
    cumulativeWh: 1500n,
    cumulativeAmount: 300_000n,
  });
  await kit.write(await kit.freshAccount(), {
    ...channels,
    functionName: 'redeem',
    args: [deal, toSignedVoucherArg(voucher), toSignedReadingArg(reading)],
  });
  return { id, deal, buyer, seller };
}

/** The chain's logs of the watched contracts as (block, index, hash) keys, in order. */
export async function chainEventKeys(kit: Kit, toBlock: bigint): Promise<string[]> {
  const { registry, wallets, pool, channels } = kit.manifest.contracts;
  const logs = await kit.publicClient.getLogs({
    address: [registry, wallets, pool, channels],
    fromBlock: kit.manifest.deploymentBlock,
    toBlock,
  });
  return logs.map((l) => `${l.blockNumber}:${l.logIndex}:${l.blockHash}`);
}

/** The database's events as (block, index, hash) keys, in order. */
export async function databaseEventKeys(db: Database): Promise<string[]> {
  const rows = await db.all<{ block_number: number; log_index: number; block_hash: string }>(
    'SELECT "block_number", "log_index", "block_hash" FROM "events" ORDER BY "block_number", "log_index"',
  );
  return rows.map((r) => `${r.block_number}:${r.log_index}:${r.block_hash}`);
}

/** Every derived table, rows sorted, for comparing two databases. */
export async function dumpDerived(db: Database): Promise<Record<string, string[]>> {
  const out: Record<string, string[]> = {};
  for (const table of derivedTables) {
    const rows = await db.all(`SELECT * FROM "${table}"`);
    out[table] = rows
      .map((r) =>
        JSON.stringify(
          Object.fromEntries(Object.entries(r).sort(([a], [b]) => a.localeCompare(b))),
          (_k, v) => (typeof v === 'number' ? String(v) : v),
        ),
      )
      .sort();
  }
  return out;
}
