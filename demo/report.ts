/**
 * The demo's accounts: one block per interval (clearing, each cell's schedule against its
 * meter, payments, channel redemptions, the grid exchange) and the summary at the end, which
 * checks that money and energy were conserved.
 */
import type { Chain, PublicClient, Transport } from 'viem';
import {
  cellWalletsAbi,
  clearingPoolAbi,
  debtChannelsAbi,
  devnetTokenAbi,
} from '../chain/abi/contracts.generated.js';
import type { Manifest } from '../chain/manifest/index.js';
import { Side } from '../chain/units/index.js';
import type { IntervalPhysics } from './plantTap.js';

export interface CellLine {
  name: string;
  id: bigint;
  /** Pool schedule, Wh, + sell (export), - buy; 0 when not scheduled. */
  scheduledWh: bigint;
  /** The signed reading's net energy at the boundary, Wh (+ export); undefined without one. */
  meteredWh: bigint | undefined;
  /** Bilateral deals (open channels) covering the interval, Wh, + sell, - buy. */
  dealWh: bigint;
  /** What the pool counted (PositionSettled.meteredWh), Wh. */
  settledWh: bigint;
  /** Token base units: + received by a seller, - paid by a buyer. */
  amount: bigint;
}

export interface IntervalReport {
  interval: bigint;
  scenario: string;
  cleared: boolean;
  /** Seconds between the clearing block and delivery start (positive = before delivery). */
  clearedBeforeDelivery: bigint | undefined;
  orders: number;
  price: bigint;
  volumeWh: bigint;
  cells: CellLine[];
  buyersPaid: bigint;
  sellersReceived: bigint;
  /** Energy the pool settled: min(sellers delivered, buyers took), Wh. */
  settledWh: bigint;
  /** Scheduled purchases buyers did not receive, Wh. */
  unservedWh: bigint;
  /** Sum over scheduled cells of |metered - (pool schedule + deals)|, Wh. */
  imbalanceWh: bigint;
  /** Scheduled cells whose position was settled / all scheduled cells. */
  positionsSettled: number;
  scheduledCells: number;
  redemptions: { channel: string; amount: bigint }[];
  physics: IntervalPhysics | undefined;
}

export interface MeteredEnergy {
  importWh: bigint;
  exportWh: bigint;
}

const abs = (x: bigint) => (x < 0n ? -x : x);

