/**
 * The indexer's database: a SQLite file through better-sqlite3 by default, PostgreSQL
 * through pg when a `postgres://` URL is given; the same tables in both (schema/tables.ts).
 * Queries use `?` placeholders in both dialects (rewritten to `$n` for PostgreSQL).
 */
import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import pg from 'pg';
import { BaseError } from '../../chain/errors/index.js';
import { createTablesSql, type Dialect } from '../schema/createTablesSql.js';
import { SCHEMA_VERSION } from '../schema/tables.js';

/** A database value as the indexer writes and reads it. */
export type SqlValue = string | number | null;
export type Row = Record<string, SqlValue>;

export interface Database {
  dialect: Dialect;
  /** Where it is, for logs (a PostgreSQL URL without its password). */
  location: string;
  /** Rows of a query with `?` placeholders. */
  all<T extends Row = Row>(sql: string, params?: readonly SqlValue[]): Promise<T[]>;
  /** Runs a statement with `?` placeholders. */
  run(sql: string, params?: readonly SqlValue[]): Promise<void>;
  /** Runs `work` in one transaction on one connection: all of it is written, or none. */
  transaction<T>(work: (tx: Database) => Promise<T>): Promise<T>;
  /** Statements run so far (tests check batching with it). */
  statementCount(): number;
  close(): Promise<void>;
}

export class DatabaseError extends BaseError {
  override name = 'DatabaseError' as const;
}

export interface OpenDatabaseParameters {
  /** `postgres://…` or `postgresql://…` for PostgreSQL; otherwise a SQLite file path. */
  url: string;
  /** SQLite only: open read-only (a reader beside the indexer's writer). */
  readonly?: boolean;
  /** PostgreSQL only: connections in the pool (default 4). */
  poolSize?: number;
}

/** Whether `url` names a PostgreSQL database rather than a SQLite file. */
export function isPostgresUrl(url: string): boolean {
  return /^postgres(ql)?:\/\//.test(url);
}

/**
 * Opens the database and creates the tables when missing. A database made with another
 * version of the schema is refused with a {@link DatabaseError} that says what to do.
 * @example const db = await openDatabase({ url: '.gridcell/index.sqlite' });
 */
export async function openDatabase(parameters: OpenDatabaseParameters): Promise<Database> {
  const db = isPostgresUrl(parameters.url)
    ? await openPostgres(parameters.url, parameters.poolSize ?? 4)
    : openSqlite(parameters.url, parameters.readonly ?? false);
  try {
    if (!parameters.readonly) {
      for (const statement of createTablesSql(db.dialect)) await db.run(statement);
    }
    await checkSchemaVersion(db, !parameters.readonly);
  } catch (error) {
    await db.close();
    throw error;
  }
  return db;
}

/**
 * The database's schema version must be this code's. A new database gets it written (by a
 * writer); a database indexed before versioning has a checkpoint but no version (1).
 */
async function checkSchemaVersion(db: Database, writer: boolean): Promise<void> {
  const read = async (sql: string) => {
    try {
      return (await db.all<{ v: number }>(sql))[0];
    } catch (error) {
      // A reader of a database made before the table existed; a writer created every table.
      if (writer) throw error;
      return undefined;
    }
  };
  const versionRow = () => read('SELECT "version" AS "v" FROM "schema_info" WHERE "id" = 1');
  let row = await versionRow();
  if (!row && (await read('SELECT 1 AS "v" FROM "checkpoint" LIMIT 1'))) row = { v: 1 };
  if (!row) {
    if (!writer) return;
    // Two writers may open a new database at once: the first row stands, and both read it.
    await db.run('INSERT INTO "schema_info" ("id", "version") VALUES (1, ?) ON CONFLICT ("id") DO NOTHING', [
      SCHEMA_VERSION,
    ]);
    row = await versionRow();
  }
  const version = Number(row?.v);
  if (version !== SCHEMA_VERSION) {
    throw new DatabaseError(
      `the index at ${db.location} has schema version ${version}; this gridcell reads and writes version ${SCHEMA_VERSION}`,
      {
        details:
          version < SCHEMA_VERSION
            ? 'index into a new database (another file, or an empty PostgreSQL database): the index is rebuilt from the chain'
            : 'it was made by a newer gridcell: use that one, or index into a new database',
      },
    );
  }
}

