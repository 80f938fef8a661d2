/**
 * After delivery: what the plant did against what was planned. Pure: two boundary samples of
 * the devices' counters (energy ports' and router's vendor model 64900, the cells' meters,
 * model 203) and the interval's plan give the unserved energy per cell and for the complex,
 * and a reserve request for every cell whose metered energy fell short of its schedule by
 * more than the tolerance ("a schedule the grid cannot realise raises a reserve request",
 * ARCHITECTURE.md step 4). docs/grid.md states the rules.
 */
import type { Topology } from '../topology/index.js';
import type { IntervalPlan, ReserveRequest } from './planInterval.js';

/** The counters of one cell at a boundary, as read over Modbus; null when unreadable. */
export interface CellSample {
  /** Vendor model 64900 of the cell's energy port, cumulative Wh. */
  shedWh: bigint | null;
  curtailedWh: bigint | null;
  /** The cell's meter (model 203), cumulative Wh, 32-bit: they wrap. */
  importWh: bigint | null;
  exportWh: bigint | null;
}

/** Every counter of the complex, read at the first pass at or after an interval's start. */
export interface BoundarySample {
  /** The interval that had just started when the sample was taken. */
  interval: bigint;
  /** Clock time of the sample, Unix seconds. */
  at: bigint;
  cells: Map<string, CellSample>;
  /** The router's vendor model 64900: the complex's totals. */
  complex: { shedWh: bigint; curtailedWh: bigint } | null;
}

export interface ShortfallTolerance {
  /** Shortfalls up to this many Wh are rounding and timing, not a failed schedule. */
  wh: bigint;
  /** ... or up to this percentage of the scheduled energy, whichever is larger. */
  percent: number;
}

/** What the plant did in one interval: the `grid-unserved` payload (docs/grid.md). */
export interface DeliveryReport {
  interval: bigint;
  from: bigint;
  to: bigint;
  cells: {
    name: string;
    cellId: bigint | undefined;
    /** Load shed in the cell (unserved energy), Wh; null when its port does not report it. */
    shedWh: bigint | null;
    curtailedWh: bigint | null;
    /** Scheduled net energy, Wh (+ export), and what the meter counted (export - import). */
    scheduledWh: bigint | null;
    meteredWh: bigint | null;
  }[];
  /** The router's count for the whole complex; null when the router does not report it. */
  complex: { shedWh: bigint; curtailedWh: bigint } | null;
  /** Reserve requests for cells that fell short of their schedule. */
  reserve: ReserveRequest[];
}

export interface AssessDeliveryParameters {
  topology: Topology;
  /** Samples at the start of the interval and at the start of the next. */
  from: BoundarySample;
  to: BoundarySample;
  /** The plan written for `from.interval`; no shortfall check without it. */
  plan: IntervalPlan | undefined;
  /** The interval the reserve is requested for: the next one still open for orders. */
  requestInterval: bigint;
  tolerance: ShortfallTolerance;
}

const ACC32 = 2n ** 32n;

/**
 * The increase of a counter between two samples; a meter's acc32 wraps at 2^32. A decrease
 * larger than `plausibleWh` allows is a reset, not a wrap: null (unknown).
 */
export function counterDelta(
  before: bigint | null,
  after: bigint | null,
  modulus: bigint | undefined,
  plausibleWh: bigint,
): bigint | null {
  if (before === null || after === null) return null;
  if (after >= before) return after - before;
  if (modulus === undefined) return null;
  const wrapped = after + modulus - before;
  return wrapped <= plausibleWh ? wrapped : null;
}

/**
 * Compares interval `from.interval`'s delivery with its plan.
 * @returns the unserved energy per cell and for the complex, and a reserve request per shortfall.
 * @example
 * const report = assessDelivery({ topology, from, to, plan, requestInterval: t + 2n, tolerance: { wh: 10n, percent: 2 } });
 */
export function assessDelivery(parameters: AssessDeliveryParameters): DeliveryReport {
  const { topology, from, to, plan, tolerance } = parameters;
  const t = from.interval;
  const seconds = to.at > from.at ? to.at - from.at : 0n;
  const consecutive = to.interval === t + 1n;
  const reserve: ReserveRequest[] = [];
  const cells = topology.cells.map((c) => {
    const a = from.cells.get(c.name);
    const b = to.cells.get(c.name);
    // The most a counter can move in the window, with one Wh of rounding.
    const plausible = (BigInt(Math.max(c.maxImportW, c.maxExportW)) * seconds) / 3600n + 1n;
    const delta = (k: keyof CellSample, modulus?: bigint) =>
      counterDelta(a?.[k] ?? null, b?.[k] ?? null, modulus, plausible);
    const imported = delta('importWh', ACC32);
    const exported = delta('exportWh', ACC32);
    const meteredWh = imported === null || exported === null ? null : exported - imported;
    const planned = plan?.cells.find((p) => p.name === c.name);
    const scheduledWh = consecutive && planned ? planned.scheduledWh : null;
    const cellId = c.cellId ? BigInt(c.cellId) : undefined;
    if (scheduledWh !== null && scheduledWh !== 0n && meteredWh !== null && cellId !== undefined) {
      const selling = scheduledWh > 0n;
      const size = selling ? scheduledWh : -scheduledWh;
      // Short by what the meter did not count in the schedule's direction, at most the schedule:
      // a deviation beyond it is the cell's own imbalance, settled as such, not missing reserve.
      const short = selling ? scheduledWh - meteredWh : meteredWh - scheduledWh;
      const missing = short > size ? size : short;
      const byPercent = (size * BigInt(Math.round(tolerance.percent * 100))) / 10_000n;
      const allowed = byPercent > tolerance.wh ? byPercent : tolerance.wh;
      if (missing > allowed) {
        const did =
          meteredWh >= 0n
            ? `its meter counted a net export of ${meteredWh} Wh`
            : `its meter counted a net import of ${-meteredWh} Wh`;
        reserve.push({
          interval: parameters.requestInterval,
          code: 'Shortfall',
          side: selling ? 'buy' : 'sell',
          energyWh: missing,
          cell: cellId,
          forInterval: t,
          reason: `Shortfall: cell ${cellId} (${c.name}) was scheduled to ${selling ? 'export' : 'import'} ${size} Wh in interval ${t}, ${did}: ${missing} Wh missing, tolerance ${allowed} Wh`,
        });
      }
    }
    return {
      name: c.name,
      cellId,
      shedWh: delta('shedWh'),
      curtailedWh: delta('curtailedWh'),
      scheduledWh,
      meteredWh,
    };
  });
  const complex =
    from.complex && to.complex
      ? {
          shedWh: to.complex.shedWh - from.complex.shedWh,
          curtailedWh: to.complex.curtailedWh - from.complex.curtailedWh,
        }
      : null;
  return {
    interval: t,
    from: from.at,
    to: to.at,
    cells,
    complex: complex && complex.shedWh >= 0n && complex.curtailedWh >= 0n ? complex : null,
    reserve,
  };
}
