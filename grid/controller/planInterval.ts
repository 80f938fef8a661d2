/**
 * From schedule to setpoints, with arbitration before acceptance (IDEA's collision
 * prevention). Pure: the same schedule, deals and topology always give the same plan.
 *
 * - A cell's schedule in interval t is its pool position (CellScheduled: sell +, buy -) plus
 *   the deals it is party to (ChannelOpened: maxWhPerInterval from seller to buyer).
 * - Arbitration: a cell whose scheduled power breaks its connection limits is refused (all its
 *   trades in t); then, if the complex's net exchange breaks the router's limits (the nested
 *   cells' parent; 0 when islanded), positions on the side of the excess are refused, best
 *   fit first (the smallest that removes the excess alone, else the largest), until it fits.
 *   Refused trades are reported, not written, and each raises a reserve request into t+1.
 * - Setpoints: a deal between two cells with a rectiverter between them flows over the DC
 *   link (up to its rating); the rest of each cell's schedule is its energy port's target on
 *   the AC bus, which the cell's hub holds. The router gets the complex's limit (0 = open).
 * docs/grid.md states the rules and the rounding.
 */
import type { Topology } from '../topology/index.js';

/** One cell's pool position in an interval, as CellScheduled carries it. */
export interface ScheduledPosition {
  cell: bigint;
  side: 'buy' | 'sell';
  energyWh: bigint;
}

/** A deal as ChannelOpened carries it (and ChannelClosing may end early). */
export interface OpenDeal {
  channel: `0x${string}`;
  buyerCell: bigint;
  sellerCell: bigint;
  maxWhPerInterval: bigint;
  firstInterval: bigint;
  lastInterval: bigint;
}

/** What a refusal or a reserve request is about. */
export type Trade =
  | { kind: 'pool'; interval: bigint; cell: bigint; side: 'buy' | 'sell'; energyWh: bigint }
  | {
      kind: 'deal';
      interval: bigint;
      channel: `0x${string}`;
      buyerCell: bigint;
      sellerCell: bigint;
      energyWh: bigint;
    };

export interface Refusal {
  trade: Trade;
  /** Machine-readable: `CellLimit` or `RouterLimit`. */
  code: 'CellLimit' | 'RouterLimit';
  /** For people: what was scheduled, what the limit is. */
  reason: string;
}

/**
 * A request for reserve energy in the interval after the one that could not be realised:
 * `buy` when supply is missing in the complex (a refused or unrealised sale), `sell` when
 * demand is (a refused or unrealised purchase). Cells that sell flexibility answer it with
 * pool orders for `interval` (docs/grid.md).
 */
export interface ReserveRequest {
  interval: bigint;
  /** Why: a refusal before delivery (`CellLimit`, `RouterLimit`) or a metered `Shortfall` after it. */
  code: 'CellLimit' | 'RouterLimit' | 'Shortfall';
  side: 'buy' | 'sell';
  energyWh: bigint;
  /** The cell whose schedule could not be realised, and why. */
  cell: bigint;
  forInterval: bigint;
  reason: string;
}

export interface IntervalPlan {
  interval: bigint;
  /** The schedule each cell of the topology follows (after refusals), Wh and W; + export. */
  cells: { name: string; cellId: bigint | undefined; scheduledWh: bigint; scheduledW: number }[];
  /** Energy-port targets on the AC bus, W (+ export), one per cell. */
  ports: { name: string; watts: number }[];
  /** Rectiverter flows, W (+ from a to b), one per link. */
  links: { name: string; watts: number }[];
  /** The router's exchange limit, W, and as WMaxLimPct of its rating; 0 = open (islanded). */
  router: { limitW: number; percent: number };
  /** The complex's scheduled net exchange with the public grid, W (+ export). */
  exchangeW: number;
  refusals: Refusal[];
  reserve: ReserveRequest[];
}

export interface PlanIntervalParameters {
  topology: Topology;
  intervalSeconds: bigint;
  interval: bigint;
  /** CellScheduled of `interval`. */
  schedule: readonly ScheduledPosition[];
  /** Every deal known; those not covering `interval` are ignored. */
  deals: readonly OpenDeal[];
  islanded?: boolean;
}