function openSqlite(path: string, readonly: boolean): Database {
  const file = resolve(path);
  let sqlite: BetterSqlite3.Database;
  try {
    if (!readonly) mkdirSync(dirname(file), { recursive: true });
    sqlite = new BetterSqlite3(file, { readonly, fileMustExist: readonly });
    if (!readonly) {
      sqlite.pragma('journal_mode = WAL');
      // WAL + NORMAL: a crash loses at most the last transactions, never corrupts; the
      // checkpoint is written in the same transaction as the data, so both go together.
      sqlite.pragma('synchronous = NORMAL');
    }
    sqlite.pragma('busy_timeout = 5000');
  } catch (cause) {
    throw new DatabaseError(`cannot open the SQLite database ${file}`, {
      ...(readonly ? { details: 'the indexer creates it: run `gridcell indexer` first' } : {}),
      cause,
    });
  }
  const cache = new Map<string, BetterSqlite3.Statement>();
  let count = 0;
  const prepare = (sql: string) => {
    let statement = cache.get(sql);
    if (!statement) {
      try {
        statement = sqlite.prepare(sql);
      } catch (cause) {
        throw new DatabaseError(`cannot prepare SQL (${(cause as Error).message}): ${sql}`, { cause });
      }
      cache.set(sql, statement);
    }
    count++;
    return statement;
  };
  let inTransaction = false;
  const db: Database = {
    dialect: 'sqlite',
    location: file,
    async all<T extends Row>(sql: string, params: readonly SqlValue[] = []) {
      return prepare(sql).all(...params) as T[];
    },
    async run(sql, params = []) {
      const statement = prepare(sql);
      if (statement.reader) statement.all(...params);
      else statement.run(...params);
    },
    async transaction(work) {
      if (inTransaction) throw new DatabaseError('nested transactions are not supported');
      inTransaction = true;
      sqlite.exec('BEGIN IMMEDIATE');
      try {
        const result = await work(db);
        sqlite.exec('COMMIT');
        return result;
      } catch (error) {
        if (sqlite.inTransaction) sqlite.exec('ROLLBACK');
        throw error;
      } finally {
        inTransaction = false;
      }
    },
    statementCount: () => count,
    async close() {
      if (sqlite.open) sqlite.close();
    },
  };
  return db;
}

const placeholderCache = new Map<string, string>();
function toPostgresPlaceholders(sql: string): string {
  let text = placeholderCache.get(sql);
  if (text === undefined) {
    let n = 0;
    text = sql.replace(/\?/g, () => `$${++n}`);
    placeholderCache.set(sql, text);
  }
  return text;
}

/** BIGINT comes back from pg as a string; every integer the indexer stores is below 2^53. */
function parseBigint(value: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n)) {
    throw new DatabaseError(`a BIGINT value ${value} exceeds 2^53 and cannot be read exactly`);
  }
  return n;
}

function redact(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return 'postgres://(unparseable URL)';
  }
}

async function openPostgres(url: string, poolSize: number): Promise<Database> {
  const types = {
    getTypeParser: ((oid: number, format?: string) =>
      oid === 20
        ? parseBigint
        : pg.types.getTypeParser(oid, format as 'text')) as pg.CustomTypesConfig['getTypeParser'],
  };
  const pool = new pg.Pool({ connectionString: url, max: poolSize, types });
  // An idle client that loses its connection must not crash the process.
  pool.on('error', () => {});
  try {
    const client = await pool.connect();
    client.release();
  } catch (cause) {
    await pool.end().catch(() => {});
    throw new DatabaseError(`cannot connect to PostgreSQL at ${redact(url)}`, {
      details: 'is the server running and DATABASE_URL right?',
      cause,
    });
  }
  let count = 0;
  let closing: Promise<void> | undefined;
  const on = (runner: pg.Pool | pg.PoolClient): Pick<Database, 'all' | 'run'> => ({
    async all<T extends Row>(sql: string, params: readonly SqlValue[] = []) {
      count++;
      const result = await runner.query(toPostgresPlaceholders(sql), params as SqlValue[]);
      return result.rows as T[];
    },
    async run(sql, params = []) {
      count++;
      await runner.query(toPostgresPlaceholders(sql), params as SqlValue[]);
    },
  });
  const location = redact(url);
  const db: Database = {
    dialect: 'postgres',
    location,
    ...on(pool),
    async transaction(work) {
      const client = await pool.connect();
      const tx: Database = {
        ...db,
        ...on(client),
        transaction: () => Promise.reject(new DatabaseError('nested transactions are not supported')),
      };
      try {
        await client.query('BEGIN');
        const result = await work(tx);
        await client.query('COMMIT');
        return result;
      } catch (error) {
        await client.query('ROLLBACK').catch(() => {});
        throw error;
      } finally {
        client.release();
      }
    },
    statementCount: () => count,
    // Idempotent, like the SQLite side: several owners may close the same database.
    close() {
      closing ??= pool.end();
      return closing;
    },
  };
  return db;
}
