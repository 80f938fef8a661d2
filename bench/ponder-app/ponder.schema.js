// The tables gridcell's indexer derives from the registry and the pool, in Ponder's terms.
import { onchainTable, primaryKey } from 'ponder';

export const cells = onchainTable('cells', (t) => ({
  id: t.bigint().primaryKey(),
  owner: t.hex().notNull(),
  cellType: t.integer().notNull(),
  maxImportW: t.integer().notNull(),
  maxExportW: t.integer().notNull(),
  agent: t.hex(),
}));

export const orders = onchainTable(
  'orders',
  (t) => ({
    interval: t.bigint().notNull(),
    cellId: t.bigint().notNull(),
    nonce: t.integer().notNull(),
    side: t.integer().notNull(),
    energyWh: t.bigint().notNull(),
    limitPrice: t.bigint().notNull(),
    expiry: t.bigint().notNull(),
    status: t.text().notNull(),
    blockNumber: t.bigint().notNull(),
    txHash: t.hex().notNull(),
  }),
  (table) => ({ pk: primaryKey({ columns: [table.interval, table.cellId, table.nonce] }) }),
);

export const intervals = onchainTable('intervals', (t) => ({
  interval: t.bigint().primaryKey(),
  status: t.text().notNull(),
  ordersSubmitted: t.integer().notNull(),
  ordersCancelled: t.integer().notNull(),
  price: t.bigint(),
  volumeWh: t.bigint(),
}));

export const schedules = onchainTable(
  'schedules',
  (t) => ({
    interval: t.bigint().notNull(),
    cellId: t.bigint().notNull(),
    side: t.integer().notNull(),
    energyWh: t.bigint().notNull(),
  }),
  (table) => ({ pk: primaryKey({ columns: [table.interval, table.cellId] }) }),
);

export const settlements = onchainTable(
  'settlements',
  (t) => ({
    interval: t.bigint().notNull(),
    cellId: t.bigint().notNull(),
    side: t.integer().notNull(),
    meteredWh: t.bigint().notNull(),
    amount: t.bigint().notNull(),
    refund: t.bigint().notNull(),
  }),
  (table) => ({ pk: primaryKey({ columns: [table.interval, table.cellId] }) }),
);
