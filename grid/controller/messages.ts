/**
 * The grid controller's MQTT wire format, under `gridcell/v1/{zone}/grid/...`: topics and
 * one zod schema per payload. Payloads are self-describing (`v`, `type`); integers that may
 * exceed 2^53 (cell ids, intervals, Wh) travel as decimal strings. docs/grid.md lists them.
 */
import { z } from 'zod';

const ROOT = 'gridcell/v1';

/** Topic builders; `device` is a plant device id such as `hub:prosumer-1`. */
export const gridTopics = {
  /** Read-back of one device after each write or refresh, QoS 0. */
  telemetry: (zone: string, device: string) => `${ROOT}/${zone}/grid/telemetry/${device}`,
  allTelemetry: (zone: string) => `${ROOT}/${zone}/grid/telemetry/#`,
  /** The setpoints of an interval, once planned (before delivery starts), QoS 1, retained. */
  plan: (zone: string) => `${ROOT}/${zone}/grid/plan`,
  /** A trade refused by arbitration, QoS 1. */
  refusal: (zone: string) => `${ROOT}/${zone}/grid/refusal`,
  /** A reserve request into the next interval, QoS 1 (agents that sell flexibility listen). */
  reserve: (zone: string) => `${ROOT}/${zone}/grid/reserve`,
  /** Unserved energy (shed load, curtailed PV) of each delivered interval, QoS 1, retained. */
  unserved: (zone: string) => `${ROOT}/${zone}/grid/unserved`,
  /** The controller's status, retained, with a last will `offline`. */
  status: (zone: string, controllerId: string) => `${ROOT}/${zone}/grid/status/${controllerId}`,
} as const;

const decimal = z
  .string()
  .regex(/^-?(0|[1-9][0-9]*)$/, 'a decimal integer as a string')
  .transform((s) => BigInt(s));
const count = z
  .string()
  .regex(/^(0|[1-9][0-9]*)$/, 'a non-negative decimal integer as a string')
  .transform((s) => BigInt(s));
const positive = z
  .string()
  .regex(/^[1-9][0-9]*$/, 'a positive decimal integer as a string')
  .transform((s) => BigInt(s));

export const gridTelemetrySchema = z.object({
  v: z.literal(1),
  type: z.literal('grid-telemetry'),
  device: z.string(),
  kind: z.enum(['router', 'hub', 'port', 'link', 'meter']),
  interval: decimal,
  /** Present power, W (the device's sign), or null. */
  watts: z.number().nullable(),
  /** What the controller wrote, W (router: limit in %). */
  wanted: z.number().nullable(),
  /** What the device reports back. */
  setpoint: z.object({ enabled: z.boolean(), value: z.number(), remainingSeconds: z.number() }).nullable(),
  socPercent: z.number().nullable(),
  /** Whether the read-back matched the write. */
  confirmed: z.boolean(),
  /** Injected clock, Unix seconds. */
  at: z.number().int(),
});
export type GridTelemetry = z.input<typeof gridTelemetrySchema>;

const tradeSchema = z.union([
  z.object({
    kind: z.literal('pool'),
    interval: decimal,
    cell: decimal,
    side: z.enum(['buy', 'sell']),
    energyWh: decimal,
  }),
  z.object({
    kind: z.literal('deal'),
    interval: decimal,
    channel: z.string().regex(/^0x[0-9a-f]{64}$/),
    buyerCell: decimal,
    sellerCell: decimal,
    energyWh: decimal,
  }),
]);

export const gridRefusalSchema = z.object({
  v: z.literal(1),
  type: z.literal('grid-refusal'),
  trade: tradeSchema,
  code: z.enum(['CellLimit', 'RouterLimit']),
  reason: z.string(),
  at: z.number().int(),
});

export const gridReserveSchema = z.object({
  v: z.literal(1),
  type: z.literal('grid-reserve'),
  interval: count,
  /** `CellLimit` / `RouterLimit`: refused before delivery; `Shortfall`: metered short after it. */
  code: z.enum(['CellLimit', 'RouterLimit', 'Shortfall']),
  side: z.enum(['buy', 'sell']),
  energyWh: positive,
  cell: count,
  forInterval: count,
  reason: z.string(),
  at: z.number().int(),
});

export const gridPlanSchema = z.object({
  v: z.literal(1),
  type: z.literal('grid-plan'),
  interval: decimal,
  ports: z.array(z.object({ name: z.string(), watts: z.number().int() })),
  links: z.array(z.object({ name: z.string(), watts: z.number().int() })),
  router: z.object({ limitW: z.number().int(), percent: z.number() }),
  exchangeW: z.number().int(),
  refused: z.number().int().nonnegative(),
  at: z.number().int(),
});

const whOrNull = decimal.nullable();

export const gridUnservedSchema = z.object({
  v: z.literal(1),
  type: z.literal('grid-unserved'),
  /** The delivered interval, and the clock times of the two samples that bound it. */
  interval: decimal,
  from: z.number().int(),
  to: z.number().int(),
  islanded: z.boolean(),
  /** Per cell, from its energy port (vendor model 64900); null when the port does not report it. */
  cells: z.array(
    z.object({
      name: z.string(),
      cellId: decimal.nullable(),
      /** Load shed: unserved energy, Wh. */
      shedWh: whOrNull,
      /** PV curtailed, Wh. */
      curtailedWh: whOrNull,
      /** Scheduled net energy (+ export) and the meter's net count, Wh; null when unknown. */
      scheduledWh: whOrNull,
      meteredWh: whOrNull,
    }),
  ),
  /** The complex, from the router's vendor model 64900; null when the router does not report it. */
  complex: z.object({ shedWh: decimal, curtailedWh: decimal }).nullable(),
  /** How many shortfall reserve requests this interval raised. */
  shortfalls: z.number().int().nonnegative(),
  at: z.number().int(),
});
export type GridUnserved = z.input<typeof gridUnservedSchema>;

export const gridStatusSchema = z.object({
  v: z.literal(1),
  type: z.literal('grid-status'),
  state: z.enum(['online', 'offline']),
  at: z.number().int().optional(),
  /** Present in `online` updates after each delivered interval. */
  islanded: z.boolean().optional(),
  /** The last interval reported on `.../grid/unserved`. */
  lastReported: decimal.optional(),
  /** Unserved energy (shed load) and curtailed PV of the complex since the controller started, Wh. */
  unservedWh: decimal.optional(),
  curtailedWh: decimal.optional(),
});

/** JSON with bigints as decimal strings. */
export function encodePayload(value: unknown): string {
  return JSON.stringify(value, (_k, v) => (typeof v === 'bigint' ? v.toString() : v));
}
