/**
 * The indexer's one drizzle schema. Written with drizzle's SQLite column builders, it is the
 * single source of both databases: `createTablesSql` renders it for SQLite and for
 * PostgreSQL (INTEGER becomes BIGINT there), so the two hold the same tables and columns.
 *
 * Conventions (docs/indexer.md): snake_case names; integers that fit 64 bits (block numbers,
 * intervals, Wh, cell ids, seq) are INTEGER; token amounts and prices (uint96/uint256) are
 * decimal TEXT, exact in both databases; addresses are checksummed TEXT; hashes 0x TEXT.
 */
import { index, integer, primaryKey, sqliteTable, text } from 'drizzle-orm/sqlite-core';

/**
 * The version of this schema the database was made with: one row (id 1). Raise
 * {@link SCHEMA_VERSION} with every change to a table; a database of another version is
 * refused on opening (indexer/database), since its tables do not have the columns this code
 * writes.
 */
export const schemaInfo = sqliteTable('schema_info', {
  id: integer('id').primaryKey(),
  version: integer('version').notNull(),
});

/**
 * 1: the tables before versioning (no `schema_info`); 2: `wallets.locked` and `reorgs`.
 */
export const SCHEMA_VERSION = 2;

/** Where indexing stands: one row (id 1). */
export const checkpoint = sqliteTable('checkpoint', {
  id: integer('id').primaryKey(),
  chainId: integer('chain_id').notNull(),
  blockNumber: integer('block_number').notNull(),
  blockHash: text('block_hash').notNull(),
});

/** Headers of the blocks that may still be reorganised (above head - finality depth). */
export const blocks = sqliteTable('blocks', {
  number: integer('number').primaryKey(),
  hash: text('hash').notNull(),
  parentHash: text('parent_hash').notNull(),
});

/** Every log of the gridcell contracts, decoded; `args` is JSON with integers as strings. */
export const events = sqliteTable(
  'events',
  {
    blockNumber: integer('block_number').notNull(),
    logIndex: integer('log_index').notNull(),
    blockHash: text('block_hash').notNull(),
    txHash: text('tx_hash').notNull(),
    contract: text('contract').notNull(),
    address: text('address').notNull(),
    eventName: text('event_name').notNull(),
    args: text('args').notNull(),
  },
  (t) => [primaryKey({ columns: [t.blockNumber, t.logIndex] }), index('events_name').on(t.eventName)],
);

/**
 * Every reorganisation the indexer rolled back: the block it forked at (kept) and the highest
 * block it dropped. The GraphQL feed reads it to tell subscribers which events they received
 * are gone; kept for good (a row per reorg).
 */
export const reorgs = sqliteTable('reorgs', {
  id: integer('id').primaryKey({ autoIncrement: true }),
  forkBlock: integer('fork_block').notNull(),
  droppedThroughBlock: integer('dropped_through_block').notNull(),
});

/**
 * Before-images of derived rows changed in blocks that may be reorganised; a rollback
 * restores them newest first. Pruned once the block is final.
 */
export const undoLog = sqliteTable(
  'undo_log',
  {
    id: integer('id').primaryKey({ autoIncrement: true }),
    blockNumber: integer('block_number').notNull(),
    tableName: text('table_name').notNull(),
    rowKey: text('row_key').notNull(),
    before: text('before'),
  },
  (t) => [index('undo_log_block').on(t.blockNumber)],
);

export const cells = sqliteTable(
  'cells',
  {
    id: integer('id').primaryKey(),
    owner: text('owner').notNull(),
    cellType: integer('cell_type').notNull(),
    parentId: integer('parent_id').notNull(),
    maxImportW: integer('max_import_w').notNull(),
    maxExportW: integer('max_export_w').notNull(),
    agent: text('agent'),
    status: text('status').notNull(),
    connectedBlock: integer('connected_block').notNull(),
    updatedBlock: integer('updated_block').notNull(),
  },
  (t) => [index('cells_owner').on(t.owner)],
);

export const meters = sqliteTable(
  'meters',
  {
    meter: text('meter').primaryKey(),
    cellId: integer('cell_id').notNull(),
    addedBlock: integer('added_block').notNull(),
  },
  (t) => [index('meters_cell').on(t.cellId)],
);

export const subscriptions = sqliteTable(
  'subscriptions',
  {
    cellId: integer('cell_id').notNull(),
    service: text('service').notNull(),
    subscribedBlock: integer('subscribed_block').notNull(),
  },
  (t) => [primaryKey({ columns: [t.cellId, t.service] })],
);

/**
 * Money flows of a cell's wallet as its events tell them: deposits, withdrawals, the agent's
 * cap, pool payments and receipts, debt outstanding. (Locking escrow emits no wallet event.)
 */
export const wallets = sqliteTable('wallets', {
  cellId: integer('cell_id').primaryKey(),
  deposited: text('deposited').notNull(),
  withdrawn: text('withdrawn').notNull(),
  dailyCap: text('daily_cap').notNull(),
  poolPaid: text('pool_paid').notNull(),
  poolReceived: text('pool_received').notNull(),
  /** Escrow of the cell's buy orders in the pool not settled yet (the wallet's locked part). */
  locked: text('locked').notNull(),
  debt: text('debt').notNull(),
  updatedBlock: integer('updated_block').notNull(),
});

export const orders = sqliteTable(
  'orders',
  {
    interval: integer('interval').notNull(),
    cellId: integer('cell_id').notNull(),
    nonce: integer('nonce').notNull(),
    side: integer('side').notNull(),
    energyWh: integer('energy_wh').notNull(),
    limitPrice: text('limit_price').notNull(),
    expiry: integer('expiry').notNull(),
    status: text('status').notNull(),
    blockNumber: integer('block_number').notNull(),
    txHash: text('tx_hash').notNull(),
  },
  (t) => [primaryKey({ columns: [t.interval, t.cellId, t.nonce] }), index('orders_cell').on(t.cellId)],
);

