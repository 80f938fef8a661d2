/**
 * The Neural Grid controller of one complex: follows the schedule on chain (confirmed
 * blocks), plans each interval (planInterval: arbitration, then setpoints), writes the
 * setpoints over Modbus when delivery starts, refreshes them within the devices' revert
 * time, reads them back, and publishes plan, refusals, reserve requests and telemetry on MQTT.
 * If the controller goes away, the devices fall back on their own (the revert timers).
 */
import type { MqttClient } from 'mqtt';
import type { Chain, PublicClient, Transport } from 'viem';
import type { Clock } from '../../chain/clock/index.js';
import type { Manifest } from '../../chain/manifest/index.js';
import { plantDevices } from '../plant/index.js';
import { createDerClient, type DerClient } from '../sunspec/derClient.js';
import type { Topology } from '../topology/index.js';
import { encodePayload, type GridTelemetry, gridTopics } from './messages.js';
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
  /** The Modbus endpoint of each device id (`router`, `hub:<cell>`, `port:<cell>`, `link:<link>`). */
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
  /** Islanded operation: the router open, trades with the outside refused. */
  islanded?: boolean;
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
  /** Stops the loop and closes the Modbus connections; the devices then revert on their own. */
  close(): Promise<void>;
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
  const plans = new Map<bigint, IntervalPlan>();
  let active: bigint | undefined;
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
      islanded: parameters.islanded ?? false,
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

  async function pass(): Promise<TickResult> {
    const now = await clock.now();
    const interval = now / L;
    const failures: TickResult['failures'] = [];
    await follower.sync();
    // Plan the next interval as soon as its clearing is confirmed: refusals and reserve
    // requests go out before delivery starts.
    if (follower.cleared(interval + 1n) && !plans.has(interval + 1n)) makePlan(interval + 1n, now);
    let wrote: TickResult['wrote'];
    if (active !== interval) {
      const plan = makePlan(interval, now); // again, with whatever was confirmed since
      await write(plan, now, failures);
      active = interval;
      lastWrite = now;
      wrote = 'setpoints';
      logger.info('setpoints written', { interval, failures: failures.length });
    } else if (now - lastWrite >= BigInt(refreshSeconds)) {
      const plan = plans.get(interval) ?? makePlan(interval, now);
      await write(plan, now, failures);
      lastWrite = now;
      wrote = 'refresh';
      logger.debug('setpoints refreshed', { interval, failures: failures.length });
    }
    return { now, interval, wrote, failures };
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
      logger.info('controller stopped; devices revert within their revert time', { revertSeconds });
    },
  };
}

function big(_k: string, v: unknown) {
  return typeof v === 'bigint' ? v.toString() : v;
}
