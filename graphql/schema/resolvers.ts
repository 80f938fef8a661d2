import { GraphQLError, GraphQLScalarType, Kind } from 'graphql/index.js';
import type { Database, SqlValue } from '../../indexer/database/index.js';
import { type EventFeed, type FeedEvent, REORG_EVENT } from '../feed/index.js';
import { type ListArgs, type ListSpec, listRows, shapeOf, toObject } from './listRows.js';
import { createLoaders, type Loaders } from './loaders.js';

type Obj = Record<string, SqlValue>;

/** What every resolver gets. */
export interface GraphqlContext {
  db: Database;
  loaders: Loaders;
}

/** The indexing state served as `indexerStatus` and on /ready. */
export interface ServedStatus {
  indexedBlock: number | null;
  headBlock: number | null;
  finalizedBlock: number | null;
  lagBlocks: number | null;
  ready: boolean;
}

const eq = (column: string) => ({ column, op: '=' as const });
const gte = (column: string) => ({ column, op: '>=' as const });
const lte = (column: string) => ({ column, op: '<=' as const });
const intervalFilters = {
  interval: eq('interval'),
  intervalGte: gte('interval'),
  intervalLte: lte('interval'),
};

/** Every paginated list: its table, orderings and filters. */
export const lists: Record<string, ListSpec> = {
  cells: {
    table: 'cells',
    orderFields: { ID: 'id', CONNECTED_BLOCK: 'connected_block', UPDATED_BLOCK: 'updated_block' },
    defaultOrder: 'ID',
    filters: {
      owner: eq('owner'),
      agent: eq('agent'),
      cellType: eq('cell_type'),
      status: eq('status'),
      parentId: eq('parent_id'),
    },
  },
  wallets: {
    table: 'wallets',
    orderFields: { CELL_ID: 'cell_id', UPDATED_BLOCK: 'updated_block' },
    defaultOrder: 'CELL_ID',
    filters: { cellId: eq('cell_id') },
  },
  orders: {
    table: 'orders',
    orderFields: { INTERVAL: 'interval', BLOCK_NUMBER: 'block_number' },
    defaultOrder: 'INTERVAL',
    filters: { ...intervalFilters, cellId: eq('cell_id'), side: eq('side'), status: eq('status') },
  },
  intervals: {
    table: 'intervals',
    orderFields: { INTERVAL: 'interval', UPDATED_BLOCK: 'updated_block' },
    defaultOrder: 'INTERVAL',
    filters: { status: eq('status'), intervalGte: gte('interval'), intervalLte: lte('interval') },
  },
  schedules: {
    table: 'schedules',
    orderFields: { INTERVAL: 'interval', BLOCK_NUMBER: 'block_number' },
    defaultOrder: 'INTERVAL',
    filters: { ...intervalFilters, cellId: eq('cell_id'), side: eq('side') },
  },
  readings: {
    table: 'readings',
    orderFields: { INTERVAL: 'interval', BLOCK_NUMBER: 'block_number' },
    defaultOrder: 'INTERVAL',
    filters: { ...intervalFilters, cellId: eq('cell_id'), meter: eq('meter') },
  },
  settlements: {
    table: 'settlements',
    orderFields: { INTERVAL: 'interval', BLOCK_NUMBER: 'block_number' },
    defaultOrder: 'INTERVAL',
    filters: { ...intervalFilters, cellId: eq('cell_id'), side: eq('side') },
  },
  channels: {
    table: 'channels',
    orderFields: { OPENED_BLOCK: 'opened_block', UPDATED_BLOCK: 'updated_block' },
    defaultOrder: 'OPENED_BLOCK',
    filters: { buyerCell: eq('buyer_cell'), sellerCell: eq('seller_cell'), status: eq('status') },
  },
  vouchers: {
    table: 'vouchers',
    orderFields: { SEQ: 'seq', BLOCK_NUMBER: 'block_number' },
    defaultOrder: 'SEQ',
    filters: { channelId: eq('channel_id') },
  },
  debts: {
    table: 'debts',
    orderFields: { ID: 'id', BLOCK_NUMBER: 'block_number' },
    defaultOrder: 'ID',
    filters: { debtor: eq('debtor'), creditor: eq('creditor') },
  },
};

/** Unsigned integers of any size as decimal strings. */
const BigIntScalar = new GraphQLScalarType({
  name: 'BigInt',
  serialize: (value) => {
    if (typeof value === 'bigint' || typeof value === 'number' || typeof value === 'string')
      return String(value);
    throw new GraphQLError(`BigInt cannot represent ${typeof value}`);
  },
  parseValue: (value) => {
    if (typeof value === 'string' && /^\d+$/.test(value)) return value;
    throw new GraphQLError(`expected a decimal string of digits, received ${JSON.stringify(value)}`);
  },
  parseLiteral: (ast) => {
    if ((ast.kind === Kind.STRING || ast.kind === Kind.INT) && /^\d+$/.test(ast.value)) return ast.value;
    throw new GraphQLError('expected a decimal string of digits');
  },
});

async function byKey(db: Database, table: ListSpec['table'], key: SqlValue[]): Promise<Obj | null> {
  const shape = shapeOf(table);
  const [row] = await db.all(
    `SELECT * FROM "${shape.name}" WHERE ${shape.primaryKey.map((c) => `"${c}" = ?`).join(' AND ')}`,
    key,
  );
  return row ? toObject(table, row) : null;
}

/** A subscription event's payload, resolved with loaders of its own (see `Subscription`). */
function eachEventAfresh(payload: Obj, _: unknown, ctx: GraphqlContext): Obj {
  ctx.loaders = createLoaders(ctx.db);
  return payload;
}

