import { type ParseArgsConfig, parseArgs } from 'node:util';

type ParseArgsOptionsConfig = NonNullable<ParseArgsConfig['options']>;

import { getAddress, isAddress, parseUnits } from 'viem';
import { z } from 'zod';
import { BaseError } from '../chain/errors/index.js';

/** A command-line argument was wrong; the message names it and what was expected. */
export class UsageError extends BaseError {
  override name = 'UsageError' as const;
}

/** Validates parsed options with zod; the first problem becomes one readable line. */
export function parseOptions<S extends z.ZodType>(schema: S, values: unknown, command: string): z.output<S> {
  const parsed = schema.safeParse(values);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  const key = issue?.path[0];
  const name =
    key === undefined ? 'arguments' : typeof key === 'number' ? `argument ${key + 1}` : `--${String(key)}`;
  const raw =
    key === undefined ? undefined : (values as Record<string | number, unknown>)[key as string | number];
  const received = raw === undefined ? '' : ` ${JSON.stringify(raw)}`;
  throw new UsageError(
    `invalid ${name}${received}: ${issue?.message ?? 'invalid'} (see \`gridcell ${command} --help\`)`,
  );
}

/** parseArgs with strict checking; unknown options become a UsageError. */
export function parseCommandLine<const O extends ParseArgsOptionsConfig>(
  argv: string[],
  options: O,
  command: string,
) {
  try {
    return parseArgs({ args: argv, options, strict: true, allowPositionals: true } as const);
  } catch (cause) {
    throw new UsageError(`${(cause as Error).message} (see \`gridcell ${command} --help\`)`);
  }
}

/**
 * Parses `gridcell <group> <action> ...`: the action and its arguments, or undefined when
 * help was printed. A missing action prints the help and is a usage error.
 */
export function parseSubcommand<const O extends ParseArgsOptionsConfig & { help: { type: 'boolean' } }>(
  argv: string[],
  options: O,
  command: string,
  actions: readonly string[],
  help: string,
  io: { out(text: string): void },
) {
  const { values, positionals } = parseCommandLine(argv, options, command);
  const [action, ...rest] = positionals;
  if ((values as { help?: boolean }).help || !action) {
    io.out(help);
    if (!(values as { help?: boolean }).help) throw new UsageError(`say what to do: ${actions.join(', ')}`);
    return undefined;
  }
  if (!actions.includes(action)) {
    throw new UsageError(`unknown action '${action}': expected ${actions.join(', ')}`);
  }
  return { values, action, rest };
}

/** Zod types for command-line values. */
export const arg = {
  address: z
    .string()
    .refine((s) => isAddress(s, { strict: false }), { message: 'expected a 0x-prefixed 20-byte hex address' })
    .transform((s) => getAddress(s)),
  cellId: z
    .string()
    .regex(/^[1-9]\d*$/, 'expected a cell id, a positive integer')
    .transform((s) => BigInt(s)),
  uint: z
    .string()
    .regex(/^\d+$/, 'expected a non-negative integer')
    .transform((s) => BigInt(s)),
  positiveInt: z
    .string()
    .regex(/^[1-9]\d*$/, 'expected a positive integer')
    .transform((s) => BigInt(s)),
  /** A token amount in whole units with up to `decimals` decimals: "12.5" → base units. */
  tokenAmount: (decimals: number) =>
    z
      .string()
      .regex(
        // `\d{1,0}` is no regular expression: a token without decimals takes whole numbers.
        decimals > 0 ? new RegExp(`^\\d+(\\.\\d{1,${decimals}})?$`) : /^\d+$/,
        decimals > 0
          ? `expected an amount like 12.5 (at most ${decimals} decimals)`
          : 'expected a whole amount',
      )
      .transform((s) => parseUnits(s, decimals)),
};

/**
 * Waits for SIGINT or SIGTERM, then runs `close` once: the one shutdown path of a daemon.
 * A second signal while closing exits at once.
 */
export function onShutdown(close: (signal: NodeJS.Signals) => Promise<void>): Promise<void> {
  return new Promise((resolve, reject) => {
    let closing = false;
    const handler = (signal: NodeJS.Signals) => {
      if (closing) process.exit(130);
      closing = true;
      close(signal).then(resolve, reject);
    };
    process.once('SIGINT', handler);
    process.once('SIGTERM', handler);
  });
}
