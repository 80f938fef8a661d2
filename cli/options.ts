import type { z } from 'zod';
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
  const name = issue?.path.length ? `--${issue.path.join('.')}` : 'arguments';
  const received = issue?.path.length
    ? JSON.stringify((values as Record<string, unknown>)[String(issue.path[0])])
    : '';
  throw new UsageError(
    `invalid ${name}${received ? ` ${received}` : ''}: ${issue?.message ?? 'invalid'} (see \`gridcell ${command} --help\`)`,
  );
}

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
