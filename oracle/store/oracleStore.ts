/**
 * The oracle's local store (SQLite through better-sqlite3): every signed reading is written
 * here, in one transaction with the meter's counter state, before it is published. A reading
 * is keyed by (meter, interval): producing it twice has no effect, and whatever is not yet
 * acknowledged by the broker is sent again after an outage or a restart.
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import type { Address } from 'viem';
import type { CounterState } from '../counters/meterCounter.js';

/** The counters at the start of the interval being measured. */
export interface Boundary {
  interval: bigint;
  /** Unix seconds of the sample taken as the boundary. */
  at: bigint;
  importCumWh: bigint;
  exportCumWh: bigint;
}

export interface MeterRecord {
  meter: Address;
  counter: CounterState;
  boundary: Boundary | undefined;
  /** The seq the next reading of this meter gets. */
  nextSeq: bigint;
}

export interface StoredReading {
  meter: Address;
  interval: bigint;
  seq: bigint;
  topic: string;
  /** The MQTT payload, exactly as published. */
  payload: string;
  published: boolean;
}

/** One meter's new state after a sample, with the reading it completed, if any. */
export interface MeterUpdate {
  meter: Address;
  counter: CounterState;
  boundary: Boundary | undefined;
  /** A reading to store; the meter's next seq moves past it only if it is new. */
  reading?: { interval: bigint; seq: bigint; topic: string; payload: string };
}

export interface OracleStore {
  meter(meter: Address): MeterRecord | undefined;
  /**
   * Saves a sampling round in one transaction (one disk sync however many meters): each
   * meter's counter state, and the readings the round completed.
   * @returns For each update, whether its reading was new (false: a reading of that meter
   * and interval was already stored, and nothing about it changed).
   */
  commit(updates: MeterUpdate[]): boolean[];
  /** Readings not yet acknowledged by the broker, oldest first. */
  unpublished(limit?: number): StoredReading[];
  markPublished(meter: Address, interval: bigint): void;
  reading(meter: Address, interval: bigint): StoredReading | undefined;
  count(): { readings: number; unpublished: number };
  close(): void;
}

interface Row {
  meter: string;
  interval: string;
  seq: string;
  topic: string;
  payload: string;
  published: number;
}

const json = (value: unknown) => JSON.stringify(value, (_k, v) => (typeof v === 'bigint' ? `${v}n` : v));
const parse = <T>(text: string): T =>
  JSON.parse(text, (_k, v) => (typeof v === 'string' && /^-?\d+n$/.test(v) ? BigInt(v.slice(0, -1)) : v));

/**
 * Opens (and creates) the store at `path`; `:memory:` for a throwaway one.
 * @example const store = openOracleStore('.gridcell/oracle.sqlite');
 */
export function openOracleStore(path: string): OracleStore {
  if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  // A reading must survive a power cut once putReading returns: FULL syncs the WAL on commit.
  db.pragma('synchronous = FULL');
  db.exec(`
    CREATE TABLE IF NOT EXISTS meters (
      meter TEXT PRIMARY KEY,
      counter TEXT NOT NULL,
      boundary TEXT,
      next_seq TEXT NOT NULL
    );
    CREATE TABLE IF NOT EXISTS readings (
      meter TEXT NOT NULL,
      interval TEXT NOT NULL,
      seq TEXT NOT NULL,
      topic TEXT NOT NULL,
      payload TEXT NOT NULL,
      published INTEGER NOT NULL DEFAULT 0,
      created INTEGER NOT NULL,
      PRIMARY KEY (meter, interval)
    );
    CREATE INDEX IF NOT EXISTS readings_unpublished ON readings (published, created);
  `);
  const getMeter = db.prepare<[string], { counter: string; boundary: string | null; next_seq: string }>(
    'SELECT counter, boundary, next_seq FROM meters WHERE meter = ?',
  );
  const upsertMeter = db.prepare<[string, string, string | null, string]>(
    `INSERT INTO meters (meter, counter, boundary, next_seq) VALUES (?, ?, ?, ?)
     ON CONFLICT (meter) DO UPDATE SET counter = excluded.counter, boundary = excluded.boundary,
       next_seq = excluded.next_seq`,
  );
  const insertReading = db.prepare<[string, string, string, string, string, number]>(
    'INSERT OR IGNORE INTO readings (meter, interval, seq, topic, payload, created) VALUES (?, ?, ?, ?, ?, ?)',
  );
  const selectUnpublished = db.prepare<[number], Row>(
    'SELECT * FROM readings WHERE published = 0 ORDER BY created, rowid LIMIT ?',
  );
  const setPublished = db.prepare<[string, string]>(
    'UPDATE readings SET published = 1 WHERE meter = ? AND interval = ?',
  );
  const selectReading = db.prepare<[string, string], Row>(
    'SELECT * FROM readings WHERE meter = ? AND interval = ?',
  );
  const counts = db.prepare<[], { readings: number; unpublished: number }>(
    'SELECT count(*) AS readings, coalesce(sum(published = 0), 0) AS unpublished FROM readings',
  );
  let created = Date.now();

  const key = (meter: Address) => meter.toLowerCase();
  const toStored = (row: Row) => ({
    meter: row.meter as Address,
    interval: BigInt(row.interval),
    seq: BigInt(row.seq),
    topic: row.topic,
    payload: row.payload,
    published: row.published === 1,
  });

  function meter(m: Address): MeterRecord | undefined {
    const row = getMeter.get(key(m));
    if (!row) return undefined;
    return {
      meter: m,
      counter: parse<CounterState>(row.counter),
      boundary: row.boundary ? parse<Boundary>(row.boundary) : undefined,
      nextSeq: BigInt(row.next_seq),
    };
  }

  const commit = db.transaction((updates: MeterUpdate[]): boolean[] =>
    updates.map((u) => {
      let nextSeq = meter(u.meter)?.nextSeq ?? 1n;
      let inserted = false;
      if (u.reading) {
        // Strictly increasing creation order, even within one millisecond.
        created = Math.max(created + 1, Date.now());
        inserted =
          insertReading.run(
            key(u.meter),
            u.reading.interval.toString(),
            u.reading.seq.toString(),
            u.reading.topic,
            u.reading.payload,
            created,
          ).changes > 0;
        if (inserted) nextSeq = u.reading.seq + 1n;
      }
      upsertMeter.run(
        key(u.meter),
        json(u.counter),
        u.boundary ? json(u.boundary) : null,
        nextSeq.toString(),
      );
      return inserted;
    }),
  );

  return {
    meter,
    commit: (updates) => commit(updates),
    unpublished: (limit = 1000) => selectUnpublished.all(limit).map(toStored),
    markPublished: (m, interval) => {
      setPublished.run(key(m), interval.toString());
    },
    reading(m, interval) {
      const row = selectReading.get(key(m), interval.toString());
      return row ? toStored(row) : undefined;
    },
    count: () => counts.get() ?? { readings: 0, unpublished: 0 },
    close: () => db.close(),
  };
}
