import type { SQLiteTable } from 'drizzle-orm/sqlite-core';
import { GraphQLError } from 'graphql/index.js';
import type { Database, Row, SqlValue } from '../../indexer/database/index.js';
import { type TableShape, tableShape } from '../../indexer/schema/createTablesSql.js';
import { type DerivedTable, tables } from '../../indexer/schema/tables.js';

/** How a filter argument becomes a condition. */
export interface FilterSpec {
  column: string;
  op: '=' | '>=' | '<=';
}

/** A paginated list over one derived table. */
export interface ListSpec {
  table: DerivedTable;
  /** Order enum value → column. */
  orderFields: Record<string, string>;
  defaultOrder: string;
  /** Filter input field → condition. */
  filters: Record<string, FilterSpec>;
}

export interface ListArgs {
  first?: number | null;
  after?: string | null;
  where?: Record<string, unknown> | null;
  orderBy?: { field: string; direction?: 'ASC' | 'DESC' | null } | null;
}

export interface Page<T> {
  edges: { cursor: string; node: T }[];
  nodes: T[];
  pageInfo: { hasNextPage: boolean; endCursor: string | null };
}

const shapes = new Map<DerivedTable, TableShape>();
/** The table's shape (columns and primary key), from the drizzle schema. */
export function shapeOf(table: DerivedTable): TableShape {
  let shape = shapes.get(table);
  if (!shape) {
    shape = tableShape(tables[table] as SQLiteTable);
    shapes.set(table, shape);
  }
  return shape;
}

/** A database row with the schema's property names (camelCase), as GraphQL serves them. */
export function toObject(table: DerivedTable, row: Row): Record<string, SqlValue> {
  const out: Record<string, SqlValue> = {};
  for (const [key, column] of Object.entries(shapeOf(table).columns)) out[key] = row[column] ?? null;
  return out;
}

function encodeCursor(values: SqlValue[]): string {
  return Buffer.from(JSON.stringify(values)).toString('base64url');
}

function decodeCursor(cursor: string, length: number): SqlValue[] {
  try {
    const values = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as unknown;
    if (
      Array.isArray(values) &&
      values.length === length &&
      values.every((v) => typeof v === 'string' || typeof v === 'number')
    ) {
      return values as SqlValue[];
    }
  } catch {
    // fall through to the error below
  }
  throw new GraphQLError(
    `invalid cursor "${cursor.slice(0, 40)}": expected a pageInfo.endCursor of the same list and order`,
    { extensions: { code: 'BAD_USER_INPUT' } },
  );
}

/**
 * One page of `spec.table`: filtered, ordered by the chosen column then the primary key,
 * and continued after a cursor (keyset pagination: no OFFSET, stable under inserts).
 */
export async function listRows(
  db: Database,
  spec: ListSpec,
  args: ListArgs,
  limits: { defaultPageSize: number; maxPageSize: number },
): Promise<Page<Record<string, SqlValue>>> {
  const first = args.first ?? limits.defaultPageSize;
  if (!Number.isInteger(first) || first < 1 || first > limits.maxPageSize) {
    throw new GraphQLError(`first: ${first} is out of range: expected 1 to ${limits.maxPageSize}`, {
      extensions: { code: 'BAD_USER_INPUT' },
    });
  }
  const shape = shapeOf(spec.table);
  const orderColumn = spec.orderFields[args.orderBy?.field ?? spec.defaultOrder];
  if (!orderColumn) throw new GraphQLError(`unknown order field ${args.orderBy?.field}`);
  const direction = args.orderBy?.direction === 'DESC' ? 'DESC' : 'ASC';
  const keyColumns = [orderColumn, ...shape.primaryKey.filter((c) => c !== orderColumn)];

  const conditions: string[] = [];
  const params: SqlValue[] = [];
  for (const [field, value] of Object.entries(args.where ?? {})) {
    if (value === null || value === undefined) continue;
    const filter = spec.filters[field];
    if (!filter) throw new GraphQLError(`unknown filter ${field}`);
    conditions.push(`"${filter.column}" ${filter.op} ?`);
    params.push(value as SqlValue);
  }
  if (args.after) {
    const after = decodeCursor(args.after, keyColumns.length);
    conditions.push(
      `(${keyColumns.map((c) => `"${c}"`).join(', ')}) ${direction === 'ASC' ? '>' : '<'} (${keyColumns
        .map(() => '?')
        .join(', ')})`,
    );
    params.push(...after);
  }
  const sql =
    `SELECT * FROM "${shape.name}"${conditions.length ? ` WHERE ${conditions.join(' AND ')}` : ''} ` +
    `ORDER BY ${keyColumns.map((c) => `"${c}" ${direction}`).join(', ')} LIMIT ${first + 1}`;
  const rows = await db.all(sql, params);
  const hasNextPage = rows.length > first;
  const edges = rows.slice(0, first).map((row) => ({
    cursor: encodeCursor(keyColumns.map((c) => row[c] ?? null)),
    node: toObject(spec.table, row),
  }));
  return {
    edges,
    nodes: edges.map((e) => e.node),
    pageInfo: { hasNextPage, endCursor: edges.at(-1)?.cursor ?? null },
  };
}
