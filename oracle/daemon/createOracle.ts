/**
 * The meter oracle: samples each meter of a cell, keeps monotone cumulative counters, and at
 * every interval boundary signs one reading per meter (the counters at the interval's start
 * and end), stores it, then publishes it on MQTT with QoS 1. Live telemetry goes out at its
 * own rate; a retained status (with a last will) says whether the oracle is up.
 *
 * Nothing is lost: a reading is committed to SQLite before it is published, and whatever the
 * broker has not acknowledged is sent again when it comes back or the daemon restarts.
 * Nothing is counted twice: a reading is keyed by (meter, interval) and keeps its seq.
 */
import mqtt, { type MqttClient } from 'mqtt';
import type { Address, LocalAccount } from 'viem';
import type { Clock } from '../../chain/clock/index.js';
import type { Logger } from '../../chain/logger/index.js';
import type { GridcellDomain, MeterReading } from '../../chain/typed-data/index.js';
import {
  advanceCounter,
  type CounterLimits,
  type CounterState,
  initialCounter,
} from '../counters/meterCounter.js';
import { encodeReadingMessage, encodeTelemetryMessage, topics } from '../messages/index.js';
import type { Metrics } from '../metrics/index.js';
import { createReadingSigner, type ReadingSigner } from '../signing/readingSigner.js';
import {
  type MeterSource,
  MeterSourceError,
  modbusSource,
  mqttSource,
  type RawSample,
} from '../sources/index.js';
import type { Boundary, OracleStore } from '../store/oracleStore.js';
import { settleWithin, TIMED_OUT, within } from '../util/within.js';

export type SourceSpec =
  | {
      type: 'modbus';
      host: string;
      port: number;
      unitId?: number | undefined;
      timeoutMs?: number | undefined;
    }
  | {
      type: 'modbus-rtu';
      path: string;
      baudRate: number;
      parity?: 'none' | 'even' | 'odd' | undefined;
      unitId?: number | undefined;
      timeoutMs?: number | undefined;
    }
  | { type: 'mqtt'; topic: string; maxAgeSeconds?: number | undefined };

export interface OracleMeterSpec {
  /** A name for logs and metrics. */
  name: string;
  /** The meter key, registered in the cell's avatar. */
  account: LocalAccount;
  cell: bigint;
  source: SourceSpec;
  /** The connection's limits, W: what a counter may plausibly gain per second. */
  limits: { maxImportW: bigint; maxExportW: bigint };
}

export interface CreateOracleParameters {
  /** Names this daemon in its status topic. */
  id: string;
  zone: string;
  meters: OracleMeterSpec[];
  store: OracleStore;
  mqttUrl: string;
  clock: Clock;
  intervalSeconds: bigint;
  chainId: number;
  poolDomain: GridcellDomain;
  channelsDomain: GridcellDomain;
  logger: Logger;
  metrics: Metrics;
  /** Real milliseconds between two samples of every meter. Default 1000. */
  sampleMs?: number;
  /** Real milliseconds between two telemetry messages per meter; 0 turns telemetry off. Default 5000. */
  telemetryMs?: number;
  /** Real milliseconds between two status lines. Default 60000. */
  statusMs?: number;
  /**
   * How late (clock seconds) the first sample of an interval may be and still stand for the
   * interval's boundary. An interval whose start or end was not sampled in time gets no
   * reading (its energy stays in the cumulative counters). Default 60.
   */
  boundaryToleranceSeconds?: bigint;
  /** How long a publish waits for the broker's PUBACK before it is sent again. Default 10000. */
  ackTimeoutMs?: number;
}

export interface MeterStatus {
  name: string;
  meter: Address;
  cell: bigint;
  source: string;
  stale: boolean;
  /** Why the meter is stale, when it is. */
  reason: string | undefined;
  last: (RawSample & { importCumWh: bigint; exportCumWh: bigint }) | undefined;
  /** The interval whose start the oracle holds (the next reading is for it). */
  boundaryInterval: bigint | undefined;
}

export interface Oracle {
  start(): Promise<void>;
  /** One sampling round of every meter (the timer calls it; tests may call it directly). */
  tick(): Promise<void>;
  /** Publishes whatever is stored and not yet acknowledged; resolves when all are acknowledged. */
  flush(): Promise<void>;
  status(): { connected: boolean; meters: MeterStatus[]; stored: number; unpublished: number };
  /** Publishes `offline`, stops the timers, closes MQTT, the sources and the store. */
  stop(): Promise<void>;
}

interface MeterRuntime {
  spec: OracleMeterSpec;
  signer: ReadingSigner;
  source: MeterSource | undefined;
  counter: CounterState | undefined;
  boundary: Boundary | undefined;
  nextSeq: bigint;
  stale: boolean;
  reason: string | undefined;
  last: (RawSample & { importCumWh: bigint; exportCumWh: bigint }) | undefined;
}

