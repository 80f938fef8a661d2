/**
 * A tap on the plant's physics at every interval boundary. The Modbus servers advance the
 * plant to the clock's time on each request; this wrapper makes every advance stop exactly at
 * each boundary it crosses and records the counters there, so the demo knows, to the watt-second,
 * what each cell's boundary, the router and the storage did in every interval.
 */
import type { Clock } from '../chain/clock/index.js';
import type { EnergyTotals, Plant } from '../grid/plant/index.js';

/** The plant's counters at the start of an interval. */
export interface BoundarySnapshot {
  interval: bigint;
  totals: EnergyTotals;
  router: { injectedWs: bigint; absorbedWs: bigint };
  /** Each cell's boundary counters, Ws (+ export), by cell name. */
  cells: Map<string, { importWs: bigint; exportWs: bigint }>;
  /** Each hub's state of charge, per mille, by cell name. */
  socPermille: Map<string, number>;
}

/** What the plant did during one interval. */
export interface IntervalPhysics {
  interval: bigint;
  gridImportWh: bigint;
  gridExportWh: bigint;
  pvWh: bigint;
  loadWh: bigint;
  curtailedWh: bigint;
  shedWh: bigint;
  /** pv - load - net export - (stored + hub losses), Ws: 0 when energy is conserved. */
  residualWs: bigint;
  /** Each cell's metered energy at its boundary by the plant's own counters, Wh. */
  cells: Map<string, { importWh: bigint; exportWh: bigint }>;
  /** Each hub's state of charge at the end of the interval, per mille. */
  socPermille: Map<string, number>;
}

export interface PlantTap {
  /** The plant to hand to the Modbus servers: its `sync` stops at every boundary. */
  plant: Plant;
  physics(interval: bigint): IntervalPhysics | undefined;
}

/** Wraps `plant`; `clock` is the time it follows, `intervalSeconds` the pool's interval. */
export function tapPlant(plant: Plant, clock: Clock, intervalSeconds: bigint): PlantTap {
  const L = Number(intervalSeconds);
  const snapshots = new Map<bigint, BoundarySnapshot>();
  // A cell's boundary is its port plus its links: the plant's meter counters (whole Wh) are it.
  const snapshot = (interval: bigint): BoundarySnapshot => ({
    interval,
    totals: plant.totals(),
    router: plant.deviceEnergy('router'),
    cells: new Map(
      plant.topology.cells.map((c) => {
        const k = plant.cellCounters(c.name);
        return [c.name, { importWs: k.importWh * 3600n, exportWs: k.exportWh * 3600n }];
      }),
    ),
    socPermille: new Map(plant.state().cells.map((c) => [c.name, c.socPermille])),
  });
  let syncing: Promise<void> = Promise.resolve();
  const advanceTo = (target: number) => {
    for (;;) {
      const next = (Math.floor(plant.time() / L) + 1) * L;
      if (next > target) break;
      plant.step(next - plant.time());
      const interval = BigInt(next / L);
      snapshots.set(interval, snapshot(interval));
    }
    if (target > plant.time()) plant.step(target - plant.time());
  };
  const wrapped: Plant = {
    get topology() {
      return plant.topology;
    },
    time: () => plant.time(),
    step: (dt) => advanceTo(plant.time() + dt),
    sync() {
      syncing = syncing.then(async () => advanceTo(Number(await clock.now())));
      return syncing;
    },
    devices: () => plant.devices(),
    setpoint: (id) => plant.setpoint(id),
    write: (id, change) => plant.write(id, change),
    state: () => plant.state(),
    cellCounters: (cell) => plant.cellCounters(cell),
    totals: () => plant.totals(),
    reverts: () => plant.reverts(),
    deviceEnergy: (id) => plant.deviceEnergy(id),
    clocked: true,
  };
  const wh = (ws: bigint) => ws / 3600n;
  return {
    plant: wrapped,
    physics(interval) {
      const a = snapshots.get(interval);
      const b = snapshots.get(interval + 1n);
      if (!a || !b) return undefined;
      const d = (k: keyof EnergyTotals) => b.totals[k] - a.totals[k];
      const exportWs = b.router.injectedWs - a.router.injectedWs;
      const importWs = b.router.absorbedWs - a.router.absorbedWs;
      const residualWs = d('pvWs') - d('loadWs') - (exportWs - importWs) - (d('storedWs') + d('hubLossWs'));
      return {
        interval,
        gridImportWh: wh(importWs),
        gridExportWh: wh(exportWs),
        pvWh: wh(d('pvWs')),
        loadWh: wh(d('loadWs')),
        curtailedWh: wh(d('curtailedWs')),
        shedWh: wh(d('shedWs')),
        residualWs,
        socPermille: b.socPermille,
        cells: new Map(
          [...b.cells].map(([name, k]) => {
            const s = a.cells.get(name) ?? { importWs: 0n, exportWs: 0n };
            return [name, { importWh: wh(k.importWs - s.importWs), exportWh: wh(k.exportWs - s.exportWs) }];
          }),
        ),
      };
    },
  };
}
