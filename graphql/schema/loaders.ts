import DataLoader from 'dataloader';
import type { Database, SqlValue } from '../../indexer/database/index.js';
import type { DerivedTable } from '../../indexer/schema/tables.js';
import { shapeOf, toObject } from './listRows.js';

type Obj = Record<string, SqlValue>;

/** Rows of `table` whose `column` is any of the keys: one query per batch of keys. */
function groupLoader(db: Database, table: DerivedTable, column: string, orderBy: string) {
  return new DataLoader<SqlValue, Obj[], string>(
    async (keys) => {
      const groups = new Map<string, Obj[]>();
      const unique = [...new Map(keys.map((k) => [String(k), k])).values()];
      for (let i = 0; i < unique.length; i += 500) {
        const chunk = unique.slice(i, i + 500);
        const rows = await db.all(
          `SELECT * FROM "${shapeOf(table).name}" WHERE "${column}" IN (${chunk.map(() => '?').join(', ')}) ORDER BY ${orderBy}`,
          chunk,
        );
        for (const row of rows) {
          const key = String(row[column]);
          let group = groups.get(key);
          if (!group) {
            group = [];
            groups.set(key, group);
          }
          group.push(toObject(table, row));
        }
      }
      return keys.map((k) => groups.get(String(k)) ?? []);
    },
    { cacheKeyFn: (k) => String(k), maxBatchSize: 500 },
  );
}

function oneLoader(db: Database, table: DerivedTable, column: string) {
  const group = groupLoader(db, table, column, `"${column}"`);
  return new DataLoader<SqlValue, Obj | null, string>(
    async (keys) => (await group.loadMany(keys)).map((g) => (Array.isArray(g) ? (g[0] ?? null) : null)),
    { cacheKeyFn: (k) => String(k), batch: false },
  );
}

/** The batched loaders of one request: every relation is one query per level, not per row. */
export function createLoaders(db: Database) {
  return {
    cell: oneLoader(db, 'cells', 'id'),
    wallet: oneLoader(db, 'wallets', 'cell_id'),
    meters: groupLoader(db, 'meters', 'cell_id', '"meter"'),
    schedules: groupLoader(db, 'schedules', 'interval', '"cell_id"'),
    settlements: groupLoader(db, 'settlements', 'interval', '"cell_id"'),
    vouchers: groupLoader(db, 'vouchers', 'channel_id', '"seq"'),
  };
}
export type Loaders = ReturnType<typeof createLoaders>;