export const intervals = sqliteTable('intervals', {
  interval: integer('interval').primaryKey(),
  status: text('status').notNull(),
  ordersSubmitted: integer('orders_submitted').notNull(),
  ordersCancelled: integer('orders_cancelled').notNull(),
  price: text('price'),
  volumeWh: integer('volume_wh'),
  orderCount: integer('order_count'),
  scheduledCells: integer('scheduled_cells'),
  positionsSettled: integer('positions_settled').notNull(),
  clearedBlock: integer('cleared_block'),
  updatedBlock: integer('updated_block').notNull(),
});

export const schedules = sqliteTable(
  'schedules',
  {
    interval: integer('interval').notNull(),
    cellId: integer('cell_id').notNull(),
    side: integer('side').notNull(),
    energyWh: integer('energy_wh').notNull(),
    blockNumber: integer('block_number').notNull(),
  },
  (t) => [primaryKey({ columns: [t.interval, t.cellId] }), index('schedules_cell').on(t.cellId)],
);

export const readings = sqliteTable(
  'readings',
  {
    interval: integer('interval').notNull(),
    cellId: integer('cell_id').notNull(),
    meter: text('meter').notNull(),
    seq: integer('seq').notNull(),
    importWh: integer('import_wh').notNull(),
    exportWh: integer('export_wh').notNull(),
    deliveredWh: integer('delivered_wh').notNull(),
    blockNumber: integer('block_number').notNull(),
    txHash: text('tx_hash').notNull(),
  },
  (t) => [primaryKey({ columns: [t.interval, t.cellId, t.meter] }), index('readings_cell').on(t.cellId)],
);

export const settlements = sqliteTable(
  'settlements',
  {
    interval: integer('interval').notNull(),
    cellId: integer('cell_id').notNull(),
    side: integer('side').notNull(),
    meteredWh: integer('metered_wh').notNull(),
    amount: text('amount').notNull(),
    refund: text('refund').notNull(),
    blockNumber: integer('block_number').notNull(),
    logIndex: integer('log_index').notNull(),
    txHash: text('tx_hash').notNull(),
  },
  (t) => [primaryKey({ columns: [t.interval, t.cellId] }), index('settlements_cell').on(t.cellId)],
);

export const channels = sqliteTable(
  'channels',
  {
    id: text('id').primaryKey(),
    buyerCell: integer('buyer_cell').notNull(),
    sellerCell: integer('seller_cell').notNull(),
    sellerMeter: text('seller_meter').notNull(),
    pricePerKWh: text('price_per_kwh').notNull(),
    maxWhPerInterval: integer('max_wh_per_interval').notNull(),
    firstInterval: integer('first_interval').notNull(),
    lastInterval: integer('last_interval').notNull(),
    collateral: text('collateral').notNull(),
    status: text('status').notNull(),
    voucherSeq: integer('voucher_seq').notNull(),
    deliveredWh: integer('delivered_wh').notNull(),
    owedAmount: text('owed_amount').notNull(),
    paidAmount: text('paid_amount').notNull(),
    closingDeadline: integer('closing_deadline'),
    endInterval: integer('end_interval'),
    refunded: text('refunded'),
    debt: text('debt'),
    debtId: integer('debt_id'),
    openedBlock: integer('opened_block').notNull(),
    updatedBlock: integer('updated_block').notNull(),
  },
  (t) => [index('channels_buyer').on(t.buyerCell), index('channels_seller').on(t.sellerCell)],
);

/** Vouchers the channels accepted (redeemed or presented in a close). */
export const vouchers = sqliteTable(
  'vouchers',
  {
    channelId: text('channel_id').notNull(),
    seq: integer('seq').notNull(),
    cumulativeWh: integer('cumulative_wh').notNull(),
    cumulativeAmount: text('cumulative_amount').notNull(),
    paidNow: text('paid_now').notNull(),
    blockNumber: integer('block_number').notNull(),
    txHash: text('tx_hash').notNull(),
  },
  (t) => [primaryKey({ columns: [t.channelId, t.seq] })],
);

/** Debts recorded in the wallets' ledger (a DebtRecorded with debt id 0 left none). */
export const debts = sqliteTable(
  'debts',
  {
    id: integer('id').primaryKey(),
    debtor: integer('debtor').notNull(),
    creditor: integer('creditor').notNull(),
    amount: text('amount').notNull(),
    paidAtOnce: text('paid_at_once').notNull(),
    collected: text('collected').notNull(),
    blockNumber: integer('block_number').notNull(),
  },
  (t) => [index('debts_debtor').on(t.debtor), index('debts_creditor').on(t.creditor)],
);

/** Every table, by name. */
export const tables = {
  schema_info: schemaInfo,
  checkpoint,
  blocks,
  events,
  reorgs,
  undo_log: undoLog,
  cells,
  meters,
  subscriptions,
  wallets,
  orders,
  intervals,
  schedules,
  readings,
  settlements,
  channels,
  vouchers,
  debts,
} as const;

/** The derived tables: rebuilt by replaying events, rolled back through the undo log. */
export const derivedTables = [
  'cells',
  'meters',
  'subscriptions',
  'wallets',
  'orders',
  'intervals',
  'schedules',
  'readings',
  'settlements',
  'channels',
  'vouchers',
  'debts',
] as const;
export type DerivedTable = (typeof derivedTables)[number];
