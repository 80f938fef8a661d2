/**
 * The plant: one physical model of a complex of power cells. Each cell has PV, loads and an
 * energy hub (a battery) behind its energy port; the ports join a shared AC bus that reaches
 * the public grid through the energy router; rectiverters link cells over a DC mesh.
 *
 * Every step keeps each bus in balance: on a cell's bus, generation - load + hub - links out
 * - port export = 0; on the AC bus, the ports' exports sum to the router's export. The hub
 * holds its cell's port at the port's setpoint (0 when none: self-consumption) within its
 * limits; what it cannot hold flows through the router; beyond the router's limit (0 when
 * islanded) the hubs help each other, then PV is curtailed or load is shed, and both are
 * counted. Energy is integrated exactly, in watt-seconds (bigint). docs/grid.md has the model.
 */
import type { Clock } from '../../chain/clock/index.js';
import { BaseError } from '../../chain/errors/index.js';
import type { Topology } from '../topology/index.js';
import { keyOf, loadPower, pvPower } from './profiles.js';

/** A controllable point of a device: SunSpec 704's setpoint, its enable and its revert timer. */
export interface Setpoint {
  enabled: boolean;
  /** W: hub power (+ discharge), port target (+ export), link flow (+ from a to b), router limit. */
  watts: number;
  /** Seconds after the last write at which the device falls back (0 = never), SunSpec RvrtTms. */
  revertSeconds: number;
  /** Plant time of the last write. */
  writtenAt: number;
}

export type DeviceKind = 'router' | 'hub' | 'port' | 'link' | 'meter';

/** A device of the plant; `id` is `router`, `hub:<cell>`, `port:<cell>`, `link:<link>` or `meter:<cell>`. */
export interface PlantDevice {
  id: string;
  kind: DeviceKind;
  /** The cell it belongs to (hub, port, meter). */
  cell?: string;
  /** The legal setpoint range, W (controllable devices). */
  range?: { min: number; max: number };
}

export interface CellState {
  name: string;
  pvW: number;
  curtailedW: number;
  loadW: number;
  shedW: number;
  /** Hub power, W: + discharge. */
  hubW: number;
  /** Net flow out over DC links, W. */
  linksOutW: number;
  /** The port's export to the AC bus, W. */
  portW: number;
  /** Across the cell's boundary (port + links), W: + export. What its meter measures. */
  boundaryW: number;
  storedWs: bigint;
  socPermille: number;
  /** Load shed in this cell since the plant started, Ws (cumulative; unserved energy). */
  shedWs: bigint;
  /** PV curtailed in this cell since the plant started, Ws (cumulative). */
  curtailedWs: bigint;
}

export interface PlantState {
  time: number;
  cells: CellState[];
  links: { name: string; flowW: number }[];
  /** Export of the complex to the public grid through the router, W. */
  routerW: number;
  /** The router's effective limits, W. */
  routerLimits: { importW: number; exportW: number };
  islanded: boolean;
}

/** Energy counters, Ws (watt-seconds; / 3600 for Wh). */
export interface EnergyTotals {
  pvWs: bigint;
  curtailedWs: bigint;
  loadWs: bigint;
  shedWs: bigint;
  hubLossWs: bigint;
  storedWs: bigint;
  routerExportWs: bigint;
  routerImportWs: bigint;
}

export class PlantWriteError extends BaseError {
  override name = 'PlantWriteError' as const;
}

export interface Plant {
  readonly topology: Topology;
  /** Plant time, Unix seconds. */
  time(): number;
  /** Advances the physics by `dtSeconds` (a whole number), in steps of at most `stepSeconds`. */
  step(dtSeconds: number): void;
  /** Advances the physics to the clock's time (never backwards). */
  sync(): Promise<void>;
  devices(): PlantDevice[];
  setpoint(deviceId: string): Setpoint;
  /**
   * Changes a setpoint at the current plant time; any write restarts the revert timer.
   * @throws PlantWriteError when the value is outside the device's limits.
   */
  write(deviceId: string, change: Partial<Omit<Setpoint, 'writtenAt'>>): void;
  state(): PlantState;
  /** The counters of a cell's meter (its boundary), Wh, rounded down. */
  cellCounters(cell: string): { importWh: bigint; exportWh: bigint };
  totals(): EnergyTotals;
  /** Setpoints that fell back because their revert timer ran out, in order. */
  reverts(): { deviceId: string; at: number }[];
  /**
   * A device's energy counters, Ws: `injected` while its power is positive (hub discharging,
   * port or router exporting, link flowing from a to b), `absorbed` while negative.
   */
  deviceEnergy(deviceId: string): { injectedWs: bigint; absorbedWs: bigint };
  /** Whether `sync()` has a clock to follow. */
  readonly clocked: boolean;
}

