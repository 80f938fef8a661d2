/** How many blocks the next eth_getLogs asks for, adapted to what the node returns. */
export interface AdaptiveRange {
  /** The current range, in blocks (at least 1). */
  size(): number;
  /** A request of `blocks` blocks returned `logs` logs: grow when sparse, shrink when dense. */
  succeeded(blocks: number, logs: number): void;
  /** The node refused the range (too many results, too wide, timeout): halve it. */
  refused(): void;
}

export interface AdaptiveRangeParameters {
  initial: number;
  max: number;
  /** Aim for about this many logs per request (default 10,000). */
  targetLogs?: number;
}

/**
 * Starts at `initial` blocks, doubles while requests return fewer than half the target,
 * shrinks proportionally when one returns more, halves when the node refuses; never above
 * `max` nor below 1.
 */
export function createAdaptiveRange(parameters: AdaptiveRangeParameters): AdaptiveRange {
  const target = parameters.targetLogs ?? 10_000;
  const max = Math.max(1, parameters.max);
  let size = Math.min(Math.max(1, parameters.initial), max);
  return {
    size: () => size,
    succeeded(blocks, logs) {
      if (logs > target) {
        size = Math.max(1, Math.floor((blocks * target) / logs));
      } else if (logs < target / 2 && blocks >= size) {
        size = Math.min(max, size * 2);
      }
    },
    refused() {
      size = Math.max(1, Math.floor(size / 2));
    },
  };
}

/**
 * Whether an eth_getLogs error means "ask for fewer blocks" (the messages of geth, erigon,
 * alchemy, infura, quicknode and anvil for a too-large answer or range).
 */
export function isRangeTooLarge(error: unknown): boolean {
  const text = `${(error as { details?: string }).details ?? ''} ${(error as Error).message ?? ''}`;
  return /more than \d+ results|too many (results|logs)|range (is )?too (large|wide)|block range|limit exceeded|response size|query timeout|exceed/i.test(
    text,
  );
}
