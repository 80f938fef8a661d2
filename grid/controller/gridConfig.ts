/**
 * The config file of `gridcell grid`: which complex (topology), where its devices answer,
 * and how the controller follows the chain. Validated with zod; relative paths are read
 * from the config file's folder. docs/grid.md has an example.
 */
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { z } from 'zod';
import { BaseError } from '../../chain/errors/index.js';
import { DEFAULT_TOPOLOGY_PATH } from '../topology/index.js';

export const gridConfigSchema = z
  .object({
    /** The topology file (default: the four-prosumer complex). */
    topology: z.string().min(1).optional(),
    manifest: z.string().min(1).optional(),
    rpcUrl: z.string().url().optional(),
    /** Broker for telemetry, plans, refusals and reserve requests; none: logs only. */
    mqttUrl: z
      .string()
      .regex(/^mqtts?:\/\//, 'an mqtt:// or mqtts:// URL')
      .optional(),
    controllerId: z
      .string()
      .regex(/^[a-z0-9-]+$/)
      .default('grid'),
    /**
     * Where the devices answer: consecutive ports from basePort in the plant's device order
     * (router; per cell hub, port, meter; links), or one address per device id.
     */
    devices: z.object({
      host: z.string().default('127.0.0.1'),
      basePort: z.number().int().min(1).max(65000),
      unitId: z.number().int().min(1).max(247).default(1),
      overrides: z
        .record(
          z.string(),
          z.object({
            host: z.string(),
            port: z.number().int().min(1).max(65535),
            unitId: z.number().int().optional(),
          }),
        )
        .default({}),
    }),
    /** Runs the plant and its Modbus servers in this process (the devices' addresses above). */
    simulate: z.object({ seed: z.number().int() }).optional(),
    /** `chain`: the latest block's timestamp (devnet, accelerated); `wall`: the system clock. */
    clock: z.enum(['chain', 'wall']).default('chain'),
    confirmations: z.number().int().min(0).max(64).default(2),
    revertSeconds: z.number().int().min(1).default(60),
    refreshSeconds: z.number().int().min(1).optional(),
    pollMs: z.number().int().min(50).default(1000),
    islanded: z.boolean().default(false),
    /** Clock seconds before delivery start at which a confirmed interval's setpoints are written. */
    writeLeadSeconds: z.number().int().min(0).default(5),
    /** A metered shortfall beyond max(Wh, % of the schedule) raises a reserve request. */
    shortfallToleranceWh: z.number().int().min(0).default(10),
    shortfallTolerancePct: z.number().min(0).max(100).default(2),
  })
  .refine((c) => c.refreshSeconds === undefined || c.refreshSeconds < c.revertSeconds, {
    message: 'refreshSeconds must be below revertSeconds, or the devices revert between refreshes',
    path: ['refreshSeconds'],
  });

export type GridConfig = z.output<typeof gridConfigSchema> & { topologyPath: string };

export class GridConfigError extends BaseError {
  override name = 'GridConfigError' as const;
}

/** Reads and validates a grid config; errors name the file, the field and what was expected. */
export function readGridConfig(path: string): GridConfig {
  const target = resolve(path);
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(target, 'utf8'));
  } catch (cause) {
    throw new GridConfigError(`cannot read the grid config ${target}`, { cause });
  }
  const parsed = gridConfigSchema.safeParse(raw);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
    throw new GridConfigError(`invalid grid config ${target}`, { details: issues });
  }
  const dir = dirname(target);
  return {
    ...parsed.data,
    topologyPath: parsed.data.topology ? resolve(dir, parsed.data.topology) : DEFAULT_TOPOLOGY_PATH,
    ...(parsed.data.manifest ? { manifest: resolve(dir, parsed.data.manifest) } : {}),
  };
}