export interface CreatePlantParameters {
  topology: Topology;
  /** The simulation's time source (chain time in the demo); `sync()` follows it. */
  clock?: Clock;
  /** Seeds the PV and load profiles. */
  seed: number;
  /** Start time, Unix seconds; read from the clock when not given. */
  startTime?: number;
  /** Largest physics step, s (default 1). */
  stepSeconds?: number;
  /** Called when a setpoint reverts (logging). */
  onRevert?: (deviceId: string, at: number) => void;
}

/** Shares `amount` among `caps` in proportion, whole units, never above a cap. */
export function share(amount: number, caps: readonly number[]): number[] {
  const clean = caps.map((c) => Math.max(0, c));
  const total = clean.reduce((a, b) => a + b, 0);
  if (total <= amount) return clean;
  const out = clean.map((c) => Math.floor((amount * c) / total));
  let rest = amount - out.reduce((a, b) => a + b, 0);
  for (let i = 0; rest > 0; i = (i + 1) % out.length) {
    if ((out[i] ?? 0) < (clean[i] ?? 0)) {
      out[i] = (out[i] ?? 0) + 1;
      rest--;
    }
  }
  return out;
}

/**
 * The devices of a topology, in the order their Modbus servers take ports: the router; per
 * cell its hub, port and meter; then the rectiverters.
 */
export function plantDevices(topology: Topology): PlantDevice[] {
  return [
    { id: 'router', kind: 'router', range: { min: 0, max: topology.router.ratedW } },
    ...topology.cells.flatMap((c): PlantDevice[] => [
      {
        id: `hub:${c.name}`,
        kind: 'hub',
        cell: c.name,
        range: { min: -c.hub.maxChargeW, max: c.hub.maxDischargeW },
      },
      { id: `port:${c.name}`, kind: 'port', cell: c.name, range: { min: -c.maxImportW, max: c.maxExportW } },
      { id: `meter:${c.name}`, kind: 'meter', cell: c.name },
    ]),
    ...topology.dcMesh.links.map(
      (l): PlantDevice => ({ id: `link:${l.name}`, kind: 'link', range: { min: -l.ratedW, max: l.ratedW } }),
    ),
  ];
}

const clamp = (v: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, v));
const bmin = (a: bigint, b: bigint) => (a < b ? a : b);

/**
 * Builds the plant of a topology.
 * @example
 * const plant = await createPlant({ topology: loadTopology(), clock, seed: 7 });
 * plant.write('port:prosumer-1', { enabled: true, watts: 2000, revertSeconds: 60 });
 * await plant.sync();
 */
