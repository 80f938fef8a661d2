/**
 * The Neural Grid controller of one complex: follows the schedule on chain (confirmed
 * blocks), plans each interval (planInterval: arbitration, then setpoints), writes the
 * setpoints over Modbus a short lead before delivery starts, refreshes them within the
 * devices' revert time, reads them back, and publishes plan, refusals, reserve requests and
 * telemetry on MQTT. After each interval it reads the ports', router's and meters' counters
 * and reports unserved energy and shortfalls (assessDelivery). If the controller goes away,
 * the devices fall back on their own (the revert timers).
 */
import type { MqttClient } from 'mqtt';
import type { Chain, PublicClient, Transport } from 'viem';
import type { Clock } from '../../chain/clock/index.js';
import type { Manifest } from '../../chain/manifest/index.js';
import { plantDevices } from '../plant/index.js';
import { createDerClient, type DerClient } from '../sunspec/derClient.js';
import { connectSunSpec, type SunSpecClient } from '../sunspec/sunspecClient.js';
import type { Topology } from '../topology/index.js';
import {
  assessDelivery,
  type BoundarySample,
  type CellSample,
  type DeliveryReport,
} from './assessDelivery.js';
import { encodePayload, type GridTelemetry, type GridUnserved, gridTopics } from './messages.js';
import { type IntervalPlan, planInterval } from './planInterval.js';
import { createScheduleFollower } from './scheduleFollower.js';