/** Reads interval `t`'s clearing, schedule and settlement from the chain and joins the meters. */
export async function collectIntervalReport(parameters: {
  publicClient: PublicClient<Transport, Chain>;
  manifest: Manifest;
  interval: bigint;
  scenario: string;
  cells: { name: string; id: bigint }[];
  metered: (cell: bigint, interval: bigint) => MeteredEnergy | undefined;
  physics: IntervalPhysics | undefined;
  /** Channel redemptions seen since the previous block (block range). */
  fromBlock: bigint;
  toBlock: bigint;
}): Promise<IntervalReport> {
  const { publicClient, manifest, interval: t } = parameters;
  const pool = { address: manifest.contracts.pool, abi: clearingPoolAbi } as const;
  const from = manifest.deploymentBlock;
  const hasRange = parameters.fromBlock <= parameters.toBlock;
  const [state, clearedLogs, scheduled, settled, opened, vouchers, proofs] = await Promise.all([
    publicClient.readContract({ ...pool, functionName: 'intervalOf', args: [t] }),
    publicClient.getContractEvents({
      ...pool,
      eventName: 'IntervalCleared',
      args: { interval: t },
      fromBlock: from,
    }),
    publicClient.getContractEvents({
      ...pool,
      eventName: 'CellScheduled',
      args: { interval: t },
      fromBlock: from,
    }),
    publicClient.getContractEvents({
      ...pool,
      eventName: 'PositionSettled',
      args: { interval: t },
      fromBlock: from,
    }),
    publicClient.getContractEvents({
      address: manifest.contracts.channels,
      abi: debtChannelsAbi,
      eventName: 'ChannelOpened',
      fromBlock: from,
    }),
    hasRange
      ? publicClient.getContractEvents({
          address: manifest.contracts.channels,
          abi: debtChannelsAbi,
          eventName: 'VoucherAccepted',
          fromBlock: parameters.fromBlock,
          toBlock: parameters.toBlock,
        })
      : [],
    hasRange
      ? publicClient.getContractEvents({
          address: manifest.contracts.channels,
          abi: debtChannelsAbi,
          eventName: 'DeliveryProven',
          fromBlock: parameters.fromBlock,
          toBlock: parameters.toBlock,
        })
      : [],
  ]);
  let clearedBeforeDelivery: bigint | undefined;
  const clearedLog = clearedLogs[0];
  if (clearedLog) {
    const block = await publicClient.getBlock({ blockNumber: clearedLog.blockNumber });
    clearedBeforeDelivery = t * manifest.pool.intervalSeconds - block.timestamp;
  }
  const ids = new Map(parameters.cells.map((c) => [c.id, c.name]));
  const lines: CellLine[] = parameters.cells.map((c) => ({
    name: c.name,
    id: c.id,
    scheduledWh: 0n,
    dealWh: 0n,
    meteredWh: undefined,
    settledWh: 0n,
    amount: 0n,
  }));
  const lineOf = (id: bigint): CellLine => {
    let line = lines.find((l) => l.id === id);
    if (!line) {
      line = {
        name: ids.get(id) ?? `cell-${id}`,
        id,
        scheduledWh: 0n,
        dealWh: 0n,
        meteredWh: undefined,
        settledWh: 0n,
        amount: 0n,
      };
      lines.push(line);
    }
    return line;
  };
  for (const { args } of scheduled) {
    const energy = args.energyWh ?? 0n;
    lineOf(args.cell ?? 0n).scheduledWh = args.side === Side.Sell ? energy : -energy;
  }
  for (const { args } of opened) {
    const first = args.firstInterval ?? 0n;
    const lastInterval = args.lastInterval ?? 0n;
    if (t < first || t > lastInterval) continue;
    const wh = args.maxWhPerInterval ?? 0n;
    lineOf(args.sellerCell ?? 0n).dealWh += wh;
    lineOf(args.buyerCell ?? 0n).dealWh -= wh;
  }
  let buyersPaid = 0n;
  let sellersReceived = 0n;
  let positionsSettled = 0;
  for (const { args } of settled) {
    if ((args.meteredWh ?? 0n) > 0n || scheduled.some((s) => s.args.cell === args.cell)) positionsSettled++;
    const line = lineOf(args.cell ?? 0n);
    line.settledWh = args.meteredWh ?? 0n;
    if (args.side === Side.Sell) {
      line.amount = args.amount ?? 0n;
      sellersReceived += args.amount ?? 0n;
    } else {
      line.amount = -(args.amount ?? 0n);
      buyersPaid += args.amount ?? 0n;
    }
  }
  let unservedWh = 0n;
  let imbalanceWh = 0n;
  let sellWh = 0n;
  let buyWh = 0n;
  for (const line of lines) {
    const m = parameters.metered(line.id, t);
    if (m) line.meteredWh = m.exportWh - m.importWh;
    if (line.scheduledWh === 0n && line.dealWh === 0n) continue;
    const metered = line.meteredWh ?? 0n;
    imbalanceWh += abs(metered - line.scheduledWh - line.dealWh);
    if (line.scheduledWh === 0n) continue;
    if (line.scheduledWh < 0n) {
      const received = metered < 0n ? -metered : 0n;
      if (received < -line.scheduledWh) unservedWh += -line.scheduledWh - received;
      buyWh += line.settledWh;
    } else sellWh += line.settledWh;
  }
  return {
    interval: t,
    scenario: parameters.scenario,
    cleared: state.cleared,
    clearedBeforeDelivery,
    orders: state.orderCount,
    price: BigInt(state.price),
    volumeWh: BigInt(state.volumeWh),
    cells: lines,
    buyersPaid,
    sellersReceived,
    settledWh: sellWh < buyWh ? sellWh : buyWh,
    unservedWh,
    imbalanceWh,
    positionsSettled,
    scheduledCells: state.scheduledCells,
    redemptions: [
      ...vouchers.map((v) => ({ channel: v.args.channel ?? '0x', amount: v.args.paidNow ?? 0n })),
      ...proofs.map((p) => ({ channel: p.args.channel ?? '0x', amount: p.args.paidNow ?? 0n })),
    ],
    physics: parameters.physics,
  };
}

/** Token base units (6 decimals) as `1.234567`. */
export function formatToken(amount: bigint, decimals = 6): string {
  const sign = amount < 0n ? '-' : '';
  const a = abs(amount);
  const unit = 10n ** BigInt(decimals);
  return `${sign}${a / unit}.${(a % unit).toString().padStart(decimals, '0')}`;
}

