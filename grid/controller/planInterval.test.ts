import { describe, expect, it } from 'vitest';
import { loadTopology, type Topology } from '../topology/index.js';
import { type OpenDeal, planInterval } from './planInterval.js';

const L = 900n;
const t = 2_000_000n;

/** The four-prosumer complex with avatars 11..14. */
function complex(change: (t: Topology) => void = () => {}): Topology {
  const topology = structuredClone(loadTopology());
  topology.cells.forEach((c, i) => {
    c.cellId = String(11 + i);
  });
  change(topology);
  return topology;
}

const deal = (over: Partial<OpenDeal> = {}): OpenDeal => ({
  channel: `0x${'ab'.repeat(32)}`,
  buyerCell: 12n,
  sellerCell: 11n,
  maxWhPerInterval: 500n,
  firstInterval: t - 1n,
  lastInterval: t + 1n,
  ...over,
});

describe('planInterval: from schedule to setpoints', () => {
  it('turns a cleared interval into port targets: 1000 Wh in 15 min is 4000 W, sellers +, buyers -', () => {
    const plan = planInterval({
      topology: complex(),
      intervalSeconds: L,
      interval: t,
      schedule: [
        { cell: 11n, side: 'sell', energyWh: 1000n },
        { cell: 13n, side: 'buy', energyWh: 600n },
        { cell: 99n, side: 'buy', energyWh: 400n }, // outside the complex
      ],
      deals: [],
    });
    expect(plan.ports).toEqual([
      { name: 'prosumer-1', watts: 4000 },
      { name: 'prosumer-2', watts: 0 },
      { name: 'prosumer-3', watts: -2400 },
      { name: 'prosumer-4', watts: 0 },
    ]);
    expect(plan.links.every((l) => l.watts === 0)).toBe(true);
    expect(plan.exchangeW).toBe(1600); // the buyer outside is served through the router
    expect(plan.router).toEqual({ limitW: 40_000, percent: 80 });
    expect(plan.refusals).toEqual([]);
    expect(plan.reserve).toEqual([]);
  });

  it('routes a deal between linked cells over their rectiverter and the rest of the schedule over the AC bus', () => {
    const plan = planInterval({
      topology: complex(),
      intervalSeconds: L,
      interval: t,
      schedule: [{ cell: 12n, side: 'sell', energyWh: 250n }],
      deals: [deal({ maxWhPerInterval: 1000n })], // 4000 W from 11 to 12; the link takes 3000
    });
    expect(plan.links.find((l) => l.name === 'rv-1-2')?.watts).toBe(3000);
    expect(plan.cells.map((c) => c.scheduledW)).toEqual([4000, -3000, 0, 0]);
    // prosumer-1 sends 3000 W over DC, 1000 W over AC; prosumer-2 gets 3000 W over DC and
    // exports its net -4000 + 1000 = -3000... its port takes the rest: -3000 - (-3000) = 0.
    expect(plan.ports.slice(0, 2)).toEqual([
      { name: 'prosumer-1', watts: 1000 },
      { name: 'prosumer-2', watts: 0 },
    ]);
  });

  it('a deal from b to a flows negative on link a-b; deals outside their intervals are ignored', () => {
    const plan = planInterval({
      topology: complex(),
      intervalSeconds: L,
      interval: t,
      schedule: [],
      deals: [
        deal({ sellerCell: 14n, buyerCell: 12n, maxWhPerInterval: 250n }),
        deal({ channel: `0x${'cd'.repeat(32)}`, firstInterval: t + 1n }),
      ],
    });
    expect(plan.links.find((l) => l.name === 'rv-2-4')?.watts).toBe(-1000);
    expect(plan.ports.every((p) => p.watts === 0)).toBe(true);
  });

  it("error: refuses a schedule that breaks a cell's connection limit, names the trade, and asks for reserve in t+1", () => {
    const plan = planInterval({
      topology: complex((x) => {
        const c = x.cells[0];
        if (c) c.maxExportW = 3000;
      }),
      intervalSeconds: L,
      interval: t,
      schedule: [
        { cell: 11n, side: 'sell', energyWh: 1000n },
        { cell: 12n, side: 'buy', energyWh: 1000n },
      ],
      deals: [],
    });
    expect(plan.refusals).toEqual([
      {
        trade: { kind: 'pool', interval: t, cell: 11n, side: 'sell', energyWh: 1000n },
        code: 'CellLimit',
        reason: 'cell 11 (prosumer-1) is scheduled to export 4000 W, its limit is 3000 W',
      },
    ]);
    expect(plan.ports[0]).toEqual({ name: 'prosumer-1', watts: 0 }); // not written
    expect(plan.ports[1]).toEqual({ name: 'prosumer-2', watts: -4000 });
    expect(plan.reserve).toEqual([
      {
        interval: t + 1n,
        code: 'CellLimit',
        side: 'buy',
        energyWh: 1000n,
        cell: 11n,
        forInterval: t,
        reason: 'CellLimit: cell 11 (prosumer-1) is scheduled to export 4000 W, its limit is 3000 W',
      },
    ]);
  });

  it("error: refuses the positions, best fit first, that push the complex beyond the router's limit (the nested cells' parent)", () => {
    const plan = planInterval({
      topology: complex((x) => {
        x.router.maxExportW = 5000;
      }),
      intervalSeconds: L,
      interval: t,
      schedule: [
        { cell: 11n, side: 'sell', energyWh: 1000n }, // 4000 W
        { cell: 12n, side: 'sell', energyWh: 500n }, // 2000 W
        { cell: 13n, side: 'sell', energyWh: 250n }, // 1000 W
      ],
      deals: [],
    });
    expect(plan.refusals.map((r) => [r.code, r.trade.kind === 'pool' ? r.trade.cell : 0n])).toEqual([
      ['RouterLimit', 12n],
    ]);
    expect(plan.refusals[0]?.reason).toBe("the complex would export 7000 W, the router's limit is 5000 W");
    expect(plan.exchangeW).toBe(5000);
  });

  it('islanded: the router is open (0 %), trades with the outside are refused, trades inside the complex stand', () => {
    const plan = planInterval({
      topology: complex(),
      intervalSeconds: L,
      interval: t,
      schedule: [
        { cell: 11n, side: 'sell', energyWh: 500n },
        { cell: 12n, side: 'buy', energyWh: 500n },
        { cell: 13n, side: 'sell', energyWh: 300n }, // its buyer is outside
      ],
      deals: [],
      islanded: true,
    });
    expect(plan.router).toEqual({ limitW: 0, percent: 0 });
    expect(plan.refusals.map((r) => r.code)).toEqual(['RouterLimit']);
    expect(plan.refusals[0]?.trade).toMatchObject({ cell: 13n });
    expect(plan.ports.map((p) => p.watts)).toEqual([2000, -2000, 0, 0]);
  });

  it('a deal refused on one side is refused on both, and the other side is not written either', () => {
    const plan = planInterval({
      topology: complex((x) => {
        const c = x.cells[1];
        if (c) c.maxImportW = 1000;
      }),
      intervalSeconds: L,
      interval: t,
      schedule: [],
      deals: [deal({ maxWhPerInterval: 1000n })],
    });
    expect(plan.refusals).toHaveLength(1);
    expect(plan.refusals[0]?.trade.kind).toBe('deal');
    expect(plan.cells.map((c) => c.scheduledW)).toEqual([0, 0, 0, 0]);
    expect(plan.links.every((l) => l.watts === 0)).toBe(true);
  });
});