/** The logger the controller writes to (chain/logger's Logger fits). */
export interface GridLogger {
  debug(message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

/** Where a device answers on Modbus TCP. */
export interface DeviceEndpoint {
  host: string;
  port: number;
  unitId?: number;
}

export interface GridControllerParameters {
  topology: Topology;
  manifest: Manifest;
  publicClient: PublicClient<Transport, Chain>;
  /**
   * The Modbus endpoint of each device id (`router`, `hub:<cell>`, `port:<cell>`, `link:<link>`,
   * and `meter:<cell>`, read after each interval).
   */
  endpoint: (deviceId: string) => DeviceEndpoint;
  clock: Clock;
  logger: GridLogger;
  /** Telemetry, plans, refusals and reserve requests go here when given. */
  mqtt?: MqttClient;
  controllerId?: string;
  /** Blocks behind the head that count as final (default 2). */
  confirmations?: number;
  /** Revert time written with every setpoint, s of the clock (default 60). */
  revertSeconds?: number;
  /** Refresh (heartbeat) period, s of the clock (default a third of the revert time). */
  refreshSeconds?: number;
  /** Islanded operation: the router open, trades with the outside refused (`setIslanded` switches it). */
  islanded?: boolean;
  /**
   * Write an interval's setpoints this many clock seconds before its delivery starts, once its
   * clearing is confirmed, so they are in place at the boundary (default 5; 0 = at the first
   * pass at or after the start). Keep it at least one pass (pollMs in clock seconds) long.
   */
  writeLeadSeconds?: number;
  /**
   * A cell whose meter falls short of its schedule by more than the larger of these raises a
   * reserve request (defaults 10 Wh and 2 % of the scheduled energy).
   */
  shortfallToleranceWh?: number;
  shortfallTolerancePct?: number;
  /** First block to read (default the manifest's deployment block). */
  fromBlock?: bigint;
  modbusTimeoutMs?: number;
}

/** What one pass did. */
export interface TickResult {
  now: bigint;
  interval: bigint;
  /** Set when this pass wrote the interval's setpoints (first write or refresh). */
  wrote: 'setpoints' | 'refresh' | undefined;
  /** The interval whose setpoints are on the devices (the next one within the write lead). */
  writtenInterval: bigint | undefined;
  /** The report of the interval that ended before this pass, when this pass closed one. */
  report: DeliveryReport | undefined;
  /** Devices whose write or read-back failed, with the reason. */
  failures: { device: string; error: string }[];
}

export interface GridController {
  /** One pass: follow the chain, plan, write or refresh, read back, publish. */
  tick(): Promise<TickResult>;
  /** Runs `tick` every `pollMs` real milliseconds until `close`. */
  start(pollMs: number): void;
  /** The plan of an interval, once made. */
  plan(interval: bigint): IntervalPlan | undefined;
  /** The delivery report (unserved energy, shortfalls) of an interval, once it has ended. */
  report(interval: bigint): DeliveryReport | undefined;
  /** Switches islanded operation; the next pass plans and writes again (router open or closed). */
  setIslanded(islanded: boolean): void;
  /** What the controller is doing and what it has seen since it started. */
  status(): GridControllerStatus;
  /** Stops the loop and closes the Modbus connections; the devices then revert on their own. */
  close(): Promise<void>;
}

export interface GridControllerStatus {
  islanded: boolean;
  /** The interval whose setpoints are on the devices. */
  writtenInterval: bigint | undefined;
  lastReported: bigint | undefined;
  /** The complex's load shed (unserved energy) and curtailed PV since the start, Wh. */
  unservedWh: bigint;
  curtailedWh: bigint;
  /** Per cell, since the start, Wh. */
  cells: { name: string; unservedWh: bigint; curtailedWh: bigint }[];
  shortfalls: number;
}

/**
 * Creates the controller of a complex.
 * @example
 * const controller = createGridController({ topology, manifest, publicClient, endpoint, clock, logger });
 * controller.start(1000);
 */
export function createGridController(parameters: GridControllerParameters): GridController {
  const { topology, manifest, logger, clock, mqtt } = parameters;
  const L = manifest.pool.intervalSeconds;
  const zone = topology.zone;
  const revertSeconds = parameters.revertSeconds ?? 60;
  const refreshSeconds = parameters.refreshSeconds ?? Math.max(1, Math.floor(revertSeconds / 3));
  const writeLead = BigInt(parameters.writeLeadSeconds ?? 5);
  const tolerance = {
    wh: BigInt(parameters.shortfallToleranceWh ?? 10),
    percent: parameters.shortfallTolerancePct ?? 2,
  };
  let islanded = parameters.islanded ?? false;
  const follower = createScheduleFollower({
    publicClient: parameters.publicClient,
    pool: manifest.contracts.pool,
    channels: manifest.contracts.channels,
    fromBlock: parameters.fromBlock ?? manifest.deploymentBlock,
    confirmations: parameters.confirmations ?? 2,
  });
  const devices = plantDevices(topology).filter((d) => d.kind !== 'meter');
  const clients = new Map<string, DerClient>();
  const client = (id: string) => {
    let c = clients.get(id);
    if (!c) {
      const e = parameters.endpoint(id);
      c = createDerClient({
        host: e.host,
        port: e.port,
        unitId: e.unitId ?? 1,
        timeoutMs: parameters.modbusTimeoutMs ?? 2000,
      });
      clients.set(id, c);
    }
    return c;
  };
  const meters = new Map<string, SunSpecClient>();
  const meter = async (id: string) => {
    let m = meters.get(id);
    if (!m) {
      const e = parameters.endpoint(id);
      m = await connectSunSpec({
        host: e.host,
        port: e.port,
        unitId: e.unitId ?? 1,
        timeoutMs: parameters.modbusTimeoutMs ?? 2000,
      });
      meters.set(id, m);
    }
    return m;
  };
  const plans = new Map<bigint, IntervalPlan>();
  const reports = new Map<bigint, DeliveryReport>();
  let lastSample: BoundarySample | undefined;
  const seen = {
    unservedWh: 0n,
    curtailedWh: 0n,
    shortfalls: 0,
    cells: new Map(topology.cells.map((c) => [c.name, { unservedWh: 0n, curtailedWh: 0n }])),
  };
  /**
   * What is on the devices: the interval whose plan was written and the mode it was planned
   * in. The mode is part of it because `setIslanded` may run while a pass is writing the plan
   * of the other mode: that write must not count as done.
   */
  let written: { interval: bigint; islanded: boolean } | undefined;
  let lastWrite = 0n;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<unknown> = Promise.resolve();
  let closed = false;

  const publish = (topic: string, payload: unknown, options: { qos: 0 | 1; retain?: boolean }) => {
    if (!mqtt) return;
    mqtt.publish(
      topic,
      encodePayload(payload),
      { qos: options.qos, retain: options.retain ?? false },
      (error) => {
        if (error) logger.warn('MQTT publish failed', { topic, error: error.message });
      },
    );
  };

  function makePlan(interval: bigint, now: bigint): IntervalPlan {
    const plan = planInterval({
      topology,
      intervalSeconds: L,
      interval,
      schedule: follower.schedule(interval),
      deals: follower.deals(),
      islanded,
    });
    const previous = plans.get(interval);
    plans.set(interval, plan);
    const at = Number(now);
    const fresh = (x: unknown) =>
      !previous?.refusals.some((r) => JSON.stringify(r, big) === JSON.stringify(x, big));
    for (const refusal of plan.refusals) {
      if (!fresh(refusal)) continue;
      logger.warn('schedule refused', {
        interval,
        code: refusal.code,
        reason: refusal.reason,
        trade: refusal.trade.kind,
      });
      publish(gridTopics.refusal(zone), { v: 1, type: 'grid-refusal', ...refusal, at }, { qos: 1 });
    }
    for (const request of plan.reserve) {
      if (previous?.reserve.some((r) => r.cell === request.cell && r.reason === request.reason)) continue;
      logger.warn('reserve requested', {
        interval: request.interval,
        side: request.side,
        energyWh: request.energyWh,
        cell: request.cell,
      });
      publish(gridTopics.reserve(zone), { v: 1, type: 'grid-reserve', ...request, at }, { qos: 1 });
    }
    if (!previous || JSON.stringify(previous, big) !== JSON.stringify(plan, big)) {
      logger.info('interval planned', {
        interval,
        exchangeW: plan.exchangeW,
        routerPercent: plan.router.percent,
        ports: plan.ports.map((p) => `${p.name}=${p.watts}`).join(','),
        refused: plan.refusals.length,
      });
      publish(
        gridTopics.plan(zone),
        {
          v: 1,
          type: 'grid-plan',
          interval,
          ports: plan.ports,
          links: plan.links,
          router: plan.router,
          exchangeW: plan.exchangeW,
          refused: plan.refusals.length,
          at,
        },
        { qos: 1, retain: true },
      );
    }
    return plan;
  }

  /** Writes every setpoint of `plan` (the refresh writes the same values again). */
  async function write(plan: IntervalPlan, now: bigint, failures: TickResult['failures']) {
    const wanted = new Map<string, number>();
    wanted.set('router', plan.router.percent);
    for (const p of plan.ports) wanted.set(`port:${p.name}`, p.watts);
    for (const l of plan.links) wanted.set(`link:${l.name}`, l.watts);
    await Promise.all(
      [...wanted].map(async ([id, value]) => {
        try {
          if (id === 'router') await client(id).writeLimit(value, revertSeconds);
          else await client(id).writeSetpoint(value, revertSeconds);
        } catch (error) {
          failures.push({ device: id, error: (error as Error).message });
          logger.error('setpoint write failed', { device: id, value, error: (error as Error).message });
        }
      }),
    );
    await readBack(plan, wanted, now, failures);
  }

  async function readBack(
    plan: IntervalPlan,
    wanted: Map<string, number>,
    now: bigint,
    failures: TickResult['failures'],
  ) {
    await Promise.all(
      devices.map(async (d) => {
        try {
          const status = await client(d.id).read();
          const want = wanted.get(d.id) ?? null;
          const setpoint = status.limit
            ? {
                enabled: status.limit.enabled,
                value: status.limit.percent,
                remainingSeconds: status.limit.remainingSeconds,
              }
            : status.setpoint
              ? {
                  enabled: status.setpoint.enabled,
                  value: status.setpoint.watts,
                  remainingSeconds: status.setpoint.remainingSeconds,
                }
              : null;
          const confirmed =
            want === null || (setpoint?.enabled === true && Math.abs(setpoint.value - want) < 0.05);
          if (!confirmed) {
            failures.push({ device: d.id, error: `read back ${JSON.stringify(setpoint)}, wrote ${want}` });
            logger.warn('read-back differs from the setpoint', {
              device: d.id,
              wrote: want,
              read: JSON.stringify(setpoint),
            });
          }
          const telemetry: GridTelemetry = {
            v: 1,
            type: 'grid-telemetry',
            device: d.id,
            kind: d.kind,
            interval: plan.interval.toString(),
            watts: status.watts,
            wanted: want,
            setpoint,
            socPercent: status.socPercent,
            confirmed,
            at: Number(now),
          };
          publish(gridTopics.telemetry(zone, d.id), telemetry, { qos: 0 });
        } catch (error) {
          failures.push({ device: d.id, error: (error as Error).message });
          logger.error('read-back failed', { device: d.id, error: (error as Error).message });
        }
      }),
    );
  }

  /** Reads every cell's port (64900) and meter (203) and the router (64900) at a boundary. */
  async function sample(interval: bigint, now: bigint, failures: TickResult['failures']) {
    const fail = (device: string, error: unknown) => {
      const message = (error as Error).message;
      failures.push({ device, error: message });
      logger.error('boundary read failed', { device, error: message });
    };
    const cells = new Map<string, CellSample>();
    const [complex] = await Promise.all([
      client('router')
        .read()
        .then(
          (s) => (s.balance ? { shedWh: s.balance.shedWh, curtailedWh: s.balance.curtailedWh } : null),
          (error: unknown) => {
            fail('router', error);
            return null;
          },
        ),
      ...topology.cells.map(async (c) => {
        const entry: CellSample = { shedWh: null, curtailedWh: null, importWh: null, exportWh: null };
        cells.set(c.name, entry);
        await Promise.all([
          client(`port:${c.name}`)
            .read()
            .then(
              (s) => {
                entry.shedWh = s.balance?.shedWh ?? null;
                entry.curtailedWh = s.balance?.curtailedWh ?? null;
              },
              (error: unknown) => fail(`port:${c.name}`, error),
            ),
          meter(`meter:${c.name}`)
            .then((m) => m.readMeter())
            .then(
              (m) => {
                if (!m.energyImplemented) throw new Error('the meter does not implement TotWhImp/TotWhExp');
                // With TotWh_SF implemented, a null acc32 is a counter at zero.
                entry.importWh = m.importWh ?? 0n;
                entry.exportWh = m.exportWh ?? 0n;
              },
              async (error: unknown) => {
                fail(`meter:${c.name}`, error);
                const broken = meters.get(`meter:${c.name}`);
                meters.delete(`meter:${c.name}`); // reconnect at the next boundary
                await broken?.close().catch(() => {});
              },
            ),
        ]);
      }),
    ]);
    return { interval, at: now, cells, complex: complex ?? null } satisfies BoundarySample;
  }

  /** The first interval after `t` whose gate is still open at `now`: reserve can still be bought there. */
  function nextOpen(t: bigint, now: bigint): bigint {
    let i = t + 1n;
    while (i * L - manifest.pool.gateClosureLead <= now) i++;
    return i;
  }

  function deliver(from: BoundarySample, to: BoundarySample, now: bigint): DeliveryReport {
    const report = assessDelivery({
      topology,
      from,
      to,
      plan: plans.get(from.interval),
      requestInterval: nextOpen(from.interval, now),
      tolerance,
    });
    reports.set(report.interval, report);
    const shedWh = report.complex?.shedWh ?? report.cells.reduce((s, c) => s + (c.shedWh ?? 0n), 0n);
    const curtailedWh =
      report.complex?.curtailedWh ?? report.cells.reduce((s, c) => s + (c.curtailedWh ?? 0n), 0n);
    seen.unservedWh += shedWh;
    seen.curtailedWh += curtailedWh;
    seen.shortfalls += report.reserve.length;
    for (const c of report.cells) {
      const total = seen.cells.get(c.name);
      if (total) {
        total.unservedWh += c.shedWh ?? 0n;
        total.curtailedWh += c.curtailedWh ?? 0n;
      }
    }
    const fields = {
      interval: report.interval,
      islanded,
      shedWh,
      curtailedWh,
      cells: report.cells.map((c) => `${c.name}=${c.shedWh ?? '?'}/${c.curtailedWh ?? '?'}`).join(','),
      shortfalls: report.reserve.length,
    };
    if (shedWh > 0n) logger.warn('unserved energy: load was shed', fields);
    else logger.info('interval delivered', fields);
    const at = Number(now);
    const payload: GridUnserved = {
      v: 1,
      type: 'grid-unserved',
      interval: report.interval.toString(),
      from: Number(report.from),
      to: Number(report.to),
      islanded,
      cells: report.cells.map((c) => ({
        name: c.name,
        cellId: c.cellId === undefined ? null : c.cellId.toString(),
        shedWh: c.shedWh?.toString() ?? null,
        curtailedWh: c.curtailedWh?.toString() ?? null,
        scheduledWh: c.scheduledWh?.toString() ?? null,
        meteredWh: c.meteredWh?.toString() ?? null,
      })),
      complex: report.complex
        ? { shedWh: report.complex.shedWh.toString(), curtailedWh: report.complex.curtailedWh.toString() }
        : null,
      shortfalls: report.reserve.length,
      at,
    };
    publish(gridTopics.unserved(zone), payload, { qos: 1, retain: true });
    for (const request of report.reserve) {
      logger.warn('reserve requested: schedule not realised', {
        interval: request.interval,
        forInterval: request.forInterval,
        side: request.side,
        energyWh: request.energyWh,
        cell: request.cell,
        reason: request.reason,
      });
      publish(gridTopics.reserve(zone), { v: 1, type: 'grid-reserve', ...request, at }, { qos: 1 });
    }
    publish(
      gridTopics.status(zone, parameters.controllerId ?? 'grid'),
      {
        v: 1,
        type: 'grid-status',
        state: 'online',
        at,
        islanded,
        lastReported: report.interval,
        unservedWh: seen.unservedWh,
        curtailedWh: seen.curtailedWh,
      },
      { qos: 1, retain: true },
    );
    return report;
  }

  async function pass(): Promise<TickResult> {
    const now = await clock.now();
    const interval = now / L;
    const failures: TickResult['failures'] = [];
    await follower.sync();
    // Plan the next interval as soon as its clearing is confirmed: refusals and reserve
    // requests go out before delivery starts.
    const next = interval + 1n;
    if (follower.cleared(next) && !plans.has(next)) makePlan(next, now);
    // The setpoints due on the devices: the next interval's within the write lead once its
    // clearing is confirmed (they are in place when delivery starts), else this interval's.
    const due = writeLead > 0n && follower.cleared(next) && now + writeLead >= next * L ? next : interval;
    let wrote: TickResult['wrote'];
    if (written?.interval !== due || written.islanded !== islanded) {
      const mode = islanded;
      const plan = makePlan(due, now); // again, with whatever was confirmed since
      await write(plan, now, failures);
      written = { interval: due, islanded: mode };
      lastWrite = now;
      wrote = 'setpoints';
      logger.info('setpoints written', {
        interval: due,
        islanded: mode,
        startsIn: due * L - now,
        failures: failures.length,
      });
    } else if (now - lastWrite >= BigInt(refreshSeconds)) {
      const plan = plans.get(due) ?? makePlan(due, now);
      await write(plan, now, failures);
      lastWrite = now;
      wrote = 'refresh';
      logger.debug('setpoints refreshed', { interval: due, failures: failures.length });
    }
    // At the first pass of each interval, read the counters: the interval before is delivered.
    let report: DeliveryReport | undefined;
    if (lastSample?.interval !== interval) {
      const current = await sample(interval, now, failures);
      if (lastSample) report = deliver(lastSample, current, now);
      lastSample = current;
    }
    return { now, interval, wrote, writtenInterval: written?.interval, report, failures };
  }

  const tick = () => {
    const next = running.then(pass);
    running = next.catch(() => {});
    return next;
  };

  return {
    tick,
    start(pollMs) {
      publish(
        gridTopics.status(zone, parameters.controllerId ?? 'grid'),
        { v: 1, type: 'grid-status', state: 'online' },
        { qos: 1, retain: true },
      );
      const loop = () => {
        if (closed) return;
        tick()
          .catch((error: unknown) =>
            logger.error('controller pass failed', { error: (error as Error).message }),
          )
          .finally(() => {
            if (!closed) timer = setTimeout(loop, pollMs);
          });
      };
      loop();
    },
    plan: (interval) => plans.get(interval),
    report: (interval) => reports.get(interval),
    setIslanded(value) {
      if (value === islanded) return;
      islanded = value; // the next pass plans (arbitration included) and writes again
      logger.warn(value ? 'islanded: router open' : 'grid-connected: router closed', {});
    },
    status: () => ({
      islanded,
      writtenInterval: written?.interval,
      lastReported: [...reports.keys()].at(-1),
      unservedWh: seen.unservedWh,
      curtailedWh: seen.curtailedWh,
      cells: [...seen.cells].map(([name, c]) => ({ name, ...c })),
      shortfalls: seen.shortfalls,
    }),
    async close() {
      closed = true;
      if (timer) clearTimeout(timer);
      await running;
      publish(
        gridTopics.status(zone, parameters.controllerId ?? 'grid'),
        { v: 1, type: 'grid-status', state: 'offline' },
        { qos: 1, retain: true },
      );
      await Promise.all([...clients.values()].map((c) => c.close()));
      clients.clear();
      await Promise.all([...meters.values()].map((m) => m.close()));
      meters.clear();
      logger.info('controller stopped; devices revert within their revert time', { revertSeconds });
    },
  };
}

function big(_k: string, v: unknown) {
  return typeof v === 'bigint' ? v.toString() : v;
}
