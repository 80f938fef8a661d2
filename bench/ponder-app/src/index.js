// The same derivations as gridcell's indexer/sync/applyEvent.ts for these events.
import { ponder } from 'ponder:registry';
import { cells, intervals, orders, schedules, settlements } from 'ponder:schema';

ponder.on('CellRegistry:CellConnected', async ({ event, context }) => {
  await context.db.insert(cells).values({
    id: event.args.cellId,
    owner: event.args.owner,
    cellType: event.args.cellType,
    maxImportW: event.args.maxImportW,
    maxExportW: event.args.maxExportW,
  });
});

ponder.on('CellRegistry:AgentConfigured', async ({ event, context }) => {
  await context.db.update(cells, { id: event.args.cellId }).set({ agent: event.args.agent });
});

ponder.on('ClearingPool:OrderSubmitted', async ({ event, context }) => {
  await context.db.insert(orders).values({
    interval: event.args.interval,
    cellId: event.args.cell,
    nonce: event.args.nonce,
    side: event.args.side,
    energyWh: event.args.energyWh,
    limitPrice: event.args.limitPrice,
    expiry: event.args.expiry,
    status: 'open',
    blockNumber: event.block.number,
    txHash: event.transaction.hash,
  });
  await context.db
    .insert(intervals)
    .values({ interval: event.args.interval, status: 'open', ordersSubmitted: 1, ordersCancelled: 0 })
    .onConflictDoUpdate((row) => ({ ordersSubmitted: row.ordersSubmitted + 1 }));
});

ponder.on('ClearingPool:OrderCancelled', async ({ event, context }) => {
  await context.db
    .update(orders, { interval: event.args.interval, cellId: event.args.cell, nonce: event.args.nonce })
    .set({ status: 'cancelled' });
});

ponder.on('ClearingPool:IntervalCleared', async ({ event, context }) => {
  await context.db
    .insert(intervals)
    .values({
      interval: event.args.interval,
      status: 'cleared',
      ordersSubmitted: 0,
      ordersCancelled: 0,
      price: event.args.price,
      volumeWh: event.args.volumeWh,
    })
    .onConflictDoUpdate({ status: 'cleared', price: event.args.price, volumeWh: event.args.volumeWh });
});

ponder.on('ClearingPool:CellScheduled', async ({ event, context }) => {
  await context.db.insert(schedules).values({
    interval: event.args.interval,
    cellId: event.args.cell,
    side: event.args.side,
    energyWh: event.args.energyWh,
  });
});

ponder.on('ClearingPool:PositionSettled', async ({ event, context }) => {
  await context.db.insert(settlements).values({
    interval: event.args.interval,
    cellId: event.args.cell,
    side: event.args.side,
    meteredWh: event.args.meteredWh,
    amount: event.args.amount,
    refund: event.args.refund,
  });
});
