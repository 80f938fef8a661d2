import { describe, expect, it } from 'vitest';
import { loadTopology } from '../topology/index.js';
import { assessDelivery, type BoundarySample, type CellSample, counterDelta } from './assessDelivery.js';
import { planInterval } from './planInterval.js';

const topology = structuredClone(loadTopology());
topology.cells.forEach((c, i) => {
  c.cellId = String(11 + i);
});
const L = 900n;
const t = 2_000_000n;
const tolerance = { wh: 10n, percent: 2 };
// prosumer-1 sells 1000 Wh, prosumer-2 buys 1000 Wh.
const plan = planInterval({
  topology,
  intervalSeconds: L,
  interval: t,
  schedule: [
    { cell: 11n, side: 'sell', energyWh: 1000n },
    { cell: 12n, side: 'buy', energyWh: 1000n },
  ],
  deals: [],
});

const zero: CellSample = { shedWh: 0n, curtailedWh: 0n, importWh: 0n, exportWh: 0n };
function sample(
  interval: bigint,
  at: bigint,
  cells: Record<string, Partial<CellSample>> = {},
): BoundarySample {
  return {
    interval,
    at,
    cells: new Map(topology.cells.map((c) => [c.name, { ...zero, ...cells[c.name] }])),
    complex: { shedWh: 0n, curtailedWh: 0n },
  };
}
const assess = (to: BoundarySample, from = sample(t, t * L)) =>
  assessDelivery({ topology, from, to, plan, requestInterval: t + 2n, tolerance });

describe('after delivery: unserved energy and shortfalls', () => {
  it('raises no request when every cell met its schedule within the tolerance', () => {
    const report = assess(
      sample(t + 1n, (t + 1n) * L, {
        'prosumer-1': { exportWh: 985n }, // 15 Wh short: within 2 % of 1000 Wh (20 Wh)
        'prosumer-2': { importWh: 999n },
      }),
    );
    expect(report.reserve).toEqual([]);
    expect(report.cells.map((c) => [c.scheduledWh, c.meteredWh])).toEqual([
      [1000n, 985n],
      [-1000n, -999n],
      [0n, 0n],
      [0n, 0n],
    ]);
  });

  it('error: a seller short beyond the tolerance raises a buy request with the cell, the interval and the missing Wh', () => {
    const report = assess(
      sample(t + 1n, (t + 1n) * L, {
        'prosumer-1': { exportWh: 600n, importWh: 21n },
        'prosumer-2': { importWh: 1000n },
      }),
    );
    expect(report.reserve).toEqual([
      {
        interval: t + 2n,
        code: 'Shortfall',
        side: 'buy',
        energyWh: 421n,
        cell: 11n,
        forInterval: t,
        reason: `Shortfall: cell 11 (prosumer-1) was scheduled to export 1000 Wh in interval ${t}, its meter counted a net export of 579 Wh: 421 Wh missing, tolerance 20 Wh`,
      },
    ]);
  });

  it('error: a buyer that took less than its schedule raises a sell request; the missing energy is at most the schedule', () => {
    const report = assess(
      sample(t + 1n, (t + 1n) * L, {
        'prosumer-1': { importWh: 300n }, // imported instead of exporting: 1300 short, capped at 1000
        'prosumer-2': { importWh: 700n },
      }),
    );
    expect(report.reserve.map((r) => [r.cell, r.side, r.energyWh])).toEqual([
      [11n, 'buy', 1000n],
      [12n, 'sell', 300n],
    ]);
  });

  it('reports each cell its own shed load and curtailed PV, and the complex from the router', () => {
    const from = sample(t, t * L, { 'prosumer-3': { shedWh: 100n, curtailedWh: 7n } });
    const to = sample(t + 1n, (t + 1n) * L, {
      'prosumer-1': { exportWh: 1000n },
      'prosumer-2': { importWh: 1000n },
      'prosumer-3': { shedWh: 350n, curtailedWh: 7n },
    });
    to.complex = { shedWh: 251n, curtailedWh: 0n };
    const report = assess(to, from);
    expect(report.cells.map((c) => [c.name, c.shedWh, c.curtailedWh])).toEqual([
      ['prosumer-1', 0n, 0n],
      ['prosumer-2', 0n, 0n],
      ['prosumer-3', 250n, 0n],
      ['prosumer-4', 0n, 0n],
    ]);
    expect(report.complex).toEqual({ shedWh: 251n, curtailedWh: 0n });
  });

  it('counts through a meter wrap at 2^32, and treats an implausible decrease as a reset (unknown, no request)', () => {
    expect(counterDelta(2n ** 32n - 10n, 990n, 2n ** 32n, 2000n)).toBe(1000n);
    expect(counterDelta(5_000_000n, 10n, 2n ** 32n, 2000n)).toBeNull();
    const wrapped = assess(
      sample(t + 1n, (t + 1n) * L, { 'prosumer-1': { exportWh: 990n }, 'prosumer-2': { importWh: 1000n } }),
      sample(t, t * L, { 'prosumer-1': { exportWh: 2n ** 32n - 10n } }),
    );
    expect(wrapped.cells[0]?.meteredWh).toBe(1000n);
    expect(wrapped.reserve).toEqual([]);
    const reset = assess(
      sample(t + 1n, (t + 1n) * L, { 'prosumer-1': { exportWh: 3n } }),
      sample(t, t * L, { 'prosumer-1': { exportWh: 9_000_000n } }),
    );
    expect(reset.cells[0]?.meteredWh).toBeNull();
    expect(reset.reserve.map((r) => r.cell)).toEqual([12n]); // prosumer-2 took nothing
  });

  it('checks no schedule when the samples do not bound one interval (the controller missed a boundary)', () => {
    const report = assess(sample(t + 2n, (t + 2n) * L));
    expect(report.cells.every((c) => c.scheduledWh === null)).toBe(true);
    expect(report.reserve).toEqual([]);
  });
});
