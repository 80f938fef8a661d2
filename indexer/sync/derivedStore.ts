import type { SQLiteTable } from 'drizzle-orm/sqlite-core';
import type { Database, Row, SqlValue } from '../database/index.js';
import { type TableShape, tableShape } from '../schema/createTablesSql.js';
import { type DerivedTable, derivedTables, tables } from '../schema/tables.js';

/** A derived table's row as the handlers see it (drizzle's select type). */
export type DerivedRow<T extends DerivedTable> = (typeof tables)[T]['$inferSelect'];

/** Derived state of one batch of blocks, read and written through a write-back cache. */
export interface DerivedStore {
  /** The block whose events are being applied (undo entries are recorded against it). */
  setBlock(blockNumber: number): void;
  get<T extends DerivedTable>(table: T, key: readonly SqlValue[]): Promise<DerivedRow<T> | undefined>;
  /** Inserts or replaces a row. */
  put<T extends DerivedTable>(table: T, row: DerivedRow<T>): Promise<void>;
  remove<T extends DerivedTable>(table: T, key: readonly SqlValue[]): Promise<void>;
  /** Writes the changed rows (and their undo entries) to the database. */
  flush(): Promise<void>;
}

const shapes = Object.fromEntries(
  derivedTables.map((t) => [t, tableShape(tables[t] as SQLiteTable)]),
) as Record<DerivedTable, TableShape>;

/** Column names and the TS keys they come from, in one order. */
function columnsOf(shape: TableShape): { keys: string[]; names: string[] } {
  return { keys: Object.keys(shape.columns), names: Object.values(shape.columns) };
}

/** Each derived table's primary key as the row's property names, in key order. */
const keyProperties = Object.fromEntries(
  derivedTables.map((t) => {
    const shape = shapes[t];
    const byName = Object.fromEntries(Object.entries(shape.columns).map(([k, n]) => [n, k]));
    return [t, shape.primaryKey.map((name) => byName[name] as string)];
  }),
) as Record<DerivedTable, string[]>;

function keyOfRow(table: DerivedTable, row: Record<string, unknown>): SqlValue[] {
  return keyProperties[table].map((p) => row[p] as SqlValue);
}

function toTs(shape: TableShape, row: Row): Record<string, SqlValue> {
  const out: Record<string, SqlValue> = {};
  for (const [key, name] of Object.entries(shape.columns)) out[key] = row[name] ?? null;
  return out;
}

const BATCH = 200;

function upsertSql(shape: TableShape, rows: number): string {
  const { names } = columnsOf(shape);
  const tuple = `(${names.map(() => '?').join(', ')})`;
  const updates = names
    .filter((n) => !shape.primaryKey.includes(n))
    .map((n) => `"${n}" = excluded."${n}"`)
    .join(', ');
  const conflict = shape.primaryKey.map((n) => `"${n}"`).join(', ');
  return (
    `INSERT INTO "${shape.name}" (${names.map((n) => `"${n}"`).join(', ')}) VALUES ` +
    `${Array.from({ length: rows }, () => tuple).join(', ')} ` +
    `ON CONFLICT (${conflict}) DO ${updates ? `UPDATE SET ${updates}` : 'NOTHING'}`
  );
}

function whereKey(shape: TableShape): string {
  return shape.primaryKey.map((n) => `"${n}" = ?`).join(' AND ');
}

/**
 * A store over transaction `tx` for one batch. Rows read once stay cached; writes stay in
 * memory until `flush`, so a row changed by a thousand events is written once. For blocks
 * above `undoFrom` (those a reorg may still replace), the row's state before the block's
 * first change goes to the undo log, so a rollback can restore it.
 */
