/**
 * An agent's configuration: one cell, its zone, its network, its forecast profile and its
 * owner's preferences. Read from a JSON file by `gridcell agent --config FILE`, validated with
 * zod; every error names the field, what was received and what was expected.
 */
import { readFileSync } from 'node:fs';
import { getAddress, isAddress } from 'viem';
import { z } from 'zod';
import { BaseError } from '../../chain/errors/index.js';

const wh = z
  .union([z.string().regex(/^\d+$/, 'a non-negative integer'), z.number().int().nonnegative()])
  .transform((v) => BigInt(v));
const price = wh;
const address = z
  .string()
  .refine((s) => isAddress(s, { strict: false }), 'a 0x-prefixed 20-byte hex address')
  .transform((s) => getAddress(s));

/** Services an owner can rank; the first gets capacity first when requests meet in one round. */
export const serviceNames = ['deals', 'demand-response', 'pool'] as const;
export type ServiceName = (typeof serviceNames)[number];

export const agentConfigSchema = z.object({
  /** The cell this agent speaks for. */
  cell: z.union([z.string().regex(/^[1-9]\d*$/), z.number().int().positive()]).transform((v) => BigInt(v)),
  /** Grid zone: one pool and one set of topics per zone. */
  zone: z.string().regex(/^[a-z0-9-]{1,32}$/, '1-32 lower-case letters, digits or dashes'),
  /** The cell's meter that measures its deals (its export counter) and its demand response. */
  meter: address,
  /** Key file of the agent key (the CLI unlocks it; the factory takes the account). */
  key: z.object({ keystore: z.string().optional(), name: z.string() }).optional(),
  network: z
    .object({
      listen: z.array(z.string()).default(['/ip4/127.0.0.1/tcp/0']),
      bootstrap: z.array(z.string()).default([]),
      mdns: z.boolean().default(false),
    })
    .prefault({}),
  mqttUrl: z.string().url().optional(),
  /** Energy per interval, cycled by interval index (index = interval mod length), Wh. */
  profile: z.object({
    loadWh: z.array(wh).min(1),
    generationWh: z.array(wh).min(1),
    /** Load the owner lets the agent switch off on request (demand response), Wh per interval. */
    flexibleLoadWh: z.array(wh).default([0n]),
  }),
  battery: z
    .object({
      capacityWh: wh,
      socWh: wh,
      reserveSocWh: wh,
      maxChargeWh: wh,
      maxDischargeWh: wh,
    })
    .optional(),
  preferences: z.object({
    /** Token base units per kWh. */
    minSellPrice: price,
    maxBuyPrice: price,
    /** The lowest price for which the owner reduces load on request. */
    minDemandResponsePrice: price.optional(),
    /** The price asked in bilateral deals; default minSellPrice. */
    dealPrice: price.optional(),
  }),
  pool: z
    .object({
      enabled: z.boolean().default(true),
      /** Cancel an order before gate closure when the forecast no longer backs it (and bid again). */
      cancelUnbacked: z.boolean().default(true),
    })
    .prefault({}),
  deals: z
    .object({
      sell: z.boolean().default(true),
      buy: z
        .object({
          maxWhPerInterval: wh,
          intervals: z.number().int().min(1).max(96).default(2),
          /** The first interval of a call is this many intervals after the current one. */
          leadIntervals: z.number().int().min(1).default(2),
        })
        .optional(),
      /** How long a call for proposals collects answers, seconds of the deployment's clock. */
      cfpWindowSeconds: z.number().int().positive().default(60),
      /** How long a proposal and an accepted deal stay open, seconds. */
      acceptWindowSeconds: z.number().int().positive().default(120),
      /** The seller redeems once this much is owed beyond what was paid (and at the deal's end). */
      redeemThreshold: wh.default(0n),
      /** How long the seller waits for the buyer's signature on the final amount before it closes alone, s. */
      closeAnswerSeconds: z.number().int().positive().default(120),
      /** How long after a deal's delivery the seller waits for the last voucher before it closes anyway, s. */
      finalVoucherWaitSeconds: z.number().int().nonnegative().default(300),
      /**
       * How long after a deal's delivery the buyer waits for the seller to close before it
       * closes alone (with its own latest voucher) and settles after the challenge window, s.
       */
      buyerCloseWaitSeconds: z.number().int().nonnegative().default(900),
    })
    .prefault({}),
  grid: z
    .object({
      /** Answer the grid controller's reserve requests for this cell with pool orders. */
      answerReserve: z.boolean().default(true),
    })
    .prefault({}),
  services: z
    .object({
      /** Service kinds the agent subscribes its cell to when one announces itself. */
      subscribe: z.array(z.enum(['demand-response', 'load-shedding'])).default([]),
    })
    .prefault({}),
  /** Loads the agent may switch off (load shedding); lower priority goes first. */
  loads: z
    .array(
      z.object({
        id: z.string().regex(/^[A-Za-z0-9_-]{1,32}$/),
        wh,
        priority: z.number().int().min(0).max(100),
      }),
    )
    .default([]),
  priorities: z.array(z.enum(serviceNames)).default(['deals', 'demand-response', 'pool']),
  /** How often the agent reads its clock and acts, real milliseconds. */
  tickMs: z.number().int().min(20).default(500),
});
export type AgentConfig = z.output<typeof agentConfigSchema>;
export type AgentConfigInput = z.input<typeof agentConfigSchema>;

export class AgentConfigError extends BaseError {
  override name = 'AgentConfigError' as const;
}

/** Validates a configuration object. */
export function parseAgentConfig(raw: unknown, source = 'agent configuration'): AgentConfig {
  const parsed = agentConfigSchema.safeParse(raw);
  if (parsed.success) return parsed.data;
  const issues = parsed.error.issues
    .slice(0, 5)
    .map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`)
    .join('; ');
  throw new AgentConfigError(`invalid ${source}`, { details: issues });
}

/** Reads and validates a configuration file. */
export function readAgentConfig(path: string): AgentConfig {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (cause) {
    throw new AgentConfigError(`cannot read the agent configuration ${path}`, {
      details: 'expected a JSON file (docs/agent.md shows one)',
      cause,
    });
  }
  return parseAgentConfig(raw, `agent configuration ${path}`);
}
