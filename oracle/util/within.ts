/** Waiting on the network without waiting forever. */

/** What `within` resolves to when time ran out. */
export const TIMED_OUT = Symbol('timed out');

/** `promise`, or TIMED_OUT after `ms`; a rejection stays a rejection. */
export function within<T>(ms: number, promise: Promise<T>): Promise<T | typeof TIMED_OUT> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<typeof TIMED_OUT>((resolve) => {
    timer = setTimeout(() => resolve(TIMED_OUT), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** For stopping: waits at most `ms` for `promise`, and a failure is no reason to stop stopping. */
export function settleWithin(ms: number, promise: Promise<unknown>): Promise<unknown> {
  return within(
    ms,
    promise.catch(() => undefined),
  );
}
