/**
 * The indexer: backfills gridcell's events with eth_getLogs in adaptive block ranges, then
 * follows the head. Blocks within the finality depth are checked hash by hash; a changed
 * parent rolls the data back to the fork and replays. Events, derived rows and the
 * checkpoint are written in one transaction per step, so a crash at any point resumes at
 * the checkpoint with no duplicate and no gap.
 */
import type { Chain, Hex, PublicClient, Transport } from 'viem';
import { BaseError } from '../../chain/errors/index.js';
import type { Manifest } from '../../chain/manifest/index.js';
import { type Database, DatabaseError } from '../database/index.js';
import type { Logger } from '../logger.js';
import { createAdaptiveRange, isRangeTooLarge } from './adaptiveRange.js';
import { applyEvent } from './applyEvent.js';
import { argsJson, type DecodedEvent, decodeLogs, type RpcLog, watchedContracts } from './decodeLogs.js';
import { createDerivedStore, rollbackDerived } from './derivedStore.js';

export interface IndexerParameters {
  publicClient: PublicClient<Transport, Chain | undefined>;
  manifest: Manifest;
  db: Database;
  logger: Logger;
  /** Blocks below head - finalityDepth are final: no reorg is expected there. */
  finalityDepth: number;
  /** Widest eth_getLogs range, blocks (default 10,000). */
  maxBlockRange?: number;
  /** How often to look for a new head once caught up, ms (default 500). */
  pollIntervalMs?: number;
  /** Headers fetched per step while following (default 100). */
  maxFollowBlocks?: number;
}

export type IndexerPhase = 'idle' | 'backfill' | 'follow' | 'stopped' | 'failed';

export interface IndexerStatus {
  phase: IndexerPhase;
  chainId: number;
  /** The last block whose events are in the database; null before the first step. */
  indexedBlock: number | null;
  headBlock: number | null;
  /** head - finality depth. */
  finalizedBlock: number | null;
  /** head - indexed, blocks. */
  lagBlocks: number | null;
  /** Indexed up to at least head - finality depth. */
  ready: boolean;
  /** Events written by this process. */
  eventsIndexed: number;
  reorgs: number;
  error: string | null;
}

export interface Indexer {
  /** Loads the checkpoint and starts the loop in the background; resolves once it runs. */
  start(): Promise<void>;
  /** Finishes the step in progress, then stops; resolves when the loop has ended. */
  stop(): Promise<void>;
  status(): IndexerStatus;
  /** Resolves when the loop ends: after stop(), or rejects with the error that ended it. */
  done(): Promise<void>;
}

/** The chain reorganised deeper than the blocks kept for checking (the finality depth). */
export class DeepReorgError extends BaseError {
  override name = 'DeepReorgError' as const;
}

/** The database was filled from another chain. */
export class ChainMismatchError extends BaseError {
  override name = 'ChainMismatchError' as const;
}

/** Something changed under a step (a reorg during the reads): the step is redone. */
class ChainMovedError extends BaseError {
  override name = 'ChainMovedError' as const;
}

/** Whether the loop should try again after `error` (network trouble: yes; bad data: no). */
export function shouldRetry(error: unknown): boolean {
  return !(
    error instanceof DeepReorgError ||
    error instanceof ChainMismatchError ||
    error instanceof DatabaseError
  );
}

interface Header {
  number: number;
  hash: Hex;
  parentHash: Hex;
}

interface Checkpoint {
  number: number;
  hash: Hex;
}

const EVENT_BATCH = 200;

/**
 * Builds an indexer over `db` for the deployment `manifest` describes.
 * @example
 * const indexer = createIndexer({ publicClient, manifest, db, logger, finalityDepth: 12 });
 * await indexer.start(); ... await indexer.stop();
 */
