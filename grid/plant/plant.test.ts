import { describe, expect, it } from 'vitest';
import { loadTopology, parseTopology, type Topology } from '../topology/index.js';
import { createPlant, PlantWriteError, share } from './index.js';

const MIDNIGHT = 1_800_000_000 - (1_800_000_000 % 86_400); // a UTC midnight
const fourProsumers = loadTopology();

/** One prosumer behind a router, with a small battery: easy to push past its limits. */
function oneCell(overrides: { initialSocPct?: number; capacityWh?: number } = {}): Topology {
  return parseTopology({
    version: 1,
    name: 'one cell',
    zone: 'test',
    acBus: { nominalV: 400 },
    router: { ratedW: 20_000, maxImportW: 20_000, maxExportW: 20_000 },
    dcMesh: { nominalV: 48, links: [] },
    cells: [
      {
        name: 'solo',
        maxImportW: 20_000,
        maxExportW: 20_000,
        pv: { peakW: 6000 },
        hub: {
          capacityWh: overrides.capacityWh ?? 2000,
          initialSocPct: overrides.initialSocPct ?? 50,
          minSocPct: 10,
          maxSocPct: 100,
          maxChargeW: 3000,
          maxDischargeW: 3000,
          chargeEfficiencyPct: 95,
          dischargeEfficiencyPct: 95,
        },
        loads: [
          { name: 'house', kind: 'household', meanW: 800 },
          { name: 'hp', kind: 'heatPump', meanW: 1200 },
          { name: 'ev', kind: 'ev', meanW: 500 },
        ],
      },
    ],
  });
}

