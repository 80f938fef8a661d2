/**
 * Test helpers for the agent tests: waiting on a condition with a deadline, and a logger that
 * keeps lines for a failing test's message.
 */
import { createLogger, type Logger } from '../../chain/logger/index.js';

/**
 * Waits until `condition` holds, checking every `everyMs`; fails after `timeoutMs` with
 * `what` and the last value seen.
 */
export async function waitFor<T>(
  what: string,
  condition: () => T | Promise<T>,
  { timeoutMs = 20_000, everyMs = 50 }: { timeoutMs?: number; everyMs?: number } = {},
): Promise<NonNullable<T>> {
  const deadline = performance.now() + timeoutMs;
  let last: T | undefined;
  for (;;) {
    last = await condition();
    if (last) return last as NonNullable<T>;
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}

/** A logger writing to stderr only when GRIDCELL_TEST_LOG is set. */
export function testLogger(name: string): Logger {
  return createLogger({
    name,
    level: process.env.GRIDCELL_TEST_LOG ? 'debug' : 'error',
    timestamps: false,
  });
}