/** Average power of `wh` over an interval, W, rounded toward zero (never over-delivers). */
export function powerOf(wh: bigint, intervalSeconds: bigint): number {
  return Number((wh * 3600n) / intervalSeconds);
}

/**
 * Plans interval `interval`.
 * @example
 * const plan = planInterval({ topology, intervalSeconds: 900n, interval: t, schedule, deals: [] });
 * plan.ports; // [{ name: 'prosumer-1', watts: 4000 }, ...]
 */
export function planInterval(parameters: PlanIntervalParameters): IntervalPlan {
  const { topology, intervalSeconds: L, interval: t } = parameters;
  const byId = new Map(topology.cells.filter((c) => c.cellId).map((c) => [BigInt(c.cellId ?? 0), c]));
  const deals = parameters.deals.filter((d) => d.firstInterval <= t && t <= d.lastInterval);

  /** The trades of each cell of the complex, signed Wh (+ export). */
  const tradesOf = new Map<bigint, { trade: Trade; wh: bigint }[]>();
  const add = (cell: bigint, trade: Trade, wh: bigint) => {
    if (!byId.has(cell)) return; // a cell outside the complex: the router carries its side
    tradesOf.set(cell, [...(tradesOf.get(cell) ?? []), { trade, wh }]);
  };
  for (const p of parameters.schedule) {
    const trade: Trade = { kind: 'pool', interval: t, cell: p.cell, side: p.side, energyWh: p.energyWh };
    add(p.cell, trade, p.side === 'sell' ? p.energyWh : -p.energyWh);
  }
  for (const d of deals) {
    const trade: Trade = {
      kind: 'deal',
      interval: t,
      channel: d.channel,
      buyerCell: d.buyerCell,
      sellerCell: d.sellerCell,
      energyWh: d.maxWhPerInterval,
    };
    add(d.sellerCell, trade, d.maxWhPerInterval);
    add(d.buyerCell, trade, -d.maxWhPerInterval);
  }

  const refusals: Refusal[] = [];
  const refusedCells = new Set<bigint>();
  const netOf = (cell: bigint) => (tradesOf.get(cell) ?? []).reduce((s, x) => s + x.wh, 0n);
  const refuse = (cell: bigint, code: Refusal['code'], reason: string) => {
    refusedCells.add(cell);
    for (const { trade } of tradesOf.get(cell) ?? []) {
      if (refusals.some((r) => r.trade === trade)) continue;
      refusals.push({ trade, code, reason });
    }
  };

  // 1. Each cell within its own connection limits.
  for (const [cellId, cell] of byId) {
    const w = powerOf(netOf(cellId), L);
    if (w > cell.maxExportW) {
      refuse(
        cellId,
        'CellLimit',
        `cell ${cellId} (${cell.name}) is scheduled to export ${w} W, its limit is ${cell.maxExportW} W`,
      );
    } else if (-w > cell.maxImportW) {
      refuse(
        cellId,
        'CellLimit',
        `cell ${cellId} (${cell.name}) is scheduled to import ${-w} W, its limit is ${cell.maxImportW} W`,
      );
    }
  }
  // A deal refused on one side is refused on both: its energy cannot flow.
  const refusedDeals = new Set(refusals.flatMap((r) => (r.trade.kind === 'deal' ? [r.trade.channel] : [])));
  const accepted = (cell: bigint) =>
    refusedCells.has(cell)
      ? 0n
      : (tradesOf.get(cell) ?? [])
          .filter(({ trade }) => !(trade.kind === 'deal' && refusedDeals.has(trade.channel)))
          .reduce((s, x) => s + x.wh, 0n);

  // 2. The complex within the router's limits (the parent of the nested cells).
  const islanded = parameters.islanded ?? false;
  const maxExportW = islanded ? 0 : topology.router.maxExportW;
  const maxImportW = islanded ? 0 : topology.router.maxImportW;
  const exchange = () => [...byId.keys()].reduce((s, c) => s + powerOf(accepted(c), L), 0);
  for (let guard = 0; guard < byId.size; guard++) {
    const x = exchange();
    const over = x > maxExportW ? 1 : -x > maxImportW ? -1 : 0;
    if (over === 0) break;
    // Best fit: the smallest position on the side of the excess that removes it alone, else
    // the largest (and again); ties go to the lower cell id.
    const excess = over > 0 ? x - maxExportW : -x - maxImportW;
    const size = (c: bigint) => Math.abs(powerOf(accepted(c), L));
    const side = [...byId.keys()]
      .filter((c) => !refusedCells.has(c) && Math.sign(Number(accepted(c))) === over)
      .sort((a, b) => size(a) - size(b) || (a < b ? -1 : 1));
    const candidates = [side.find((c) => size(c) >= excess) ?? side.at(-1)];
    const victim = candidates[0];
    if (victim === undefined) break;
    refuse(
      victim,
      'RouterLimit',
      islanded
        ? `the complex is islanded: cell ${victim}'s ${over > 0 ? 'export' : 'import'} has no way out`
        : `the complex would ${over > 0 ? 'export' : 'import'} ${Math.abs(x)} W, the router's limit is ${over > 0 ? maxExportW : maxImportW} W`,
    );
    for (const r of refusals) if (r.trade.kind === 'deal') refusedDeals.add(r.trade.channel);
  }

  // Setpoints: deals between linked cells over the DC mesh, the rest on the AC bus.
  const linkFlow = new Map(topology.dcMesh.links.map((l) => [l.name, 0]));
  const linksOut = new Map(topology.cells.map((c) => [c.name, 0]));
  for (const d of deals) {
    if (refusedDeals.has(d.channel)) continue;
    const seller = byId.get(d.sellerCell);
    const buyer = byId.get(d.buyerCell);
    if (!seller || !buyer) continue;
    const link = topology.dcMesh.links.find(
      (l) => (l.a === seller.name && l.b === buyer.name) || (l.a === buyer.name && l.b === seller.name),
    );
    if (!link) continue;
    const sign = link.a === seller.name ? 1 : -1;
    const current = linkFlow.get(link.name) ?? 0;
    const room = link.ratedW - Math.abs(current);
    const w = Math.min(room, powerOf(d.maxWhPerInterval, L));
    if (w <= 0) continue;
    linkFlow.set(link.name, current + sign * w);
    linksOut.set(seller.name, (linksOut.get(seller.name) ?? 0) + w);
    linksOut.set(buyer.name, (linksOut.get(buyer.name) ?? 0) - w);
  }

  const cells = topology.cells.map((c) => {
    const id = c.cellId ? BigInt(c.cellId) : undefined;
    const wh = id === undefined ? 0n : accepted(id);
    return { name: c.name, cellId: id, scheduledWh: wh, scheduledW: powerOf(wh, L) };
  });
  const limitW = islanded ? 0 : Math.min(topology.router.ratedW, Math.max(maxImportW, maxExportW));
  const reserve: ReserveRequest[] = refusals.map((r) => {
    const cell = r.trade.kind === 'pool' ? r.trade.cell : r.trade.sellerCell;
    const selling = r.trade.kind === 'deal' || r.trade.side === 'sell';
    return {
      interval: t + 1n,
      code: r.code,
      side: selling ? 'buy' : 'sell',
      energyWh: r.trade.energyWh,
      cell,
      forInterval: t,
      reason: `${r.code}: ${r.reason}`,
    };
  });
  return {
    interval: t,
    cells,
    ports: cells.map((c) => ({ name: c.name, watts: c.scheduledW - (linksOut.get(c.name) ?? 0) })),
    links: topology.dcMesh.links.map((l) => ({ name: l.name, watts: linkFlow.get(l.name) ?? 0 })),
    router: { limitW, percent: Math.floor((limitW * 1000) / topology.router.ratedW) / 10 },
    exchangeW: cells.reduce((s, c) => s + c.scheduledW, 0),
    refusals,
    reserve,
  };
}
