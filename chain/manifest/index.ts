/**
 * The deployment manifest: what a client needs to reach a gridcell deployment. Written by
 * `gridcell devnet` (and `gridcell deploy`), read by every other part. Default place:
 * `.gridcell/deployment.json` in the working directory (docs/deployment.md).
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { getAddress, isAddress } from 'viem';
import { z } from 'zod';
import { BaseError } from '../errors/index.js';

export const DEFAULT_MANIFEST_PATH = '.gridcell/deployment.json';

const address = z
  .string()
  .refine((s) => isAddress(s), { message: 'expected a 0x-prefixed 20-byte hex address' })
  .transform((s) => getAddress(s));
const uint = z
  .string()
  .regex(/^\d+$/, 'expected a non-negative integer as a decimal string')
  .transform((s) => BigInt(s));

export const manifestSchema = z.object({
  version: z.literal(1),
  chainId: z.number().int().positive(),
  rpcUrl: z.string().url().optional(),
  deploymentBlock: uint,
  abiHash: z.string().regex(/^0x[0-9a-f]{64}$/),
  pool: z.object({
    intervalSeconds: uint,
    gateClosureLead: uint,
    settlementWindow: uint,
    maxOrdersPerInterval: uint,
  }),
  /** The debt channels' parameters (their interval length is the pool's). */
  channels: z.object({
    challengeWindow: uint,
    withdrawalDelay: uint,
  }),
  contracts: z.object({
    token: address,
    registry: address,
    wallets: address,
    pool: address,
    channels: address,
  }),
});
export type Manifest = z.output<typeof manifestSchema>;

export class ManifestError extends BaseError {
  override name = 'ManifestError' as const;
}

function serialise(manifest: Manifest): string {
  return `${JSON.stringify(manifest, (_k, v) => (typeof v === 'bigint' ? v.toString() : v), 2)}\n`;
}

/** Writes the manifest atomically (write to a temporary file, then rename). */
export function writeManifest(path: string, manifest: Manifest): string {
  const target = resolve(path);
  mkdirSync(dirname(target), { recursive: true });
  const tmp = `${target}.tmp`;
  writeFileSync(tmp, serialise(manifest));
  renameSync(tmp, target);
  return target;
}

/** Reads and validates a manifest; errors name the file and the offending field. */
export function readManifest(path: string = DEFAULT_MANIFEST_PATH): Manifest {
  const target = resolve(path);
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(target, 'utf8'));
  } catch (cause) {
    throw new ManifestError(`cannot read the deployment manifest ${target}`, {
      details: 'start a devnet with `gridcell devnet`, or pass --manifest FILE',
      cause,
    });
  }
  const parsed = manifestSchema.safeParse(raw);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
    throw new ManifestError(`invalid deployment manifest ${target}`, { details: issues });
  }
  return parsed.data;
}