const hubOf = (r: IntervalReport, name: string) => {
  const soc = r.physics?.socPermille.get(name);
  return soc === undefined ? '' : `  hub ${(soc / 10).toFixed(1)} %`;
};
const signed = (wh: bigint | undefined) => (wh === undefined ? '—' : wh > 0n ? `+${wh}` : `${wh}`);

/** The short block printed for one interval. */
export function formatIntervalReport(r: IntervalReport, intervalSeconds: bigint): string {
  const start = new Date(Number(r.interval * intervalSeconds) * 1000).toISOString().slice(11, 16);
  const head = r.cleared
    ? `cleared ${r.clearedBeforeDelivery ?? '?'} s before delivery at ${formatToken(r.price)} dEUR/kWh, ${r.volumeWh} Wh from ${r.orders} orders`
    : r.orders > 0
      ? `NOT cleared (${r.orders} orders): void`
      : 'no orders';
  const lines = [
    `── interval ${r.interval} (${start} UTC) · ${r.scenario} ── ${head}`,
    ...r.cells.map(
      (c) =>
        `   ${c.name.padEnd(11)} scheduled ${signed(c.scheduledWh).padStart(6)} Wh${c.dealWh === 0n ? '' : ` deal ${signed(c.dealWh)}`}  metered ${signed(c.meteredWh).padStart(6)} Wh  settled ${String(c.settledWh).padStart(5)} Wh${hubOf(r, c.name)}${c.amount === 0n ? '' : `  ${c.amount > 0n ? 'received' : 'paid'} ${formatToken(abs(c.amount))} dEUR`}`,
    ),
    `   payments: buyers paid ${formatToken(r.buyersPaid)}, sellers received ${formatToken(r.sellersReceived)} dEUR; positions settled ${r.positionsSettled}/${r.scheduledCells}; unserved ${r.unservedWh} Wh, imbalance ${r.imbalanceWh} Wh`,
    `   channels: ${r.redemptions.length === 0 ? 'no redemptions' : r.redemptions.map((x) => `${x.channel.slice(0, 10)}… redeemed ${formatToken(x.amount)} dEUR`).join('; ')}`,
    r.physics
      ? `   grid: import ${r.physics.gridImportWh} Wh, export ${r.physics.gridExportWh} Wh · PV ${r.physics.pvWh} Wh, load ${r.physics.loadWh} Wh, curtailed ${r.physics.curtailedWh} Wh, shed ${r.physics.shedWh} Wh`
      : '   grid: (no plant counters for this interval)',
  ];
  return lines.join('\n');
}

export interface ConservationCheck {
  name: string;
  ok: boolean;
  detail: string;
}

export interface DemoSummary {
  intervals: number;
  cleared: number;
  energyTradedWh: bigint;
  energySettledWh: bigint;
  moneyMoved: bigint;
  unservedWh: bigint;
  imbalanceWh: bigint;
  gridImportWh: bigint;
  gridExportWh: bigint;
  channelRedemptions: bigint;
  checks: ConservationCheck[];
  ok: boolean;
}

