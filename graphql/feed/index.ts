/**
 * New events for subscriptions: polls the events table (the indexer may run in another
 * process) and hands each new IntervalCleared / PositionSettled to its listeners. After a
 * reorg (the checkpoint falls below what was seen) it rewinds to the fork, so replayed
 * events are delivered too.
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

/** A feed that polls only while someone listens. */
export function createEventFeed(parameters: EventFeedParameters): EventFeed {
  const { db, logger } = parameters;
  const pollIntervalMs = parameters.pollIntervalMs ?? 250;
  const listeners = new Map<string, Set<(event: FeedEvent) => void>>();
  let cursor: { block: number; log: number } | undefined;
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
      if (!cursor) cursor = await position();
      const [cp] = await db.all<{ n: number }>(
        'SELECT "block_number" AS "n" FROM "checkpoint" WHERE "id" = 1',
      );
      if (cp && Number(cp.n) < cursor.block) cursor = { block: Number(cp.n), log: Number.MAX_SAFE_INTEGER };
      const names = [...listeners.keys()];
      if (names.length === 0) return;
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
