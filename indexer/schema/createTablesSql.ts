import { getTableColumns, type Table } from 'drizzle-orm';
import { getTableConfig, type SQLiteTable } from 'drizzle-orm/sqlite-core';
import { tables } from './tables.js';

/** The SQL dialects the indexer writes. */
export type Dialect = 'sqlite' | 'postgres';

/** A table's database name, its columns (TS key → column name) and its primary key. */
export interface TableShape {
  name: string;
  /** TypeScript property → database column. */
  columns: Record<string, string>;
  /** Database columns of the primary key. */
  primaryKey: string[];
}

/** The shape of a table of the schema, from its drizzle definition. */
export function tableShape(table: SQLiteTable): TableShape {
  const config = getTableConfig(table);
  const columns: Record<string, string> = {};
  for (const [key, column] of Object.entries(getTableColumns(table as Table))) columns[key] = column.name;
  const single = config.columns.filter((c) => c.primary).map((c) => c.name);
  const composite = config.primaryKeys[0]?.columns.map((c) => c.name) ?? [];
  return { name: config.name, columns, primaryKey: single.length > 0 ? single : composite };
}

function columnType(sqliteType: string, dialect: Dialect): string {
  const upper = sqliteType.toUpperCase();
  if (dialect === 'sqlite') return upper;
  return upper === 'INTEGER' ? 'BIGINT' : upper;
}

/**
 * CREATE TABLE / CREATE INDEX statements (IF NOT EXISTS) for every table of the schema in
 * `dialect`. The same drizzle schema yields both; only INTEGER is widened to BIGINT for
 * PostgreSQL, whose INTEGER is 32-bit.
 */
export function createTablesSql(dialect: Dialect): string[] {
  const statements: string[] = [];
  for (const table of Object.values(tables) as SQLiteTable[]) {
    const config = getTableConfig(table);
    const pk = tableShape(table).primaryKey;
    const columns = config.columns.map((c) => {
      const parts = [`"${c.name}"`, columnType(c.getSQLType(), dialect)];
      if (c.notNull) parts.push('NOT NULL');
      return parts.join(' ');
    });
    columns.push(`PRIMARY KEY (${pk.map((c) => `"${c}"`).join(', ')})`);
    statements.push(`CREATE TABLE IF NOT EXISTS "${config.name}" (${columns.join(', ')})`);
    for (const idx of config.indexes) {
      const cols = idx.config.columns.map((c) => `"${(c as { name: string }).name}"`).join(', ');
      statements.push(`CREATE INDEX IF NOT EXISTS "${idx.config.name}" ON "${config.name}" (${cols})`);
    }
  }
  return statements;
}
