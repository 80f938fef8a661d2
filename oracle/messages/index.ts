/**
 * The oracle's MQTT wire format: topics and payloads, one zod schema each. Everything that
 * reads or writes these topics (oracle, relayer, agents, grid controller, demo) uses this
 * module; docs/mqtt.md documents it for other implementations.
 *
 * Payloads are self-describing JSON (`v`, `type`), so MQTT 3.1.1 suffices (FIELD.md).
 * Integers that may exceed 2^53 (Wh counters, cell ids, seq) travel as decimal strings.
 */
import type { Address, Hex } from 'viem';
import { getAddress, isAddress, isHex } from 'viem';
import { z } from 'zod';
import type { CompactSignature, MeterReading } from '../../chain/typed-data/index.js';

/** Root of every gridcell topic; `v1` is the wire version. */
export const TOPIC_ROOT = 'gridcell/v1';

/** Topic builders. `zone` is the grid zone (one pool per zone); addresses are lower case. */
export const topics = {
  /** Signed interval readings, QoS 1, not retained: `gridcell/v1/{zone}/readings/{cell}/{meter}`. */
  reading: (zone: string, cell: bigint, meter: Address) =>
    `${TOPIC_ROOT}/${zone}/readings/${cell}/${meter.toLowerCase()}`,
  /** Every reading of a zone (subscription filter). */
  allReadings: (zone: string) => `${TOPIC_ROOT}/${zone}/readings/#`,
  /** Live telemetry, QoS 0: `gridcell/v1/{zone}/telemetry/{cell}/{meter}`. */
  telemetry: (zone: string, cell: bigint, meter: Address) =>
    `${TOPIC_ROOT}/${zone}/telemetry/${cell}/${meter.toLowerCase()}`,
  allTelemetry: (zone: string) => `${TOPIC_ROOT}/${zone}/telemetry/#`,
  /** An oracle daemon's status, retained, with a last will `offline`. */
  oracleStatus: (zone: string, oracleId: string) => `${TOPIC_ROOT}/${zone}/status/oracle/${oracleId}`,
  /** A relayer's status, retained, with a last will `offline`. */
  relayerStatus: (zone: string, relayerId: string) => `${TOPIC_ROOT}/${zone}/status/relayer/${relayerId}`,
  /**
   * What a channel's seller needs for the evidence path (`redeemWithReadings`), retained:
   * `gridcell/v1/{zone}/channels/{channel}/evidence`, published by the relayer.
   */
  channelEvidence: (zone: string, channel: Hex) =>
    `${TOPIC_ROOT}/${zone}/channels/${channel.toLowerCase()}/evidence`,
  /**
   * Where a meter that publishes itself sends its counters (the oracle's MQTT source):
   * `gridcell/v1/{zone}/meter-input/{source}`, `source` as named in the oracle's config.
   */
  meterInput: (zone: string, source: string) => `${TOPIC_ROOT}/${zone}/meter-input/${source}`,
} as const;

const decimal = z
  .string()
  .regex(/^(0|[1-9][0-9]*)$/, 'a non-negative decimal integer as a string')
  .transform((s) => BigInt(s));
const address = z
  .string()
  .refine((s) => isAddress(s, { strict: false }), 'a 20-byte hex address')
  .transform((s) => getAddress(s));
const bytes32 = z
  .string()
  .refine((s) => isHex(s, { strict: true }) && s.length === 66, '32 bytes as 0x-prefixed hex')
  .transform((s) => s as Hex);
const signature = z.object({ r: bytes32, vs: bytes32 });

const readingSchema = z.object({
  meter: address,
  cell: decimal,
  interval: decimal,
  importWh: decimal,
  exportWh: decimal,
  importCumWh: decimal,
  exportCumWh: decimal,
  seq: decimal,
});

/**
 * A signed interval reading. The meter signs the same reading twice, once under each
 * contract's EIP-712 domain (the domain binds the verifying contract): `pool` for the
 * clearing pool's settlement, `channels` for vouchers and channel disputes.
 */
export const readingMessageSchema = z.object({
  v: z.literal(1),
  type: z.literal('reading'),
  chainId: z.number().int().positive(),
  reading: readingSchema,
  signatures: z.object({ pool: signature, channels: signature }),
  /** Unix seconds (injected clock) when the oracle produced it. */
  producedAt: z.number().int().nonnegative(),
});

export interface ReadingMessage {
  v: 1;
  type: 'reading';
  chainId: number;
  reading: MeterReading;
  signatures: { pool: CompactSignature; channels: CompactSignature };
  producedAt: number;
}