/**
 * Creates the oracle; `start()` connects to the broker and the meters and starts sampling.
 * @example
 * const oracle = createOracle({ id: 'cell-1', zone: 'z1', meters, store, mqttUrl, clock, ... });
 * await oracle.start();
 */
export function createOracle(parameters: CreateOracleParameters): Oracle {
  const { store, clock, logger, metrics, zone } = parameters;
  const L = parameters.intervalSeconds;
  const tolerance = parameters.boundaryToleranceSeconds ?? 60n;
  const ackTimeoutMs = parameters.ackTimeoutMs ?? 10_000;
  const statusTopic = topics.oracleStatus(zone, parameters.id);
  const offline = JSON.stringify({ v: 1, type: 'status', state: 'offline' });

  const meters: MeterRuntime[] = parameters.meters.map((spec) => {
    const saved = store.meter(spec.account.address);
    return {
      spec,
      signer: createReadingSigner(spec.account, parameters.poolDomain, parameters.channelsDomain),
      source: undefined,
      counter: saved?.counter,
      boundary: saved?.boundary,
      nextSeq: saved?.nextSeq ?? 1n,
      stale: true,
      reason: 'not sampled yet',
      last: undefined,
    };
  });

  let client: MqttClient | undefined;
  const timers: NodeJS.Timeout[] = [];
  let ticking: Promise<void> | undefined;
  let stopped = false;
  const inFlight = new Map<string, Promise<void>>();

  function markStale(m: MeterRuntime, kind: string, reason: string) {
    metrics.inc('meter_errors', { meter: m.spec.name, kind });
    if (!m.stale || m.reason !== reason) {
      logger.warn('meter stale', { meter: m.spec.name, kind, reason });
    }
    m.stale = true;
    m.reason = reason;
    metrics.set('meter_stale', 1, { meter: m.spec.name });
  }

  function markFresh(m: MeterRuntime) {
    if (m.stale && m.last) logger.info('meter answering again', { meter: m.spec.name });
    m.stale = false;
    m.reason = undefined;
    metrics.set('meter_stale', 0, { meter: m.spec.name });
  }

  const onTime = (b: { interval: bigint; at: bigint }) => b.at - b.interval * L <= tolerance;

  /** What one meter's sample changes: its state, and the reading it completed, if any. */
  interface Outcome {
    m: MeterRuntime;
    counter: CounterState;
    boundary: Boundary;
    reading?: MeterReading;
  }

  function sample(m: MeterRuntime, raw: RawSample): Outcome | undefined {
    let counter: CounterState;
    if (!m.counter) {
      counter = initialCounter(raw.at, raw.importWh, raw.exportWh);
    } else if (raw.at === m.counter.at && m.last) {
      return undefined; // the same MQTT message again: nothing new
    } else {
      const limits: CounterLimits = { ...m.spec.limits, modulus: m.source?.modulus ?? 1n << 32n };
      const advanced = advanceCounter(m.counter, raw.at, raw.importWh, raw.exportWh, limits);
      if (!advanced.ok) {
        metrics.inc('implausible_samples', { meter: m.spec.name });
        markStale(m, 'implausible', `implausible sample dropped: ${advanced.reason}`);
        return undefined;
      }
      for (const event of advanced.events) {
        if (event.kind === 'normal') continue;
        metrics.inc(`counter_${event.kind}s`, { meter: m.spec.name });
        logger.warn(
          `${event.counter} counter ${event.kind === 'wrap' ? 'wrapped at 2^32' : 'was reset to zero'}`,
          {
            meter: m.spec.name,
          },
        );
      }
      counter = advanced.state;
    }
    markFresh(m);
    m.counter = counter;
    m.last = { ...raw, importCumWh: counter.importCumWh, exportCumWh: counter.exportCumWh };

    const interval = raw.at / L;
    const here: Boundary = {
      interval,
      at: raw.at,
      importCumWh: counter.importCumWh,
      exportCumWh: counter.exportCumWh,
    };
    const held = m.boundary;
    if (held && interval <= held.interval) return { m, counter, boundary: held };
    m.boundary = here;
    if (!held) return { m, counter, boundary: here };
    if (interval === held.interval + 1n && onTime(held) && onTime(here)) {
      return {
        m,
        counter,
        boundary: here,
        reading: {
          meter: m.spec.account.address,
          cell: m.spec.cell,
          interval: held.interval,
          importWh: here.importCumWh - held.importCumWh,
          exportWh: here.exportCumWh - held.exportCumWh,
          importCumWh: here.importCumWh,
          exportCumWh: here.exportCumWh,
          seq: m.nextSeq,
        },
      };
    }
    metrics.inc('intervals_unmeasured', { meter: m.spec.name }, Number(interval - held.interval));
    logger.warn('interval(s) without a reading: a boundary was not sampled in time', {
      meter: m.spec.name,
      from: held.interval,
      to: interval - 1n,
      boundarySampledLateBySeconds: onTime(held) ? here.at - interval * L : held.at - held.interval * L,
      toleranceSeconds: tolerance,
    });
    return { m, counter, boundary: here };
  }

  async function read(m: MeterRuntime, now: bigint): Promise<RawSample | undefined> {
    if (!m.source) return undefined;
    try {
      const raw = await m.source.read(now);
      metrics.inc('samples', { meter: m.spec.name });
      return raw;
    } catch (error) {
      const kind = error instanceof MeterSourceError ? error.kind : 'source';
      markStale(m, kind, (error as Error).message);
      return undefined;
    }
  }

  /** Reads every meter, signs the readings the round completed, and stores it all at once. */
  async function round(now: bigint) {
    const raws = await Promise.all(meters.map((m) => read(m, now)));
    const outcomes = meters
      .map((m, i) => {
        const raw = raws[i];
        return raw ? sample(m, raw) : undefined;
      })
      .filter((o): o is Outcome => o !== undefined);
    const signed = await Promise.all(
      outcomes.map(async (o) => {
        if (!o.reading) return undefined;
        const signatures = await o.m.signer.sign(o.reading);
        return {
          interval: o.reading.interval,
          seq: o.reading.seq,
          topic: topics.reading(zone, o.m.spec.cell, o.reading.meter),
          payload: encodeReadingMessage({
            v: 1,
            type: 'reading',
            chainId: parameters.chainId,
            reading: o.reading,
            signatures,
            producedAt: Number(o.boundary.at),
          }),
        };
      }),
    );
    let inserted: boolean[];
    try {
      inserted = store.commit(
        outcomes.map((o, i) => {
          const reading = signed[i];
          return {
            meter: o.m.spec.account.address,
            counter: o.counter,
            boundary: o.boundary,
            ...(reading ? { reading } : {}),
          };
        }),
      );
    } catch (error) {
      // Nothing of the round reached the disk: go back to what did, and measure again.
      for (const o of outcomes) {
        const saved = store.meter(o.m.spec.account.address);
        o.m.counter = saved?.counter;
        o.m.boundary = saved?.boundary;
      }
      throw error;
    }
    outcomes.forEach((o, i) => {
      const r = o.reading;
      if (!r) return;
      if (inserted[i]) {
        o.m.nextSeq = r.seq + 1n;
        metrics.inc('readings_signed', { meter: o.m.spec.name });
        logger.info('reading signed', {
          meter: o.m.spec.name,
          interval: r.interval,
          seq: r.seq,
          importWh: r.importWh,
          exportWh: r.exportWh,
        });
      } else {
        logger.warn('reading already stored, not signed again', {
          meter: o.m.spec.name,
          interval: r.interval,
        });
      }
    });
  }

  function flush(): Promise<void> {
    const c = client;
    if (!c?.connected) return Promise.resolve();
    const pending = store.unpublished();
    const sends = pending.map((r) => {
      const k = `${r.meter}:${r.interval}`;
      const existing = inFlight.get(k);
      if (existing) return existing;
      const send = within(ackTimeoutMs, c.publishAsync(r.topic, r.payload, { qos: 1 }))
        .then((acked) => {
          if (acked === TIMED_OUT) {
            // Not acknowledged in time (the broker died with it in flight): it stays unsent
            // and goes out again with the next flush; a duplicate has no effect downstream.
            metrics.inc('publish_timeouts');
            return;
          }
          store.markPublished(r.meter, r.interval);
          metrics.inc('readings_published');
        })
        .catch((error: Error) => {
          metrics.inc('publish_failures');
          logger.warn('publishing a reading failed; it stays stored and is sent again', {
            interval: r.interval,
            reason: error.message,
          });
        })
        .finally(() => inFlight.delete(k));
      inFlight.set(k, send);
      return send;
    });
    return Promise.all(sends).then(() => {});
  }

  async function tick() {
    if (stopped) return;
    if (ticking) return ticking;
    ticking = (async () => {
      await round(await clock.now());
      void flush();
    })()
      .catch((error: Error) => {
        metrics.inc('tick_failures');
        logger.error('sampling round failed', { reason: error.message });
      })
      .finally(() => {
        ticking = undefined;
      });
    return ticking;
  }

  function telemetry() {
    const c = client;
    if (!c?.connected) return;
    for (const m of meters) {
      if (!m.last) continue;
      c.publish(
        topics.telemetry(zone, m.spec.cell, m.spec.account.address),
        encodeTelemetryMessage({
          meter: m.spec.account.address,
          cell: m.spec.cell,
          at: Number(m.last.at),
          watts: m.last.watts,
          importCumWh: m.last.importCumWh,
          exportCumWh: m.last.exportCumWh,
          stale: m.stale,
        }),
        { qos: 0 },
      );
      metrics.inc('telemetry_published');
    }
  }

  function status() {
    const counts = store.count();
    return {
      connected: client?.connected ?? false,
      stored: counts.readings,
      unpublished: counts.unpublished,
      meters: meters.map((m) => ({
        name: m.spec.name,
        meter: m.spec.account.address,
        cell: m.spec.cell,
        source: m.source?.describe ?? 'not started',
        stale: m.stale,
        reason: m.reason,
        last: m.last,
        boundaryInterval: m.boundary?.interval,
      })),
    };
  }

  function statusLine() {
    const s = status();
    const stale = s.meters.filter((m) => m.stale);
    logger.info('status', {
      mqtt: s.connected ? 'connected' : 'disconnected',
      meters: s.meters.length,
      stale: stale.length > 0 ? stale.map((m) => m.name).join(',') : 0,
      readings: s.stored,
      unsent: s.unpublished,
      implausible: sum('implausible_samples'),
      meterErrors: sum('meter_errors'),
      malformedInput: metrics.get('malformed_input'),
    });
    client?.publish(
      statusTopic,
      JSON.stringify({
        v: 1,
        type: 'status',
        state: 'online',
        detail: {
          meters: s.meters.map((m) => ({
            name: m.name,
            meter: m.meter,
            stale: m.stale,
            reason: m.reason ?? null,
          })),
          readings: s.stored,
          unsent: s.unpublished,
        },
      }),
      { qos: 1, retain: true },
    );
  }

  const sum = (prefix: string) =>
    Object.entries(metrics.snapshot())
      .filter(([k]) => k.includes(`_${prefix}`))
      .reduce((a, [, v]) => a + v, 0);

  return {
    async start() {
      client = mqtt.connect(parameters.mqttUrl, {
        clientId: `gridcell-oracle-${parameters.id}-${process.pid}`,
        reconnectPeriod: 1000,
        connectTimeout: 5000,
        will: { topic: statusTopic, payload: Buffer.from(offline), qos: 1, retain: true },
      });
      client.on('connect', () => {
        logger.info('connected to the MQTT broker', { url: parameters.mqttUrl });
        statusLine();
        void flush();
      });
      client.on('offline', () => logger.warn('MQTT broker unreachable; readings are kept and sent later'));
      client.on('error', (error) => logger.warn('MQTT error', { reason: error.message }));
      for (const m of meters) {
        const spec = m.spec.source;
        m.source =
          spec.type === 'modbus'
            ? modbusSource(spec)
            : spec.type === 'modbus-rtu'
              ? modbusSource({
                  serial: { path: spec.path, baudRate: spec.baudRate, parity: spec.parity },
                  unitId: spec.unitId,
                  timeoutMs: spec.timeoutMs,
                })
              : await mqttSource({
                  client,
                  topic: topics.meterInput(zone, spec.topic),
                  ...(spec.maxAgeSeconds !== undefined ? { maxAgeSeconds: spec.maxAgeSeconds } : {}),
                  onMalformed: (reason, topic) => {
                    metrics.inc('malformed_input', { meter: m.spec.name });
                    logger.warn('malformed meter message refused', { meter: m.spec.name, topic, reason });
                  },
                });
        logger.info('meter configured', {
          meter: m.spec.name,
          address: m.spec.account.address,
          cell: m.spec.cell,
          source: m.source.describe,
          nextSeq: m.nextSeq,
        });
      }
      timers.push(setInterval(() => void tick(), parameters.sampleMs ?? 1000));
      const telemetryMs = parameters.telemetryMs ?? 5000;
      if (telemetryMs > 0) timers.push(setInterval(telemetry, telemetryMs));
      timers.push(setInterval(statusLine, parameters.statusMs ?? 60_000));
      await tick();
    },
    tick,
    flush,
    status,
    async stop() {
      if (stopped) return;
      stopped = true;
      for (const t of timers) clearInterval(t);
      await ticking;
      const c = client;
      // A broker that just died may still look connected: nothing here waits for it for long.
      if (c?.connected) {
        await settleWithin(2000, flush());
        await settleWithin(2000, c.publishAsync(statusTopic, offline, { qos: 1, retain: true }));
      }
      await settleWithin(2000, Promise.all(meters.map((m) => m.source?.close())));
      if (c) await settleWithin(2000, c.endAsync(true));
      store.close();
      logger.info('stopped', { unsent: 'kept in the store' });
    },
  };
}
