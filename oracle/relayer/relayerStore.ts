/**
 * The relayer's local store (SQLite): every checked reading it received, what became of it
 * on chain, the intervals it has claimed, and the channels whose sellers it serves. After a
 * restart it picks up exactly where it was: nothing submitted twice, nothing forgotten.
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import type { Address, Hex } from 'viem';

/** What became of a reading in the pool. */
export type ReadingStatus =
  /** Waiting for delivery to end, for the interval to be cleared, or for a batch. */
  | 'pending'
  /** Accepted by the pool's settle. */
  | 'settled'
  /** The cell had nothing scheduled in the interval: the pool has no use for it. */
  | 'unscheduled'
  /** The cell's position already had a reading (someone else submitted it). */
  | 'already-settled'
  /** The pool refused it; `reason` says why. */
  | 'rejected'
  /** The settlement window closed before it could be submitted. */
  | 'expired';

export interface RelayedReading {
  meter: Address;
  cell: bigint;
  interval: bigint;
  seq: bigint;
  /** The reading message as received (JSON). */
  payload: string;
  status: ReadingStatus;
  reason: string | null;
  transaction: Hex | null;
}

export interface ChannelRecord {
  channel: Hex;
  sellerMeter: Address;
  firstInterval: bigint;
  lastInterval: bigint;
}

export interface RelayerStore {
  /** @returns false when a reading of that meter and interval is already stored. */
  addReading(r: { meter: Address; cell: bigint; interval: bigint; seq: bigint; payload: string }): boolean;
  /** Intervals that have pending readings, oldest first. */
  pendingIntervals(): bigint[];
  readingsOf(interval: bigint, status?: ReadingStatus): RelayedReading[];
  readingsOfMeter(meter: Address, fromInterval: bigint, toInterval: bigint): RelayedReading[];
  setStatus(
    meter: Address,
    interval: bigint,
    status: ReadingStatus,
    reason?: string,
    transaction?: Hex,
  ): void;
  isClaimed(interval: bigint): boolean;
  markClaimed(interval: bigint, transaction: Hex | null): void;
  /** Intervals with settled readings that are not claimed yet. */
  unclaimedIntervals(): bigint[];
  addChannel(c: ChannelRecord): void;
  channelsOfMeter(meter: Address): ChannelRecord[];
  /** The last block whose ChannelOpened events were read. */
  channelsScannedTo(): bigint | undefined;
  setChannelsScannedTo(block: bigint): void;
  countByStatus(): Record<string, number>;
  close(): void;
}

interface Row {
  meter: string;
  cell: string;
  interval: string;
  seq: string;
  payload: string;
  status: ReadingStatus;
  reason: string | null;
  tx: string | null;
}

