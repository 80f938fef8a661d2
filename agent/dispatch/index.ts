/**
 * The dispatch ledger: what the cell can do in each interval (export, import, load reduction)
 * and what is already promised to which service. A commitment that would exceed the capacity
 * is refused, so the same Wh is never committed twice across the pool, deals and demand
 * response. The owner's priorities decide who is served first when requests meet in one
 * planning round (`byPriority`); what is committed stays committed.
 */
import { BaseError } from '../../chain/errors/index.js';
import type { ServiceName } from '../config/index.js';

export type Direction = 'export' | 'import' | 'reduction';

export interface Commitment {
  key: string;
  service: ServiceName;
  interval: bigint;
  direction: Direction;
  wh: bigint;
}

export class OverCommitError extends BaseError {
  override name = 'OverCommitError' as const;
}

export interface DispatchLedger {
  /** Wh still free in `interval` for `direction`. */
  available(interval: bigint, direction: Direction): bigint;
  /**
   * Commits `wh` for a service under `key` (a key commits once per interval and direction).
   * @throws OverCommitError when the capacity left is smaller.
   */
  commit(commitment: Commitment): void;
  /** Changes a commitment's amount (a proposal that became a smaller deal); refused like commit. */
  resize(key: string, interval: bigint, direction: Direction, wh: bigint): void;
  /**
   * Wh committed beyond what the cell can do in `interval` (0 when every commitment is backed):
   * the forecast fell after the commitments were made.
   */
  overCommitted(interval: bigint, direction: Direction): bigint;
  /** Frees every commitment under `key`. */
  release(key: string): void;
  commitments(interval?: bigint): Commitment[];
  /** Orders requests by the owner's priorities. */
  byPriority<T extends { service: ServiceName }>(requests: T[]): T[];
}

export interface CreateDispatchLedgerParameters {
  /** The cell's capacity per interval and direction (from the forecast). */
  capacity(interval: bigint, direction: Direction): bigint;
  priorities: readonly ServiceName[];
}

/** Creates an empty ledger over a capacity function. */
export function createDispatchLedger(parameters: CreateDispatchLedgerParameters): DispatchLedger {
  const { capacity, priorities } = parameters;
  const entries: Commitment[] = [];
  const committed = (interval: bigint, direction: Direction, except?: Commitment) =>
    entries
      .filter((e) => e !== except && e.interval === interval && e.direction === direction)
      .reduce((sum, e) => sum + e.wh, 0n);
  const available = (interval: bigint, direction: Direction, except?: Commitment) => {
    const left = capacity(interval, direction) - committed(interval, direction, except);
    return left > 0n ? left : 0n;
  };
  const refuse = (c: Pick<Commitment, 'key' | 'interval' | 'direction' | 'wh'>, left: bigint) =>
    new OverCommitError(
      `cannot commit ${c.wh} Wh of ${c.direction} in interval ${c.interval} to ${c.key}: ${left} Wh left`,
      {
        details: `already committed: ${
          entries
            .filter((e) => e.interval === c.interval && e.direction === c.direction)
            .map((e) => `${e.key}=${e.wh}`)
            .join(', ') || 'nothing'
        }`,
      },
    );
  return {
    available: (interval, direction) => available(interval, direction),
    commit(c) {
      if (c.wh <= 0n) return;
      if (entries.some((e) => e.key === c.key && e.interval === c.interval && e.direction === c.direction))
        throw new OverCommitError(`${c.key} already holds ${c.direction} in interval ${c.interval}`);
      const left = available(c.interval, c.direction);
      if (c.wh > left) throw refuse(c, left);
      entries.push({ ...c });
    },
    resize(key, interval, direction, wh) {
      const entry = entries.find(
        (e) => e.key === key && e.interval === interval && e.direction === direction,
      );
      if (!entry) throw new OverCommitError(`${key} holds no ${direction} in interval ${interval}`);
      const left = available(interval, direction, entry);
      if (wh > left) throw refuse({ key, interval, direction, wh }, left);
      entry.wh = wh;
    },
    overCommitted(interval, direction) {
      const over = committed(interval, direction) - capacity(interval, direction);
      return over > 0n ? over : 0n;
    },
    release(key) {
      for (let i = entries.length - 1; i >= 0; i--) if (entries[i]?.key === key) entries.splice(i, 1);
    },
    commitments: (interval) =>
      entries.filter((e) => interval === undefined || e.interval === interval).map((e) => ({ ...e })),
    byPriority: (requests) =>
      [...requests].sort((a, b) => priorities.indexOf(a.service) - priorities.indexOf(b.service)),
  };
}