export async function createPlant(parameters: CreatePlantParameters): Promise<Plant> {
  const { topology, seed } = parameters;
  const stepSeconds = parameters.stepSeconds ?? 1;
  const start = parameters.startTime ?? (parameters.clock ? Number(await parameters.clock.now()) : undefined);
  if (start === undefined) throw new BaseError('createPlant needs a clock or a startTime');
  let time: number = start;
  const cells = topology.cells;
  const cellIndex = new Map(cells.map((c, i) => [c.name, i]));
  const links = topology.dcMesh.links.map((l) => ({
    ...l,
    ai: cellIndex.get(l.a) ?? -1,
    bi: cellIndex.get(l.b) ?? -1,
  }));
  const pvKeys = cells.map((c) => keyOf(`${c.name}/pv`));
  const loadKeys = cells.map((c) => c.loads.map((l) => keyOf(`${c.name}/${l.name}`)));
  const Ws = (wh: number) => BigInt(wh) * 3600n;
  const minStored = cells.map((c) => (Ws(c.hub.capacityWh) * BigInt(c.hub.minSocPct)) / 100n);
  const maxStored = cells.map((c) => (Ws(c.hub.capacityWh) * BigInt(c.hub.maxSocPct)) / 100n);
  const stored = cells.map((c) => (Ws(c.hub.capacityWh) * BigInt(c.hub.initialSocPct)) / 100n);
  const meterImport = cells.map(() => 0n);
  const meterExport = cells.map(() => 0n);
  const cellShed = cells.map(() => 0n);
  const cellCurtailed = cells.map(() => 0n);
  const totals: EnergyTotals = {
    pvWs: 0n,
    curtailedWs: 0n,
    loadWs: 0n,
    shedWs: 0n,
    hubLossWs: 0n,
    storedWs: stored.reduce((a, b) => a + b, 0n),
    routerExportWs: 0n,
    routerImportWs: 0n,
  };
  const revertLog: { deviceId: string; at: number }[] = [];
  const energy = new Map<string, { injectedWs: bigint; absorbedWs: bigint }>();
  function count(id: string, watts: number, dt: bigint) {
    const e = energy.get(id) ?? { injectedWs: 0n, absorbedWs: 0n };
    if (watts > 0) e.injectedWs += BigInt(watts) * dt;
    else e.absorbedWs += BigInt(-watts) * dt;
    energy.set(id, e);
  }

  const devices = plantDevices(topology);
  const controls = new Map<string, Setpoint>();
  for (const d of devices) {
    if (d.range) controls.set(d.id, { enabled: false, watts: 0, revertSeconds: 0, writtenAt: time });
  }
  const control = (id: string): Setpoint => {
    const c = controls.get(id);
    if (!c)
      throw new PlantWriteError(`no controllable device ${id}`, {
        details: `devices: ${[...controls.keys()].join(', ')}`,
      });
    return c;
  };

  let last: PlantState = snapshotEmpty();
  function snapshotEmpty(): PlantState {
    return {
      time,
      cells: cells.map((c, i) => ({
        name: c.name,
        pvW: 0,
        curtailedW: 0,
        loadW: 0,
        shedW: 0,
        hubW: 0,
        linksOutW: 0,
        portW: 0,
        boundaryW: 0,
        storedWs: stored[i] ?? 0n,
        socPermille: socPermille(i),
        shedWs: cellShed[i] ?? 0n,
        curtailedWs: cellCurtailed[i] ?? 0n,
      })),
      links: links.map((l) => ({ name: l.name, flowW: 0 })),
      routerW: 0,
      routerLimits: routerLimits(),
      islanded: false,
    };
  }
  function socPermille(i: number): number {
    const cap = Ws(cells[i]?.hub.capacityWh ?? 1);
    return Number(((stored[i] ?? 0n) * 1000n) / cap);
  }
  function routerLimits() {
    const r = control('router');
    const limit = r.enabled ? r.watts : Number.POSITIVE_INFINITY;
    return {
      importW: Math.min(limit, topology.router.maxImportW),
      exportW: Math.min(limit, topology.router.maxExportW),
    };
  }

  function expire(at: number) {
    for (const [id, c] of controls) {
      if (c.enabled && c.revertSeconds > 0 && at >= c.writtenAt + c.revertSeconds) {
        c.enabled = false;
        revertLog.push({ deviceId: id, at });
        parameters.onRevert?.(id, at);
      }
    }
  }

  /** One physics step of `dt` seconds from `time`, powers held at their values at `time`. */
  function substep(dt: number) {
    expire(time);
    const n = cells.length;
    const pv = cells.map((c, i) => pvPower(seed, pvKeys[i] ?? 0, c.pv.peakW, time));
    const load = cells.map((c, i) =>
      c.loads.reduce((sum, l, j) => sum + loadPower(seed, loadKeys[i]?.[j] ?? 0, l.kind, l.meanW, time), 0),
    );
    const flows = links.map((l) => {
      const s = control(`link:${l.name}`);
      return s.enabled ? clamp(s.watts, -l.ratedW, l.ratedW) : 0;
    });
    const linksOut = cells.map(() => 0);
    links.forEach((l, k) => {
      linksOut[l.ai] = (linksOut[l.ai] ?? 0) + (flows[k] ?? 0);
      linksOut[l.bi] = (linksOut[l.bi] ?? 0) - (flows[k] ?? 0);
    });
    const hmax: number[] = [];
    const hmin: number[] = [];
    const hub: number[] = [];
    const bigDt = BigInt(dt);
    for (let i = 0; i < n; i++) {
      const c = cells[i];
      if (!c) continue;
      const avail = (stored[i] ?? 0n) - (minStored[i] ?? 0n);
      const room = (maxStored[i] ?? 0n) - (stored[i] ?? 0n);
      const canDischarge = avail > 0n ? (avail * BigInt(c.hub.dischargeEfficiencyPct)) / 100n / bigDt : 0n;
      const canCharge = room > 0n ? (room * 100n) / BigInt(c.hub.chargeEfficiencyPct) / bigDt : 0n;
      hmax[i] = Number(bmin(BigInt(c.hub.maxDischargeW), canDischarge));
      hmin[i] = -Number(bmin(BigInt(c.hub.maxChargeW), canCharge));
      const own = control(`hub:${c.name}`);
      const port = control(`port:${c.name}`);
      const net = (pv[i] ?? 0) - (load[i] ?? 0) - (linksOut[i] ?? 0);
      const wanted = own.enabled ? own.watts : (port.enabled ? port.watts : 0) - net;
      hub[i] = clamp(wanted, hmin[i] ?? 0, hmax[i] ?? 0);
    }
    const curtailed = cells.map(() => 0);
    const shed = cells.map(() => 0);
    const portOf = (i: number) =>
      (pv[i] ?? 0) -
      (curtailed[i] ?? 0) -
      ((load[i] ?? 0) - (shed[i] ?? 0)) +
      (hub[i] ?? 0) -
      (linksOut[i] ?? 0);
    const sumPorts = () => cells.reduce((s, _c, i) => s + portOf(i), 0);
    const limits = routerLimits();
    let g = sumPorts();
    if (g > limits.exportW) {
      // Too much export: every hub charges harder, then PV is curtailed.
      const more = share(
        g - limits.exportW,
        hub.map((h, i) => h - (hmin[i] ?? 0)),
      );
      more.forEach((m, i) => {
        hub[i] = (hub[i] ?? 0) - m;
      });
      g = sumPorts();
      if (g > limits.exportW) {
        share(g - limits.exportW, pv).forEach((m, i) => {
          curtailed[i] = m;
        });
      }
    } else if (g < -limits.importW) {
      // Too much import: every hub discharges harder, then load is shed.
      const more = share(
        -limits.importW - g,
        hub.map((h, i) => (hmax[i] ?? 0) - h),
      );
      more.forEach((m, i) => {
        hub[i] = (hub[i] ?? 0) + m;
      });
      g = sumPorts();
      if (g < -limits.importW) {
        share(-limits.importW - g, load).forEach((m, i) => {
          shed[i] = m;
        });
      }
    }
    g = sumPorts();
    const state: CellState[] = [];
    for (let i = 0; i < n; i++) {
      const c = cells[i];
      if (!c) continue;
      const h = hub[i] ?? 0;
      if (h > 0) {
        const out = BigInt(h) * bigDt;
        const drawn =
          (out * 100n + BigInt(c.hub.dischargeEfficiencyPct) - 1n) / BigInt(c.hub.dischargeEfficiencyPct);
        stored[i] = (stored[i] ?? 0n) - drawn;
        totals.hubLossWs += drawn - out;
      } else if (h < 0) {
        const charged = BigInt(-h) * bigDt;
        const kept = (charged * BigInt(c.hub.chargeEfficiencyPct)) / 100n;
        stored[i] = (stored[i] ?? 0n) + kept;
        totals.hubLossWs += charged - kept;
      }
      const port = portOf(i);
      const boundary = port + (linksOut[i] ?? 0);
      count(`hub:${c.name}`, h, bigDt);
      count(`port:${c.name}`, port, bigDt);
      count(`meter:${c.name}`, boundary, bigDt);
      if (boundary > 0) meterExport[i] = (meterExport[i] ?? 0n) + BigInt(boundary) * bigDt;
      else meterImport[i] = (meterImport[i] ?? 0n) + BigInt(-boundary) * bigDt;
      totals.pvWs += BigInt((pv[i] ?? 0) - (curtailed[i] ?? 0)) * bigDt;
      totals.curtailedWs += BigInt(curtailed[i] ?? 0) * bigDt;
      totals.loadWs += BigInt((load[i] ?? 0) - (shed[i] ?? 0)) * bigDt;
      totals.shedWs += BigInt(shed[i] ?? 0) * bigDt;
      cellShed[i] = (cellShed[i] ?? 0n) + BigInt(shed[i] ?? 0) * bigDt;
      cellCurtailed[i] = (cellCurtailed[i] ?? 0n) + BigInt(curtailed[i] ?? 0) * bigDt;
      state.push({
        name: c.name,
        pvW: (pv[i] ?? 0) - (curtailed[i] ?? 0),
        curtailedW: curtailed[i] ?? 0,
        loadW: (load[i] ?? 0) - (shed[i] ?? 0),
        shedW: shed[i] ?? 0,
        hubW: h,
        linksOutW: linksOut[i] ?? 0,
        portW: port,
        boundaryW: boundary,
        storedWs: stored[i] ?? 0n,
        socPermille: socPermille(i),
        shedWs: cellShed[i] ?? 0n,
        curtailedWs: cellCurtailed[i] ?? 0n,
      });
    }
    links.forEach((l, k) => {
      count(`link:${l.name}`, flows[k] ?? 0, bigDt);
    });
    count('router', g, bigDt);
    if (g > 0) totals.routerExportWs += BigInt(g) * bigDt;
    else totals.routerImportWs += BigInt(-g) * bigDt;
    totals.storedWs = stored.reduce((a, b) => a + b, 0n);
    time += dt;
    last = {
      time,
      cells: state,
      links: links.map((l, k) => ({ name: l.name, flowW: flows[k] ?? 0 })),
      routerW: g,
      routerLimits: limits,
      islanded: limits.importW === 0 && limits.exportW === 0,
    };
  }

  function step(dtSeconds: number) {
    if (!Number.isInteger(dtSeconds) || dtSeconds < 0)
      throw new RangeError(`step takes whole seconds >= 0, got ${dtSeconds}`);
    let rest = dtSeconds;
    while (rest > 0) {
      const dt = Math.min(stepSeconds, rest);
      substep(dt);
      rest -= dt;
    }
    expire(time);
  }

  return {
    topology,
    time: () => time,
    step,
    async sync() {
      if (!parameters.clock) throw new BaseError('this plant has no clock: call step()');
      const now = Number(await parameters.clock.now());
      if (now > time) step(now - time);
    },
    devices: () => devices.map((d) => ({ ...d })),
    setpoint: (id) => ({ ...control(id) }),
    write(id, change) {
      const c = control(id);
      const range = devices.find((d) => d.id === id)?.range ?? { min: 0, max: 0 };
      if (change.watts !== undefined) {
        if (!Number.isInteger(change.watts) || change.watts < range.min || change.watts > range.max) {
          throw new PlantWriteError(`setpoint ${change.watts} W refused by ${id}`, {
            details: `expected a whole number of watts in [${range.min}, ${range.max}]`,
          });
        }
      }
      if (
        change.revertSeconds !== undefined &&
        (!Number.isInteger(change.revertSeconds) || change.revertSeconds < 0)
      ) {
        throw new PlantWriteError(`revert time ${change.revertSeconds} s refused by ${id}`, {
          details: 'expected whole seconds >= 0',
        });
      }
      Object.assign(c, change, { writtenAt: time });
    },
    state: () => ({ ...last, routerLimits: routerLimits() }),
    cellCounters(cell) {
      const i = cellIndex.get(cell);
      if (i === undefined) throw new BaseError(`no cell ${cell} in topology ${topology.name}`);
      return { importWh: (meterImport[i] ?? 0n) / 3600n, exportWh: (meterExport[i] ?? 0n) / 3600n };
    },
    totals: () => ({ ...totals }),
    reverts: () => [...revertLog],
    deviceEnergy: (id) => ({ ...(energy.get(id) ?? { injectedWs: 0n, absorbedWs: 0n }) }),
    clocked: parameters.clock !== undefined,
  };
}