export function createIndexer(parameters: IndexerParameters): Indexer {
  const { publicClient, manifest, db, logger } = parameters;
  const finalityDepth = Math.max(0, Math.floor(parameters.finalityDepth));
  const pollIntervalMs = parameters.pollIntervalMs ?? 500;
  const maxFollowBlocks = parameters.maxFollowBlocks ?? 100;
  // Small first: a dense chain (a thousand orders a block) answers 10 blocks with 10,000 logs;
  // a sparse one doubles to the maximum within a few requests.
  const range = createAdaptiveRange({ initial: 10, max: parameters.maxBlockRange ?? 10_000 });
  const watched = watchedContracts(manifest);
  const addresses = [...watched.keys()];
  const chainId = manifest.chainId;

  let checkpoint: Checkpoint | undefined;
  let head: number | null = null;
  let phase: IndexerPhase = 'idle';
  let eventsIndexed = 0;
  let reorgs = 0;
  let lastError: string | null = null;
  let stopping = false;
  let wake: (() => void) | undefined;
  let loop: Promise<void> | undefined;
  // Backfill progress, for the log line every few seconds.
  let progress = { at: Date.now(), blocks: 0, events: 0 };
  let backfill = { at: Date.now(), events: 0, from: 0 };

  const rpc = <T>(method: string, params: unknown[]) =>
    publicClient.request({ method, params } as never) as Promise<T>;

  async function header(number: number): Promise<Header | undefined> {
    const block = await rpc<{ number: Hex; hash: Hex; parentHash: Hex } | null>('eth_getBlockByNumber', [
      `0x${number.toString(16)}`,
      false,
    ]);
    if (!block) return undefined;
    return { number: Number(BigInt(block.number)), hash: block.hash, parentHash: block.parentHash };
  }

  async function headNumber(): Promise<number> {
    return Number(BigInt(await rpc<Hex>('eth_blockNumber', [])));
  }

  async function getLogs(from: number, to: number): Promise<RpcLog[]> {
    return rpc<RpcLog[]>('eth_getLogs', [
      { address: addresses, fromBlock: `0x${from.toString(16)}`, toBlock: `0x${to.toString(16)}` },
    ]);
  }

  async function loadCheckpoint(): Promise<Checkpoint> {
    const [row] = await db.all<{ chain_id: number; block_number: number; block_hash: string }>(
      'SELECT "chain_id", "block_number", "block_hash" FROM "checkpoint" WHERE "id" = 1',
    );
    if (row) {
      if (Number(row.chain_id) !== chainId) {
        throw new ChainMismatchError(
          `the database ${db.location} holds chain ${row.chain_id}, the manifest is for chain ${chainId}`,
          { details: 'use another --database for this chain' },
        );
      }
      return { number: Number(row.block_number), hash: row.block_hash as Hex };
    }
    const start = Number(manifest.deploymentBlock) - 1;
    const h = start >= 0 ? await header(start) : undefined;
    return { number: start, hash: h?.hash ?? '0x' };
  }

  async function insertEvents(tx: Database, events: DecodedEvent[]): Promise<void> {
    for (let i = 0; i < events.length; i += EVENT_BATCH) {
      const chunk = events.slice(i, i + EVENT_BATCH);
      await tx.run(
        `INSERT INTO "events" ("block_number", "log_index", "block_hash", "tx_hash", "contract", "address", "event_name", "args") VALUES ${chunk
          .map(() => '(?, ?, ?, ?, ?, ?, ?, ?)')
          .join(', ')} ON CONFLICT ("block_number", "log_index") DO NOTHING`,
        chunk.flatMap((e) => [
          e.blockNumber,
          e.logIndex,
          e.blockHash,
          e.txHash,
          e.contract,
          e.address,
          e.eventName,
          argsJson(e.args),
        ]),
      );
    }
  }

  /** Writes one step: its events, their derived rows, the headers kept, the checkpoint. */
  async function commit(logs: RpcLog[], headers: Header[], to: Header, finalized: number): Promise<number> {
    const { events, unknown } = decodeLogs(logs, watched);
    if (unknown.length > 0) {
      logger.warn(
        `${unknown.length} log(s) match no event of the generated ABIs (first: block ${BigInt(unknown[0]?.blockNumber ?? '0x0')}, topic ${unknown[0]?.topics[0]}); they are skipped`,
      );
    }
    events.sort((a, b) => a.blockNumber - b.blockNumber || a.logIndex - b.logIndex);
    await db.transaction(async (tx) => {
      await insertEvents(tx, events);
      const store = createDerivedStore(tx, finalized);
      for (const event of events) {
        store.setBlock(event.blockNumber);
        await applyEvent(store, event);
      }
      await store.flush();
      const kept = headers.length > 0 ? headers : [to];
      for (const h of kept) {
        await tx.run(
          'INSERT INTO "blocks" ("number", "hash", "parent_hash") VALUES (?, ?, ?) ON CONFLICT ("number") DO UPDATE SET "hash" = excluded."hash", "parent_hash" = excluded."parent_hash"',
          [h.number, h.hash, h.parentHash],
        );
      }
      await tx.run(
        'INSERT INTO "checkpoint" ("id", "chain_id", "block_number", "block_hash") VALUES (1, ?, ?, ?) ON CONFLICT ("id") DO UPDATE SET "block_number" = excluded."block_number", "block_hash" = excluded."block_hash"',
        [chainId, to.number, to.hash],
      );
      // What is final can no longer be rolled back: keep the headers from the finalized
      // block up (the deepest possible fork point) and the undo entries above it.
      const keepFrom = Math.min(finalized, to.number);
      await tx.run('DELETE FROM "blocks" WHERE "number" < ?', [keepFrom]);
      await tx.run('DELETE FROM "undo_log" WHERE "block_number" <= ?', [finalized]);
    });
    checkpoint = { number: to.number, hash: to.hash };
    eventsIndexed += events.length;
    return events.length;
  }

  /** The next range's logs and last header, asked for while the current range is written. */
  let prefetched:
    | { from: number; to: number; result: Promise<{ logs: RpcLog[]; last: Header | undefined }> }
    | undefined;

  function fetchRange(from: number, to: number) {
    const result = Promise.all([getLogs(from, to), header(to)]).then(([logs, last]) => ({ logs, last }));
    result.catch(() => {});
    return result;
  }

  async function backfillStep(from: number, safe: number): Promise<void> {
    let to = Math.min(safe, from + range.size() - 1);
    let pending = prefetched?.from === from && prefetched.to <= safe ? prefetched : undefined;
    prefetched = undefined;
    if (pending) to = pending.to;
    else pending = { from, to, result: fetchRange(from, to) };
    let fetched: { logs: RpcLog[]; last: Header | undefined };
    try {
      fetched = await pending.result;
    } catch (error) {
      if (isRangeTooLarge(error) && to > from) {
        range.refused();
        logger.warn(`eth_getLogs refused ${to - from + 1} blocks; asking for ${range.size()} next`);
        return;
      }
      throw error;
    }
    const { logs, last } = fetched;
    range.succeeded(to - from + 1, logs.length);
    if (!last) throw new ChainMovedError(`block ${to} vanished during the backfill`);
    if (to < safe) {
      const next = to + 1;
      const nextTo = Math.min(safe, next + range.size() - 1);
      prefetched = { from: next, to: nextTo, result: fetchRange(next, nextTo) };
    }
    const count = await commit(logs, [], last, safe);
    progress.blocks += to - from + 1;
    progress.events += count;
    backfill.events += count;
    const now = Date.now();
    if (now - progress.at >= 2000) {
      const s = (now - progress.at) / 1000;
      logger.info(
        `backfill: block ${to} of ${head} (${Math.round(progress.blocks / s)} blocks/s, ${Math.round(progress.events / s)} events/s, lag ${(head ?? to) - to} blocks)`,
      );
      progress = { at: now, blocks: 0, events: 0 };
    }
  }

  async function followStep(from: number, to: number, finalized: number): Promise<void> {
    const numbers = Array.from({ length: to - from + 1 }, (_, i) => from + i);
    const headers = await Promise.all(numbers.map((n) => header(n)));
    const first = headers[0];
    if (!first || !checkpoint) throw new ChainMovedError(`block ${from} vanished`);
    if (checkpoint.hash !== '0x' && first.parentHash !== checkpoint.hash) {
      await handleReorg(`block ${from}'s parent ${first.parentHash} is not the indexed ${checkpoint.hash}`);
      return;
    }
    const byNumber = new Map<number, Header>();
    let previous = first;
    for (const h of headers) {
      if (!h) throw new ChainMovedError('a block vanished while reading headers');
      if (h !== first && h.parentHash !== previous.hash)
        throw new ChainMovedError(`block ${h.number} changed`);
      byNumber.set(h.number, h);
      previous = h;
    }
    const logs = await getLogs(from, to);
    for (const log of logs) {
      const n = Number(BigInt(log.blockNumber));
      if (byNumber.get(n)?.hash !== log.blockHash) {
        throw new ChainMovedError(`the logs of block ${n} come from another chain than its header`);
      }
    }
    const count = await commit(logs, headers as Header[], previous, finalized);
    if (count > 0) logger.info(`indexed blocks ${from}-${to}: ${count} event(s)`);
  }

  /** Finds the newest block both the database and the chain agree on and rolls back to it. */
  async function handleReorg(reason: string): Promise<void> {
    prefetched = undefined;
    if (!checkpoint) return;
    const stored = await db.all<{ number: number; hash: string }>(
      'SELECT "number", "hash" FROM "blocks" WHERE "number" <= ? ORDER BY "number" DESC',
      [checkpoint.number],
    );
    let fork: Header | undefined;
    for (const row of stored) {
      const canonical = await header(Number(row.number));
      if (canonical && canonical.hash === row.hash) {
        fork = canonical;
        break;
      }
    }
    if (!fork) {
      throw new DeepReorgError(
        `the chain reorganised below every block kept (indexed up to ${checkpoint.number})`,
        {
          details: `${reason}; the finality depth is ${finalityDepth} blocks: raise --finality-depth and reindex into a new database`,
        },
      );
    }
    const forkBlock = fork;
    const droppedThrough = checkpoint.number;
    const dropped = droppedThrough - forkBlock.number;
    let restored = 0;
    await db.transaction(async (tx) => {
      restored = await rollbackDerived(tx, forkBlock.number);
      await tx.run('DELETE FROM "events" WHERE "block_number" > ?', [forkBlock.number]);
      await tx.run('DELETE FROM "blocks" WHERE "number" > ?', [forkBlock.number]);
      await tx.run('INSERT INTO "reorgs" ("fork_block", "dropped_through_block") VALUES (?, ?)', [
        forkBlock.number,
        droppedThrough,
      ]);
      await tx.run('UPDATE "checkpoint" SET "block_number" = ?, "block_hash" = ? WHERE "id" = 1', [
        forkBlock.number,
        forkBlock.hash,
      ]);
    });
    checkpoint = { number: forkBlock.number, hash: forkBlock.hash };
    reorgs++;
    logger.warn(
      `reorg: ${reason}; rolled back ${dropped} block(s) to ${forkBlock.number} (${restored} row change(s) undone); replaying`,
    );
  }

  async function step(): Promise<'busy' | 'idle'> {
    head = await headNumber();
    if (!checkpoint) checkpoint = await loadCheckpoint();
    const finalized = head - finalityDepth;
    if (head < checkpoint.number) {
      await handleReorg(`the head ${head} is below the indexed block ${checkpoint.number}`);
      return 'busy';
    }
    if (checkpoint.number < finalized) {
      if (phase !== 'backfill') {
        logger.info(`backfill: blocks ${checkpoint.number + 1} to ${finalized} (head ${head})`);
        progress = { at: Date.now(), blocks: 0, events: 0 };
        backfill = { at: Date.now(), events: 0, from: checkpoint.number + 1 };
      }
      phase = 'backfill';
      await backfillStep(checkpoint.number + 1, finalized);
      return 'busy';
    }
    prefetched = undefined;
    if (phase === 'backfill') {
      const s = (Date.now() - backfill.at) / 1000;
      logger.info(
        `backfill done: blocks ${backfill.from}-${checkpoint.number}, ${backfill.events} events in ${s.toFixed(2)} s (${Math.round(backfill.events / Math.max(s, 0.001))} events/s)`,
      );
    }
    if (phase !== 'follow') logger.info(`following the head from block ${checkpoint.number} (head ${head})`);
    phase = 'follow';
    if (checkpoint.number < head) {
      await followStep(checkpoint.number + 1, Math.min(head, checkpoint.number + maxFollowBlocks), finalized);
      return 'busy';
    }
    // Caught up: is the indexed head still on the chain?
    const current = await header(checkpoint.number);
    if (checkpoint.hash !== '0x' && current?.hash !== checkpoint.hash) {
      await handleReorg(`block ${checkpoint.number} is now ${current?.hash ?? 'missing'}`);
      return 'busy';
    }
    return 'idle';
  }

  function sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        wake = undefined;
        resolve();
      }, ms);
      wake = () => {
        clearTimeout(timer);
        wake = undefined;
        resolve();
      };
    });
  }

  async function run(): Promise<void> {
    let backoff = 250;
    while (!stopping) {
      try {
        const result = await step();
        backoff = 250;
        lastError = null;
        if (result === 'idle') await sleep(pollIntervalMs);
      } catch (error) {
        if (stopping) break;
        lastError = (error as BaseError).shortMessage ?? (error as Error).message;
        if (error instanceof ChainMovedError) {
          logger.warn(`${lastError}; redoing the step`);
          continue;
        }
        if (!shouldRetry(error)) {
          phase = 'failed';
          logger.error(`stopped: ${(error as Error).message}`);
          throw error;
        }
        logger.warn(`${lastError}; retrying in ${backoff} ms`);
        await sleep(backoff);
        backoff = Math.min(backoff * 2, 10_000);
      }
    }
    phase = 'stopped';
  }

  return {
    async start() {
      if (loop) return;
      checkpoint = await loadCheckpoint();
      logger.info(
        `indexing chain ${chainId} into ${db.location} from block ${checkpoint.number + 1} (finality depth ${finalityDepth})`,
      );
      loop = run();
      loop.catch(() => {});
    },
    async stop() {
      stopping = true;
      wake?.();
      await loop?.catch(() => {});
      phase = 'stopped';
    },
    status() {
      const indexed = checkpoint?.number ?? null;
      const finalized = head === null ? null : head - finalityDepth;
      return {
        phase,
        chainId,
        indexedBlock: indexed,
        headBlock: head,
        finalizedBlock: finalized,
        lagBlocks: head === null || indexed === null ? null : Math.max(0, head - indexed),
        ready: phase !== 'failed' && indexed !== null && finalized !== null && indexed >= finalized,
        eventsIndexed,
        reorgs,
        error: lastError,
      };
    },
    done() {
      return loop ?? Promise.resolve();
    },
  };
}