/** An async iterator over the feed's events of one name, mapped to GraphQL objects. */
function subscribeTo(
  feed: EventFeed,
  db: Database,
  eventName: string,
  load: (db: Database, event: FeedEvent) => Promise<Obj | null>,
): AsyncIterableIterator<Obj> {
  // Events are mapped one after another, in order; values wait in `ready` for next().
  const ready: Obj[] = [];
  let waiting: ((r: IteratorResult<Obj>) => void) | undefined;
  let done = false;
  let chain = Promise.resolve();
  const unsubscribe = feed.subscribe(eventName, (event) => {
    chain = chain
      .then(async () => {
        const value = await load(db, event);
        if (!value || done) return;
        const resolve = waiting;
        waiting = undefined;
        if (resolve) resolve({ value, done: false });
        else ready.push(value);
      })
      .catch(() => {});
  });
  const finish = async (): Promise<IteratorResult<Obj>> => {
    done = true;
    unsubscribe();
    waiting?.({ value: undefined, done: true });
    waiting = undefined;
    return { value: undefined, done: true };
  };
  return {
    next() {
      if (done) return Promise.resolve({ value: undefined, done: true });
      const value = ready.shift();
      if (value) return Promise.resolve({ value, done: false });
      return new Promise((resolve) => {
        waiting = resolve;
      });
    },
    return: finish,
    throw: async (error) => {
      await finish();
      throw error;
    },
    [Symbol.asyncIterator]() {
      return this;
    },
  };
}

/** The resolvers; lists paginate with `limits`, subscriptions follow `feed`. */
export function createResolvers(parameters: {
  feed: EventFeed;
  db: Database;
  status: () => Promise<ServedStatus>;
  limits: { defaultPageSize: number; maxPageSize: number };
}) {
  const { feed, limits } = parameters;
  const list = (name: string) => (_: unknown, args: ListArgs, ctx: GraphqlContext) =>
    listRows(ctx.db, lists[name] as ListSpec, args, limits);
  const cellOf = (field: string) => (parent: Obj, _: unknown, ctx: GraphqlContext) =>
    ctx.loaders.cell.load(parent[field] ?? null);
  return {
    BigInt: BigIntScalar,
    Side: { BUY: 0, SELL: 1 },
    Query: {
      cell: (_: unknown, args: { id: number }, ctx: GraphqlContext) => ctx.loaders.cell.load(args.id),
      cells: list('cells'),
      wallet: (_: unknown, args: { cellId: number }, ctx: GraphqlContext) =>
        ctx.loaders.wallet.load(args.cellId),
      wallets: list('wallets'),
      orders: list('orders'),
      interval: (_: unknown, args: { interval: number }, ctx: GraphqlContext) =>
        byKey(ctx.db, 'intervals', [args.interval]),
      intervals: list('intervals'),
      schedules: list('schedules'),
      readings: list('readings'),
      settlements: list('settlements'),
      channel: (_: unknown, args: { id: string }, ctx: GraphqlContext) =>
        byKey(ctx.db, 'channels', [args.id]),
      channels: list('channels'),
      vouchers: list('vouchers'),
      debts: list('debts'),
      indexerStatus: () => parameters.status(),
    },
    Cell: {
      meters: async (parent: Obj, _: unknown, ctx: GraphqlContext) =>
        (await ctx.loaders.meters.load(parent.id ?? null)).map((m) => m.meter),
      wallet: (parent: Obj, _: unknown, ctx: GraphqlContext) => ctx.loaders.wallet.load(parent.id ?? null),
    },
    Wallet: { cell: cellOf('cellId') },
    Order: { cell: cellOf('cellId') },
    Schedule: { cell: cellOf('cellId') },
    Reading: { cell: cellOf('cellId') },
    Settlement: { cell: cellOf('cellId') },
    Interval: {
      schedules: (parent: Obj, _: unknown, ctx: GraphqlContext) =>
        ctx.loaders.schedules.load(parent.interval ?? null),
      settlements: (parent: Obj, _: unknown, ctx: GraphqlContext) =>
        ctx.loaders.settlements.load(parent.interval ?? null),
    },
    Channel: {
      buyer: cellOf('buyerCell'),
      seller: cellOf('sellerCell'),
      vouchers: (parent: Obj, _: unknown, ctx: GraphqlContext) =>
        ctx.loaders.vouchers.load(parent.id ?? null),
    },
    Debt: { debtorCell: cellOf('debtor'), creditorCell: cellOf('creditor') },
    Subscription: {
      // A subscription keeps one context for its whole life: without new loaders per event,
      // relations (a settlement's cell) would come from the loaders' cache of an earlier
      // event, stale once the cell changed or a reorg replaced it.
      intervalCleared: {
        subscribe: () =>
          subscribeTo(feed, parameters.db, 'IntervalCleared', (db, e) =>
            byKey(db, 'intervals', [Number(e.args.interval)]),
          ),
        resolve: eachEventAfresh,
      },
      positionSettled: {
        subscribe: () =>
          subscribeTo(feed, parameters.db, 'PositionSettled', (db, e) =>
            byKey(db, 'settlements', [Number(e.args.interval), Number(e.args.cell)]),
          ),
        resolve: eachEventAfresh,
      },
      chainReorganized: {
        subscribe: () => subscribeTo(feed, parameters.db, REORG_EVENT, async (_, e) => ({ ...e.args })),
        resolve: (payload: Obj) => payload,
      },
    },
  };
}