export function createDerivedStore(tx: Database, undoFrom: number): DerivedStore {
  // table → serialised key → row (null: deleted / absent)
  const cache = new Map<DerivedTable, Map<string, Record<string, SqlValue> | null>>();
  const dirty = new Map<DerivedTable, Set<string>>();
  const undo: { block: number; table: DerivedTable; key: string; before: string | null }[] = [];
  const undone = new Set<string>();
  let block = 0;

  const tableCache = (table: DerivedTable) => {
    let c = cache.get(table);
    if (!c) {
      c = new Map();
      cache.set(table, c);
    }
    return c;
  };

  async function load(table: DerivedTable, key: readonly SqlValue[]) {
    const c = tableCache(table);
    const k = JSON.stringify(key);
    if (c.has(k)) return { k, row: c.get(k) ?? null };
    const shape = shapes[table];
    const [found] = await tx.all(`SELECT * FROM "${shape.name}" WHERE ${whereKey(shape)}`, key);
    const row = found ? toTs(shape, found) : null;
    c.set(k, row);
    return { k, row };
  }

  function write(table: DerivedTable, k: string, row: Record<string, SqlValue> | null) {
    const c = tableCache(table);
    if (block > undoFrom) {
      const id = `${block}|${table}|${k}`;
      if (!undone.has(id)) {
        undone.add(id);
        const before = c.get(k) ?? null;
        undo.push({ block, table, key: k, before: before === null ? null : JSON.stringify(before) });
      }
    }
    c.set(k, row);
    let d = dirty.get(table);
    if (!d) {
      d = new Set();
      dirty.set(table, d);
    }
    d.add(k);
  }

  return {
    setBlock(blockNumber) {
      block = blockNumber;
    },
    async get(table, key) {
      const { row } = await load(table, key);
      return (row ?? undefined) as DerivedRow<typeof table> | undefined;
    },
    async put(table, row) {
      const key = keyOfRow(table, row as Record<string, unknown>);
      // Above the undo line a blind write needs the row's before-image: read it first.
      const k = block > undoFrom ? (await load(table, key)).k : JSON.stringify(key);
      write(table, k, { ...(row as Record<string, SqlValue>) });
    },
    async remove(table, key) {
      const k = block > undoFrom ? (await load(table, key)).k : JSON.stringify(key);
      write(table, k, null);
    },
    async flush() {
      for (const [table, keys] of dirty) {
        const shape = shapes[table];
        const { keys: props } = columnsOf(shape);
        const c = tableCache(table);
        const upserts: Record<string, SqlValue>[] = [];
        const deletes: SqlValue[][] = [];
        for (const k of keys) {
          const row = c.get(k);
          if (row) upserts.push(row);
          else deletes.push(JSON.parse(k) as SqlValue[]);
        }
        for (const key of deletes) await tx.run(`DELETE FROM "${shape.name}" WHERE ${whereKey(shape)}`, key);
        for (let i = 0; i < upserts.length; i += BATCH) {
          const chunk = upserts.slice(i, i + BATCH);
          await tx.run(
            upsertSql(shape, chunk.length),
            chunk.flatMap((row) => props.map((p) => row[p] ?? null)),
          );
        }
      }
      dirty.clear();
      for (let i = 0; i < undo.length; i += BATCH) {
        const chunk = undo.slice(i, i + BATCH);
        await tx.run(
          `INSERT INTO "undo_log" ("block_number", "table_name", "row_key", "before") VALUES ${chunk
            .map(() => '(?, ?, ?, ?)')
            .join(', ')}`,
          chunk.flatMap((u) => [u.block, u.table, u.key, u.before]),
        );
      }
      undo.length = 0;
    },
  };
}

/**
 * Restores every derived row changed above `forkBlock` from the undo log, newest change
 * first, and drops those undo entries.
 */
export async function rollbackDerived(tx: Database, forkBlock: number): Promise<number> {
  const entries = await tx.all<{ table_name: string; row_key: string; before: string | null }>(
    'SELECT "table_name", "row_key", "before" FROM "undo_log" WHERE "block_number" > ? ORDER BY "id" DESC',
    [forkBlock],
  );
  for (const entry of entries) {
    const table = entry.table_name as DerivedTable;
    const shape = shapes[table];
    if (!shape) throw new Error(`undo log names an unknown table ${entry.table_name}`);
    const key = JSON.parse(entry.row_key) as SqlValue[];
    await tx.run(`DELETE FROM "${shape.name}" WHERE ${whereKey(shape)}`, key);
    if (entry.before !== null) {
      const row = JSON.parse(entry.before) as Record<string, SqlValue>;
      const { keys } = columnsOf(shape);
      await tx.run(
        upsertSql(shape, 1),
        keys.map((p) => row[p] ?? null),
      );
    }
  }
  await tx.run('DELETE FROM "undo_log" WHERE "block_number" > ?', [forkBlock]);
  return entries.length;
}
