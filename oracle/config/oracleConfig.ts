/**
 * The oracle's configuration file (JSON), validated with zod: the meters of one cell (or a
 * few), where to read each, which key signs for it, and where readings go.
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { BaseError } from '../../chain/errors/index.js';

const decimal = z
  .union([z.string().regex(/^\d+$/, 'a non-negative integer'), z.number().int().nonnegative()])
  .transform((v) => BigInt(v));

const sourceSchema = z.discriminatedUnion('type', [
  z.object({
    type: z.literal('modbus'),
    host: z.string().min(1),
    port: z.number().int().min(1).max(65535),
    unitId: z.number().int().min(0).max(247).optional(),
    timeoutMs: z.number().int().positive().optional(),
  }),
  z.object({
    type: z.literal('modbus-rtu'),
    /** The serial device, e.g. /dev/ttyUSB0. */
    path: z.string().min(1),
    baudRate: z.number().int().positive().default(9600),
    parity: z.enum(['none', 'even', 'odd']).optional(),
    unitId: z.number().int().min(0).max(247).optional(),
    timeoutMs: z.number().int().positive().optional(),
  }),
  z.object({
    type: z.literal('mqtt'),
    /** The `{source}` of `gridcell/v1/{zone}/meter-input/{source}`. */
    topic: z.string().regex(/^[A-Za-z0-9._-]+$/, 'letters, digits, dots, dashes, underscores'),
    maxAgeSeconds: z.number().int().positive().optional(),
  }),
]);

export const oracleConfigSchema = z.object({
  /** Names the daemon in its MQTT status topic and client id. */
  id: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, '1-64 letters, digits, dots, dashes, underscores'),
  zone: z
    .string()
    .regex(/^[A-Za-z0-9._-]{1,64}$/)
    .default('z1'),
  manifest: z.string().min(1).optional(),
  rpcUrl: z.string().url().optional(),
  mqttUrl: z.string().url().default('mqtt://127.0.0.1:1883'),
  database: z.string().min(1).optional(),
  keystore: z.string().min(1).optional(),
  /** Whose time decides interval boundaries: `wall` (production) or `chain` (a devnet clock). */
  clock: z.enum(['wall', 'chain']).default('wall'),
  sampleMs: z.number().int().min(50).default(1000),
  telemetryMs: z.number().int().min(0).default(5000),
  statusMs: z.number().int().min(1000).default(60_000),
  boundaryToleranceSeconds: z.number().int().positive().default(60),
  metricsPort: z.number().int().min(1).max(65535).optional(),
  meters: z
    .array(
      z.object({
        name: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/),
        /** The meter key's name in the keystore. */
        key: z.string().min(1),
        cell: decimal,
        source: sourceSchema,
        /** Override the avatar's connection limits for plausibility checks, W. */
        maxImportW: decimal.optional(),
        maxExportW: decimal.optional(),
      }),
    )
    .min(1, 'at least one meter'),
});
export type OracleConfig = z.output<typeof oracleConfigSchema>;

export class OracleConfigError extends BaseError {
  override name = 'OracleConfigError' as const;
}

/** Reads and checks a config file; every problem names the field and what was expected. */
export function readOracleConfig(path: string): OracleConfig {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (cause) {
    throw new OracleConfigError(`cannot read the oracle config ${path}: ${(cause as Error).message}`, {
      cause,
    });
  }
  const parsed = oracleConfigSchema.safeParse(raw);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  ${i.path.join('.') || '(root)'}: ${i.message}`);
    throw new OracleConfigError(`the oracle config ${path} is invalid`, { details: lines.join('\n') });
  }
  return parsed.data;
}