/** Sums the reports and checks conservation of money (to the token unit) and of energy. */
export async function summarize(parameters: {
  reports: IntervalReport[];
  publicClient: PublicClient<Transport, Chain>;
  manifest: Manifest;
  cells: { id: bigint; deposited: bigint }[];
}): Promise<DemoSummary> {
  const { reports, publicClient, manifest } = parameters;
  const { contracts } = manifest;
  const checks: ConservationCheck[] = [];
  const sum = (f: (r: IntervalReport) => bigint) => reports.reduce((a, r) => a + f(r), 0n);

  // Money, per interval: what buyers paid is exactly what sellers received.
  const unequal = reports.filter((r) => r.buyersPaid !== r.sellersReceived);
  checks.push({
    name: 'pool payments balance in every interval',
    ok: unequal.length === 0,
    detail:
      unequal.length === 0
        ? `${reports.length} intervals: buyers paid = sellers received, to the token unit`
        : unequal
            .map((r) => `interval ${r.interval}: paid ${r.buyersPaid}, received ${r.sellersReceived}`)
            .join('; '),
  });

  // Money, overall: the wallets hold exactly the cells' balances and the markets' accounts.
  const [held, creditors, poolBalance, channelsBalance, ...balances] = await Promise.all([
    publicClient.readContract({
      address: contracts.token,
      abi: devnetTokenAbi,
      functionName: 'balanceOf',
      args: [contracts.wallets],
    }),
    publicClient.readContract({
      address: contracts.wallets,
      abi: cellWalletsAbi,
      functionName: 'heldForCreditors',
    }),
    publicClient.readContract({
      address: contracts.wallets,
      abi: cellWalletsAbi,
      functionName: 'marketBalance',
      args: [contracts.pool],
    }),
    publicClient.readContract({
      address: contracts.wallets,
      abi: cellWalletsAbi,
      functionName: 'marketBalance',
      args: [contracts.channels],
    }),
    ...parameters.cells.map((c) =>
      publicClient.readContract({
        address: contracts.wallets,
        abi: cellWalletsAbi,
        functionName: 'balanceOf',
        args: [c.id],
      }),
    ),
  ]);
  const [allVouchers, allProofs] = await Promise.all([
    publicClient.getContractEvents({
      address: contracts.channels,
      abi: debtChannelsAbi,
      eventName: 'VoucherAccepted',
      fromBlock: manifest.deploymentBlock,
    }),
    publicClient.getContractEvents({
      address: contracts.channels,
      abi: debtChannelsAbi,
      eventName: 'DeliveryProven',
      fromBlock: manifest.deploymentBlock,
    }),
  ]);
  const channelRedemptions = [...allVouchers, ...allProofs].reduce((a, e) => a + (e.args.paidNow ?? 0n), 0n);
  const cellsTotal = (balances as (readonly [bigint, bigint])[]).reduce((a, [av, lk]) => a + av + lk, 0n);
  const deposited = parameters.cells.reduce((a, c) => a + c.deposited, 0n);
  const accounted = cellsTotal + poolBalance + channelsBalance + creditors;
  checks.push({
    name: 'the wallets hold every token of the cells and markets',
    ok: held === accounted,
    detail: `token.balanceOf(wallets) ${held} = cells ${cellsTotal} + pool ${poolBalance} + channels ${channelsBalance} + held for creditors ${creditors}`,
  });
  checks.push({
    name: 'no token created or lost',
    ok: held === deposited,
    detail: `deposited ${deposited}, held ${held} (difference ${held - deposited})`,
  });

  // Energy: the plant's books balance in every interval (pv - load = net export + storage).
  const withPhysics = reports.filter((r) => r.physics);
  const unbalanced = withPhysics.filter((r) => r.physics?.residualWs !== 0n);
  checks.push({
    name: 'energy balances in every interval (PV - load = grid export - import + storage + losses)',
    ok: unbalanced.length === 0,
    detail:
      unbalanced.length === 0
        ? `${withPhysics.length} intervals, exact to the watt-second`
        : unbalanced.map((r) => `interval ${r.interval}: residual ${r.physics?.residualWs} Ws`).join('; '),
  });
  // Energy: the pool never settles more than was delivered and taken.
  const overSettled = reports.filter((r) => r.cells.some((c) => c.settledWh > abs(c.scheduledWh)));
  checks.push({
    name: 'nobody settled beyond its schedule',
    ok: overSettled.length === 0,
    detail:
      overSettled.length === 0
        ? 'every settled Wh was scheduled and metered'
        : overSettled.map((r) => `interval ${r.interval}`).join(', '),
  });

  return {
    intervals: reports.length,
    cleared: reports.filter((r) => r.cleared).length,
    energyTradedWh: sum((r) => r.volumeWh),
    energySettledWh: sum((r) => r.settledWh),
    moneyMoved: sum((r) => r.buyersPaid),
    unservedWh: sum((r) => r.unservedWh),
    imbalanceWh: sum((r) => r.imbalanceWh),
    gridImportWh: sum((r) => r.physics?.gridImportWh ?? 0n),
    gridExportWh: sum((r) => r.physics?.gridExportWh ?? 0n),
    channelRedemptions,
    checks,
    ok: checks.every((c) => c.ok),
  };
}

/** The summary printed at the end. */
export function formatSummary(s: DemoSummary): string {
  return [
    '══ summary ══',
    `   intervals ${s.intervals} (${s.cleared} cleared) · energy traded ${s.energyTradedWh} Wh, settled ${s.energySettledWh} Wh · money moved ${formatToken(s.moneyMoved)} dEUR (+ channel redemptions ${formatToken(s.channelRedemptions)})`,
    `   unserved ${s.unservedWh} Wh · imbalance ${s.imbalanceWh} Wh · grid import ${s.gridImportWh} Wh, export ${s.gridExportWh} Wh`,
    ...s.checks.map((c) => `   ${c.ok ? 'ok  ' : 'FAIL'} ${c.name}: ${c.detail}`),
    s.ok ? '   money and energy conserved.' : '   CONSERVATION FAILED (see above).',
  ].join('\n');
}
