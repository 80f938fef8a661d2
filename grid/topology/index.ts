/**
 * The plant's topology as data: cells (generation, storage, loads), the shared AC bus behind
 * the energy router, and the DC links (rectiverters) between cells. A topology is a JSON file
 * validated here; the default is the four-prosumer complex of the IDEA demonstration
 * (`fourProsumers.json`). docs/grid.md describes every field.
 */
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { BaseError } from '../../chain/errors/index.js';

const watts = z.number().int().nonnegative();
const percent = z.number().int().min(0).max(100);
const name = z.string().regex(/^[a-z0-9][a-z0-9-]{0,31}$/, 'lower-case letters, digits and dashes');

export const loadKinds = ['household', 'heatPump', 'ev', 'flat'] as const;

const loadSchema = z.object({
  name,
  /** The daily shape of the load (grid/plant/profiles.ts). */
  kind: z.enum(loadKinds),
  /** Mean power over a day, W. */
  meanW: watts,
});

const hubSchema = z
  .object({
    capacityWh: z.number().int().positive(),
    initialSocPct: percent,
    /** The hub never discharges below this, nor charges above maxSocPct. */
    minSocPct: percent.default(5),
    maxSocPct: percent.default(100),
    maxChargeW: watts,
    maxDischargeW: watts,
    /** One-way efficiencies: stored = charged x eta; delivered = drawn x eta. */
    chargeEfficiencyPct: z.number().int().min(1).max(100),
    dischargeEfficiencyPct: z.number().int().min(1).max(100),
  })
  .refine((h) => h.minSocPct <= h.initialSocPct && h.initialSocPct <= h.maxSocPct, {
    message: 'expected minSocPct <= initialSocPct <= maxSocPct',
  });

const cellSchema = z.object({
  name,
  /** The cell's avatar on chain (decimal id), when it trades; the controller maps by it. */
  cellId: z
    .string()
    .regex(/^[1-9]\d*$/, 'a cell id as a decimal string')
    .optional(),
  /** Connection limits at the cell's point of connection (the avatar's), W. */
  maxImportW: watts,
  maxExportW: watts,
  pv: z.object({ peakW: watts }),
  hub: hubSchema,
  loads: z.array(loadSchema).min(1).max(8),
});

const linkSchema = z.object({
  name,
  /** The cells the rectiverter joins; positive flow runs from `a` to `b`. */
  a: name,
  b: name,
  ratedW: watts,
});

export const topologySchema = z
  .object({
    version: z.literal(1),
    name: z.string().min(1),
    /** The grid zone (MQTT topics, one pool per zone). */
    zone: z.string().regex(/^[a-z0-9-]+$/, 'lower-case letters, digits and dashes'),
    acBus: z.object({ nominalV: z.number().positive() }),
    router: z.object({
      /** The router's rating, W; WMaxLimPct is a percentage of it. */
      ratedW: z.number().int().positive(),
      /** Limits at the complex's connection to the public grid, W. */
      maxImportW: watts,
      maxExportW: watts,
      /** The avatar of the complex as a whole (the parent of the nested cells), if any. */
      parentCellId: z
        .string()
        .regex(/^[1-9]\d*$/)
        .optional(),
    }),
    dcMesh: z.object({ nominalV: z.number().positive(), links: z.array(linkSchema) }),
    cells: z.array(cellSchema).min(1).max(64),
  })
  .superRefine((t, ctx) => {
    const cells = new Set<string>();
    t.cells.forEach((c, i) => {
      if (cells.has(c.name))
        ctx.addIssue({ code: 'custom', path: ['cells', i, 'name'], message: `duplicate cell ${c.name}` });
      cells.add(c.name);
    });
    const ids = new Set<string>();
    t.cells.forEach((c, i) => {
      if (!c.cellId) return;
      if (ids.has(c.cellId))
        ctx.addIssue({
          code: 'custom',
          path: ['cells', i, 'cellId'],
          message: `duplicate cellId ${c.cellId}`,
        });
      ids.add(c.cellId);
    });
    const links = new Set<string>();
    t.dcMesh.links.forEach((l, i) => {
      for (const end of ['a', 'b'] as const) {
        if (!cells.has(l[end]))
          ctx.addIssue({
            code: 'custom',
            path: ['dcMesh', 'links', i, end],
            message: `unknown cell ${l[end]}`,
          });
      }
      if (l.a === l.b)
        ctx.addIssue({ code: 'custom', path: ['dcMesh', 'links', i], message: 'a link joins two cells' });
      const pair = [l.a, l.b].sort().join('|');
      if (links.has(pair))
        ctx.addIssue({
          code: 'custom',
          path: ['dcMesh', 'links', i],
          message: `a second link ${l.a}-${l.b}`,
        });
      links.add(pair);
    });
  });

export type Topology = z.output<typeof topologySchema>;
export type TopologyCell = Topology['cells'][number];
export type TopologyLink = Topology['dcMesh']['links'][number];

export class TopologyError extends BaseError {
  override name = 'TopologyError' as const;
}

/** The default topology file: the four-prosumer complex of the IDEA demonstration. */
export const DEFAULT_TOPOLOGY_PATH = join(dirname(fileURLToPath(import.meta.url)), 'fourProsumers.json');

/**
 * Validates a topology object; the error names the field, what was received and what was expected.
 * @param raw Parsed JSON.
 * @param source Where it came from, for the message.
 */
export function parseTopology(raw: unknown, source = 'topology'): Topology {
  const parsed = topologySchema.safeParse(raw);
  if (parsed.success) return parsed.data;
  const issues = parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
  throw new TopologyError(`invalid topology ${source}`, { details: issues });
}

/**
 * Reads and validates a topology file.
 * @example const topology = loadTopology(DEFAULT_TOPOLOGY_PATH);
 */
export function loadTopology(path: string = DEFAULT_TOPOLOGY_PATH): Topology {
  const target = resolve(path);
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(target, 'utf8'));
  } catch (cause) {
    throw new TopologyError(`cannot read the topology file ${target}`, { cause });
  }
  return parseTopology(raw, target);
}
