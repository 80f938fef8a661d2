/** Waiting on the network without waiting forever. */

/** What `within` resolves to when time ran out. */
export const TIMED_OUT = Symbol('timed out');

/** `promise`, or TIMED_OUT after `ms`; a rejection counts as settled (undefined). */
export function within<T>(ms: number, promise: Promise<T>): Promise<T | undefined | typeof TIMED_OUT> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<typeof TIMED_OUT>((resolve) => {
    timer = setTimeout(() => resolve(TIMED_OUT), ms);
  });
  return Promise.race([promise.catch(() => undefined), timeout]).finally(() => clearTimeout(timer));
}