/** Opens (and creates) the relayer's store at `path` (`:memory:` for a throwaway one). */
export function openRelayerStore(path: string): RelayerStore {
  if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.exec(`
    CREATE TABLE IF NOT EXISTS readings (
      meter TEXT NOT NULL,
      cell TEXT NOT NULL,
      interval INTEGER NOT NULL,
      seq TEXT NOT NULL,
      payload TEXT NOT NULL,
      status TEXT NOT NULL DEFAULT 'pending',
      reason TEXT,
      tx TEXT,
      PRIMARY KEY (meter, interval)
    );
    CREATE INDEX IF NOT EXISTS readings_status ON readings (status, interval);
    CREATE TABLE IF NOT EXISTS claims (interval INTEGER PRIMARY KEY, tx TEXT);
    CREATE TABLE IF NOT EXISTS channels (
      channel TEXT PRIMARY KEY,
      seller_meter TEXT NOT NULL,
      first_interval INTEGER NOT NULL,
      last_interval INTEGER NOT NULL
    );
    CREATE INDEX IF NOT EXISTS channels_meter ON channels (seller_meter);
    CREATE TABLE IF NOT EXISTS progress (name TEXT PRIMARY KEY, value TEXT NOT NULL);
  `);
  const toReading = (row: Row): RelayedReading => ({
    meter: row.meter as Address,
    cell: BigInt(row.cell),
    interval: BigInt(row.interval),
    seq: BigInt(row.seq),
    payload: row.payload,
    status: row.status,
    reason: row.reason,
    transaction: row.tx as Hex | null,
  });
  const insert = db.prepare(
    'INSERT OR IGNORE INTO readings (meter, cell, interval, seq, payload) VALUES (?, ?, ?, ?, ?)',
  );
  const pending = db.prepare<[], { interval: number | bigint }>(
    "SELECT DISTINCT interval FROM readings WHERE status = 'pending' ORDER BY interval",
  );
  pending.safeIntegers(true);
  const ofInterval = db.prepare<[string], Row>(
    'SELECT * FROM readings WHERE interval = ? ORDER BY cell, meter',
  );
  const ofIntervalStatus = db.prepare<[string, string], Row>(
    'SELECT * FROM readings WHERE interval = ? AND status = ? ORDER BY cell, meter',
  );
  const ofMeter = db.prepare<[string, string, string], Row>(
    'SELECT * FROM readings WHERE meter = ? AND interval BETWEEN ? AND ? ORDER BY interval',
  );
  const update = db.prepare(
    'UPDATE readings SET status = ?, reason = ?, tx = ? WHERE meter = ? AND interval = ?',
  );
  const claimed = db.prepare<[string], { interval: number }>(
    'SELECT interval FROM claims WHERE interval = ?',
  );
  const claim = db.prepare('INSERT OR REPLACE INTO claims (interval, tx) VALUES (?, ?)');
  const unclaimed = db.prepare<[], { interval: number | bigint }>(
    `SELECT DISTINCT r.interval FROM readings r LEFT JOIN claims c ON c.interval = r.interval
     WHERE r.status IN ('settled', 'already-settled') AND c.interval IS NULL ORDER BY r.interval`,
  );
  unclaimed.safeIntegers(true);
  const addChannel = db.prepare(
    'INSERT OR IGNORE INTO channels (channel, seller_meter, first_interval, last_interval) VALUES (?, ?, ?, ?)',
  );
  const channelsOf = db.prepare<
    [string],
    { channel: string; seller_meter: string; first_interval: number | bigint; last_interval: number | bigint }
  >('SELECT * FROM channels WHERE seller_meter = ?');
  channelsOf.safeIntegers(true);
  const getProgress = db.prepare<[string], { value: string }>('SELECT value FROM progress WHERE name = ?');
  const setProgress = db.prepare('INSERT OR REPLACE INTO progress (name, value) VALUES (?, ?)');
  const counts = db.prepare<[], { status: string; n: number }>(
    'SELECT status, count(*) AS n FROM readings GROUP BY status',
  );
  const key = (a: Address) => a.toLowerCase();

  return {
    addReading: (r) =>
      insert.run(key(r.meter), r.cell.toString(), r.interval.toString(), r.seq.toString(), r.payload)
        .changes > 0,
    pendingIntervals: () => pending.all().map((row) => BigInt(row.interval)),
    readingsOf: (interval, status) =>
      (status ? ofIntervalStatus.all(interval.toString(), status) : ofInterval.all(interval.toString())).map(
        toReading,
      ),
    readingsOfMeter: (meter, from, to) =>
      ofMeter.all(key(meter), from.toString(), to.toString()).map(toReading),
    setStatus(meter, interval, status, reason, transaction) {
      update.run(status, reason ?? null, transaction ?? null, key(meter), interval.toString());
    },
    isClaimed: (interval) => claimed.get(interval.toString()) !== undefined,
    markClaimed(interval, transaction) {
      claim.run(interval.toString(), transaction);
    },
    unclaimedIntervals: () => unclaimed.all().map((row) => BigInt(row.interval)),
    addChannel(c) {
      addChannel.run(c.channel, key(c.sellerMeter), c.firstInterval.toString(), c.lastInterval.toString());
    },
    channelsOfMeter: (meter) =>
      channelsOf.all(key(meter)).map((row) => ({
        channel: row.channel as Hex,
        sellerMeter: row.seller_meter as Address,
        firstInterval: BigInt(row.first_interval),
        lastInterval: BigInt(row.last_interval),
      })),
    channelsScannedTo() {
      const row = getProgress.get('channelsScannedTo');
      return row ? BigInt(row.value) : undefined;
    },
    setChannelsScannedTo(block) {
      setProgress.run('channelsScannedTo', block.toString());
    },
    countByStatus: () => Object.fromEntries(counts.all().map((row) => [row.status, row.n])),
    close: () => db.close(),
  };
}
