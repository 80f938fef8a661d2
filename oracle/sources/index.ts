/**
 * Where the oracle gets a meter's raw counters: a SunSpec meter over Modbus TCP, or a meter
 * that publishes its own counters on MQTT. Both give the same raw sample; the oracle turns
 * samples into cumulative counters and interval readings the same way.
 */
import type { MqttClient } from 'mqtt';
import { BaseError } from '../../chain/errors/index.js';
import { connectSunSpec, type SunSpecClient } from '../../grid/sunspec/sunspecClient.js';
import { type MeterInput, meterInputSchema, parsePayload } from '../messages/index.js';

export interface RawSample {
  /** Unix seconds the counters were read (source time for MQTT, the clock for Modbus). */
  at: bigint;
  importWh: bigint;
  exportWh: bigint;
  /** W, positive = export; null when the meter does not report it. */
  watts: number | null;
}

export interface MeterSource {
  /** How the source is named in logs: `modbus 127.0.0.1:1502 unit 1`. */
  describe: string;
  /** Modulus of the raw counters: 2^32 for SunSpec acc32, 2^64 for MQTT (decimal strings). */
  modulus: bigint;
  /** The latest sample; throws `MeterSourceError` with the reason when there is none. */
  read(now: bigint): Promise<RawSample>;
  close(): Promise<void>;
}

export class MeterSourceError extends BaseError {
  override name = 'MeterSourceError' as const;
  /** What kind of failure, for the counters: `modbus`, `stale`, `not-implemented`. */
  readonly kind: 'modbus' | 'stale' | 'not-implemented';
  constructor(kind: 'modbus' | 'stale' | 'not-implemented', message: string, cause?: unknown) {
    super(message, { cause });
    this.kind = kind;
  }
}

export interface ModbusSourceParameters {
  host?: string | undefined;
  port?: number | undefined;
  /** Modbus RTU over a serial port instead of TCP. */
  serial?: { path: string; baudRate: number; parity?: 'none' | 'even' | 'odd' | undefined } | undefined;
  unitId?: number | undefined;
  timeoutMs?: number | undefined;
}

/**
 * A SunSpec meter on Modbus TCP. The connection is opened on first use and again after any
 * failure (modbus-serial does not reconnect by itself), so a meter that was away is read as
 * soon as it answers again.
 */
export function modbusSource(parameters: ModbusSourceParameters): MeterSource {
  const describe = parameters.serial
    ? `modbus rtu ${parameters.serial.path} unit ${parameters.unitId ?? 1}`
    : `modbus ${parameters.host}:${parameters.port} unit ${parameters.unitId ?? 1}`;
  let client: SunSpecClient | undefined;
  let connecting: Promise<SunSpecClient> | undefined;

  async function connection(): Promise<SunSpecClient> {
    if (client) return client;
    connecting ??= connectSunSpec({
      host: parameters.host,
      port: parameters.port,
      serial: parameters.serial,
      unitId: parameters.unitId ?? 1,
      timeoutMs: parameters.timeoutMs ?? 2000,
    }).finally(() => {
      connecting = undefined;
    });
    client = await connecting;
    return client;
  }

  async function drop() {
    const old = client;
    client = undefined;
    await old?.close().catch(() => {});
  }

  return {
    describe,
    modulus: 1n << 32n,
    async read(now) {
      let sample: Awaited<ReturnType<SunSpecClient['readMeter']>>;
      try {
        sample = await (await connection()).readMeter();
      } catch (cause) {
        await drop();
        throw new MeterSourceError('modbus', `${describe}: ${(cause as Error).message}`, cause);
      }
      // acc32 0 is both "not implemented" and "zero": with TotWh_SF implemented it is zero.
      if (!sample.energyImplemented) {
        throw new MeterSourceError(
          'not-implemented',
          `${describe}: the meter does not implement its energy counters (TotWh_SF is the not-implemented sentinel)`,
        );
      }
      return {
        at: now,
        importWh: sample.importWh ?? 0n,
        exportWh: sample.exportWh ?? 0n,
        watts: sample.watts,
      };
    },
    close: drop,
  };
}

export interface MqttSourceParameters {
  client: MqttClient;
  topic: string;
  /** A sample older than this (by the clock) is stale. Seconds, default 120. */
  maxAgeSeconds?: number;
  /** Called with the reason when a payload is refused (logged and counted by the oracle). */
  onMalformed: (reason: string, topic: string) => void;
}

/**
 * A meter that publishes its own cumulative counters (schema `meterInputSchema`). The source
 * keeps the newest valid message; a malformed one is reported and changes nothing.
 */
export async function mqttSource(parameters: MqttSourceParameters): Promise<MeterSource> {
  const describe = `mqtt ${parameters.topic}`;
  const maxAge = BigInt(parameters.maxAgeSeconds ?? 120);
  let latest: MeterInput | undefined;
  const onMessage = (topic: string, payload: Buffer) => {
    if (topic !== parameters.topic) return;
    const parsed = parsePayload(meterInputSchema, payload);
    if (!parsed.ok) {
      parameters.onMalformed(parsed.reason, topic);
      return;
    }
    if (latest && parsed.value.at < latest.at) return; // an older message arriving late
    latest = parsed.value;
  };
  parameters.client.on('message', onMessage);
  await parameters.client.subscribeAsync(parameters.topic, { qos: 1 });
  return {
    describe,
    modulus: 1n << 64n,
    async read(now) {
      if (!latest) throw new MeterSourceError('stale', `${describe}: no message from the meter yet`);
      const at = BigInt(latest.at);
      if (now - at > maxAge) {
        throw new MeterSourceError(
          'stale',
          `${describe}: the last message is ${now - at} s old (at most ${maxAge} s)`,
        );
      }
      return { at, importWh: latest.importWh, exportWh: latest.exportWh, watts: latest.watts ?? null };
    },
    async close() {
      parameters.client.off('message', onMessage);
      await parameters.client.unsubscribeAsync(parameters.topic).catch(() => {});
    },
  };
}
