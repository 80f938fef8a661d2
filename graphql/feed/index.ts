/**
 * New events for subscriptions: polls the events table (the indexer may run in another
 * process) and hands each new IntervalCleared / PositionSettled to its listeners. After a
 * reorg, which the indexer records in the `reorgs` table in the transaction that rolls back,
 * it first hands listeners of {@link REORG_EVENT} the fork and the highest dropped block, then
 * rewinds to the fork, so the events of the new branch are delivered too. Reading the log
 * rather than watching the checkpoint also catches a rollback and replay that both happen
 * between two polls.
 */
import type { Database } from '../../indexer/database/index.js';
import type { Logger } from '../../indexer/logger.js';

export interface FeedEvent {
  eventName: string;
  blockNumber: number;
  logIndex: number;
  args: Record<string, string | number>;
}

export interface EventFeed {
  /** Calls `listener` for each new event named `eventName` until the returned function is called. */
  subscribe(eventName: string, listener: (event: FeedEvent) => void): () => void;
  close(): void;
}

export interface EventFeedParameters {
  db: Database;
  logger: Logger;
  pollIntervalMs?: number;
}

/**
 * The feed's name for a reorganisation: its args are `forkBlock` (the last block kept) and
 * `droppedThroughBlock`; events delivered above `forkBlock` were on a dropped branch.
 */
export const REORG_EVENT = 'ChainReorganized';

/** A feed that polls only while someone listens. */
export function createEventFeed(parameters: EventFeedParameters): EventFeed {
  const { db, logger } = parameters;
  const pollIntervalMs = parameters.pollIntervalMs ?? 250;
  const listeners = new Map<string, Set<(event: FeedEvent) => void>>();
  let cursor: { block: number; log: number } | undefined;
  /** The newest reorg already told (rows above it are new). */
  let lastReorg: number | undefined;
  let timer: NodeJS.Timeout | undefined;
  let polling = false;
  let closed = false;

  async function position(): Promise<{ block: number; log: number }> {
    const [row] = await db.all<{ b: number | null; l: number | null }>(
      'SELECT "block_number" AS "b", "log_index" AS "l" FROM "events" ORDER BY "block_number" DESC, "log_index" DESC LIMIT 1',
    );
    return { block: Number(row?.b ?? -1), log: Number(row?.l ?? -1) };
  }

  async function poll(): Promise<void> {
    if (polling || closed) return;
    polling = true;
    try {
      if (!cursor) {
        cursor = await position();
        const [last] = await db.all<{ id: number | null }>('SELECT MAX("id") AS "id" FROM "reorgs"');
        lastReorg = Number(last?.id ?? 0);
      }
      const reorgs = await db.all<{ id: number; fork_block: number; dropped_through_block: number }>(
        'SELECT "id", "fork_block", "dropped_through_block" FROM "reorgs" WHERE "id" > ? ORDER BY "id"',
        [lastReorg ?? 0],
      );
      for (const reorg of reorgs) {
        lastReorg = Number(reorg.id);
        const forkBlock = Number(reorg.fork_block);
        const event: FeedEvent = {
          eventName: REORG_EVENT,
          blockNumber: forkBlock,
          logIndex: -1,
          args: { forkBlock, droppedThroughBlock: Number(reorg.dropped_through_block) },
        };
        for (const listener of listeners.get(REORG_EVENT) ?? []) listener(event);
        if (forkBlock < cursor.block) cursor = { block: forkBlock, log: Number.MAX_SAFE_INTEGER };
      }
      const names = [...listeners.keys()].filter((name) => name !== REORG_EVENT);
      if (names.length === 0) {
        cursor = await position(); // only reorgs are followed: stay at the end
        return;
      }
      const rows = await db.all<{
        block_number: number;
        log_index: number;
        event_name: string;
        args: string;
      }>(
        `SELECT "block_number", "log_index", "event_name", "args" FROM "events" WHERE ("block_number", "log_index") > (?, ?) AND "event_name" IN (${names
          .map(() => '?')
          .join(', ')}) ORDER BY "block_number", "log_index" LIMIT 1000`,
        [cursor.block, cursor.log, ...names],
      );
      for (const row of rows) {
        const event: FeedEvent = {
          eventName: row.event_name,
          blockNumber: Number(row.block_number),
          logIndex: Number(row.log_index),
          args: JSON.parse(row.args) as Record<string, string | number>,
        };
        cursor = { block: event.blockNumber, log: event.logIndex };
        for (const listener of listeners.get(event.eventName) ?? []) listener(event);
      }
    } catch (error) {
      logger.warn(`subscription feed: ${(error as Error).message}`);
    } finally {
      polling = false;
    }
  }

  function ensureTimer() {
    if (!timer && !closed) {
      timer = setInterval(() => void poll(), pollIntervalMs);
      void poll();
    }
  }

  return {
    subscribe(eventName, listener) {
      let set = listeners.get(eventName);
      if (!set) {
        set = new Set();
        listeners.set(eventName, set);
      }
      set.add(listener);
      ensureTimer();
      return () => {
        set.delete(listener);
        if (set.size === 0) listeners.delete(eventName);
        if (listeners.size === 0 && timer) {
          clearInterval(timer);
          timer = undefined;
          cursor = undefined;
        }
      };
    },
    close() {
      closed = true;
      if (timer) clearInterval(timer);
      timer = undefined;
    },
  };
}