/**
 * The readings that prove a channel's delivery so far: the deal's earliest reading (whose
 * start counter is the baseline) and its latest (whose cumulative counter is the total),
 * each as the oracle published it. `redeemWithReadings(deal, readings)` takes them as they are.
 */
export const evidenceMessageSchema = z.object({
  v: z.literal(1),
  type: z.literal('evidence'),
  channel: bytes32,
  readings: z.array(readingMessageSchema).min(1).max(2),
});
export type EvidenceMessage = z.output<typeof evidenceMessageSchema>;

/** Live telemetry of one meter: instantaneous power and the raw cumulative counters. */
export const telemetryMessageSchema = z.object({
  v: z.literal(1),
  type: z.literal('telemetry'),
  meter: address,
  cell: decimal,
  /** Unix seconds. */
  at: z.number().int().nonnegative(),
  /** W, positive = the cell exports; null when the meter does not report it. */
  watts: z.number().int().nullable(),
  importCumWh: decimal,
  exportCumWh: decimal,
  stale: z.boolean(),
});
export type TelemetryMessage = z.output<typeof telemetryMessageSchema>;

/** A daemon's retained status; the broker publishes `{ state: 'offline' }` as its last will. */
export const statusMessageSchema = z.object({
  v: z.literal(1),
  type: z.literal('status'),
  state: z.enum(['online', 'offline']),
  at: z.number().int().nonnegative().optional(),
  detail: z.record(z.string(), z.unknown()).optional(),
});
export type StatusMessage = z.output<typeof statusMessageSchema>;

/**
 * What a meter that publishes itself sends (the oracle's MQTT source): its cumulative
 * counters in Wh, never deltas, so a lost message costs nothing.
 */
export const meterInputSchema = z.object({
  v: z.literal(1),
  /** Unix seconds of the measurement. */
  at: z.number().int().nonnegative(),
  importWh: z.union([
    decimal,
    z
      .number()
      .int()
      .nonnegative()
      .transform((n) => BigInt(n)),
  ]),
  exportWh: z.union([
    decimal,
    z
      .number()
      .int()
      .nonnegative()
      .transform((n) => BigInt(n)),
  ]),
  watts: z.number().int().optional(),
});
export type MeterInput = z.output<typeof meterInputSchema>;

/** Serialises a signed reading for `topics.reading`. */
export function encodeReadingMessage(message: ReadingMessage): string {
  const r = message.reading;
  return JSON.stringify({
    v: 1,
    type: 'reading',
    chainId: message.chainId,
    reading: {
      meter: r.meter,
      cell: r.cell.toString(),
      interval: r.interval.toString(),
      importWh: r.importWh.toString(),
      exportWh: r.exportWh.toString(),
      importCumWh: r.importCumWh.toString(),
      exportCumWh: r.exportCumWh.toString(),
      seq: r.seq.toString(),
    },
    signatures: message.signatures,
    producedAt: message.producedAt,
  });
}

/** Serialises telemetry for `topics.telemetry`. */
export function encodeTelemetryMessage(message: Omit<TelemetryMessage, 'v' | 'type'>): string {
  return JSON.stringify({
    v: 1,
    type: 'telemetry',
    ...message,
    cell: message.cell.toString(),
    importCumWh: message.importCumWh.toString(),
    exportCumWh: message.exportCumWh.toString(),
  });
}

export type ParseResult<T> = { ok: true; value: T } | { ok: false; reason: string };

/**
 * Parses a payload against a schema without throwing: a bad payload is a reason to log and
 * count ("what failed, what was received, what was expected"), never a crash.
 */
export function parsePayload<S extends z.ZodType>(
  schema: S,
  payload: Uint8Array | string,
): ParseResult<z.output<S>> {
  const text = typeof payload === 'string' ? payload : Buffer.from(payload).toString('utf8');
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return { ok: false, reason: `not JSON: received ${JSON.stringify(text.slice(0, 80))}` };
  }
  const result = schema.safeParse(json);
  if (result.success) return { ok: true, value: result.data };
  const issues = result.error.issues
    .slice(0, 3)
    .map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`)
    .join('; ');
  return { ok: false, reason: `invalid payload (${issues})` };
}

/** Parses a reading message; the result's reading is the typed-data `MeterReading`. */
export function parseReadingMessage(payload: Uint8Array | string): ParseResult<ReadingMessage> {
  return parsePayload(readingMessageSchema, payload) as ParseResult<ReadingMessage>;
}