describe('the plant model', () => {
  it('conserves energy over a simulated day: generation - load - net export = stored + losses, exactly', async () => {
    const plant = await createPlant({
      topology: fourProsumers,
      seed: 42,
      startTime: MIDNIGHT,
      stepSeconds: 5,
    });
    const before = plant.totals();
    // Some trading during the day: prosumer-1 exports 2 kW, prosumer-2 sends 1.5 kW to 3 over DC.
    plant.write('port:prosumer-1', { enabled: true, watts: 2000 });
    plant.write('link:rv-2-3', { enabled: true, watts: 1500 });
    let maxRouterOverLimit = 0;
    for (let s = 0; s < 86_400; s += 300) {
      plant.step(300);
      const state = plant.state();
      // The AC bus balances: the ports' exports are the router's export.
      expect(state.cells.reduce((sum, c) => sum + c.portW, 0)).toBe(state.routerW);
      for (const c of state.cells) {
        // Each cell's bus balances.
        expect(c.pvW - c.loadW + c.hubW - c.linksOutW - c.portW).toBe(0);
        const hub = fourProsumers.cells.find((x) => x.name === c.name)?.hub;
        expect(c.socPermille).toBeGreaterThanOrEqual((hub?.minSocPct ?? 0) * 10);
        expect(c.socPermille).toBeLessThanOrEqual((hub?.maxSocPct ?? 0) * 10);
      }
      maxRouterOverLimit = Math.max(maxRouterOverLimit, state.routerW - state.routerLimits.exportW);
    }
    expect(maxRouterOverLimit).toBeLessThanOrEqual(0);
    const after = plant.totals();
    const netExport = after.routerExportWs - after.routerImportWs;
    expect(after.pvWs - after.loadWs - netExport).toBe(after.storedWs - before.storedWs + after.hubLossWs);
    expect(after.pvWs).toBeGreaterThan(0n);
    expect(after.hubLossWs).toBeGreaterThan(0n);
    // The meters at the cells' boundaries add up to the router (links cancel), within rounding.
    let metered = 0n;
    for (const c of fourProsumers.cells) {
      const { importWh, exportWh } = plant.cellCounters(c.name);
      metered += exportWh - importWh;
    }
    const routerWh = netExport / 3600n;
    expect(metered - routerWh).toBeGreaterThanOrEqual(-BigInt(fourProsumers.cells.length));
    expect(metered - routerWh).toBeLessThanOrEqual(BigInt(fourProsumers.cells.length));
  });

  it('replays the same day from the same seed, and another day from another seed', async () => {
    const run = async (seed: number) => {
      const plant = await createPlant({
        topology: fourProsumers,
        seed,
        startTime: MIDNIGHT,
        stepSeconds: 10,
      });
      plant.step(86_400);
      return plant.totals();
    };
    const [a, b, c] = await Promise.all([run(1), run(1), run(2)]);
    expect(a).toEqual(b);
    expect(a.pvWs).not.toBe(c.pvWs);
  });

  it("holds a cell's port at its setpoint with the hub while the hub is within its limits", async () => {
    const plant = await createPlant({ topology: fourProsumers, seed: 3, startTime: MIDNIGHT + 7 * 3600 });
    plant.write('port:prosumer-2', { enabled: true, watts: -1500 });
    plant.write('link:rv-1-2', { enabled: true, watts: 1000 });
    plant.step(60);
    const state = plant.state();
    const p2 = state.cells.find((c) => c.name === 'prosumer-2');
    const p1 = state.cells.find((c) => c.name === 'prosumer-1');
    expect(p2?.portW).toBe(-1500);
    // Without a setpoint a cell consumes its own: its port stays at 0.
    expect(p1?.portW).toBe(0);
    // The link moved 1 kW from 1 to 2, across their boundaries.
    expect(p1?.boundaryW).toBe(1000);
    expect(p2?.boundaryW).toBe(-2500);
  });

  it('islanded (router limit 0): no exchange with the public grid, and load beyond the hub is shed and counted', async () => {
    const plant = await createPlant({
      topology: oneCell({ initialSocPct: 12 }),
      seed: 5,
      startTime: MIDNIGHT + 20 * 3600, // evening: no sun, EV charging
    });
    plant.write('router', { enabled: true, watts: 0 });
    plant.step(1800);
    const state = plant.state();
    expect(state.islanded).toBe(true);
    expect(state.routerW).toBe(0);
    const totals = plant.totals();
    expect(totals.routerImportWs + totals.routerExportWs).toBe(0n);
    expect(totals.shedWs).toBeGreaterThan(0n);
    expect(state.cells[0]?.socPermille).toBe(100); // the hub is down to its 10 % floor
  });

  it('islanded at noon with a full hub: surplus PV is curtailed and counted, nothing is exported', async () => {
    const plant = await createPlant({
      topology: oneCell({ initialSocPct: 100 }),
      seed: 5,
      startTime: MIDNIGHT + 12 * 3600,
    });
    plant.write('router', { enabled: true, watts: 0 });
    plant.step(600);
    const totals = plant.totals();
    expect(totals.curtailedWs).toBeGreaterThan(0n);
    expect(totals.routerExportWs).toBe(0n);
    expect(plant.state().routerW).toBe(0);
  });

  it('connected, the same shortfall is imported through the router instead of being shed', async () => {
    const plant = await createPlant({
      topology: oneCell({ initialSocPct: 12 }),
      seed: 5,
      startTime: MIDNIGHT + 20 * 3600,
    });
    plant.step(1800);
    const totals = plant.totals();
    expect(totals.shedWs).toBe(0n);
    expect(totals.routerImportWs).toBeGreaterThan(0n);
  });

  it('reverts a setpoint when it is not refreshed within its revert time', async () => {
    const plant = await createPlant({ topology: fourProsumers, seed: 1, startTime: MIDNIGHT });
    plant.write('hub:prosumer-3', { enabled: true, watts: 2000, revertSeconds: 30 });
    plant.step(20);
    plant.write('hub:prosumer-3', { watts: 2000 }); // the heartbeat: a refresh restarts the timer
    plant.step(29);
    expect(plant.setpoint('hub:prosumer-3').enabled).toBe(true);
    expect(plant.state().cells[2]?.hubW).toBe(2000);
    plant.step(2);
    expect(plant.setpoint('hub:prosumer-3').enabled).toBe(false);
    expect(plant.reverts()).toEqual([{ deviceId: 'hub:prosumer-3', at: MIDNIGHT + 50 }]);
  });

  it('error: refuses a setpoint beyond the device limits, naming the range', async () => {
    const plant = await createPlant({ topology: fourProsumers, seed: 1, startTime: MIDNIGHT });
    expect(() => plant.write('hub:prosumer-1', { watts: 5001 })).toThrow(PlantWriteError);
    expect(() => plant.write('link:rv-1-2', { watts: -3001 })).toThrow(/\[-3000, 3000\]/);
    expect(() => plant.write('port:prosumer-9', { watts: 0 })).toThrow(
      /no controllable device port:prosumer-9/,
    );
  });

  it('shares an amount in proportion without exceeding a cap', () => {
    expect(share(4, [2, 2, 4])).toEqual([1, 1, 2]);
    expect(share(3, [1, 1, 2])).toEqual([1, 1, 1]);
    expect(share(100, [5, 7])).toEqual([5, 7]);
    expect(share(7, [0, 3, -2, 10]).reduce((a, b) => a + b, 0)).toBe(7);
  });
});
