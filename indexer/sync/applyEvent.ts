import { type Address, zeroAddress } from 'viem';
import { escrowFor } from '../../chain/units/index.js';
import type { DecodedEvent } from './decodeLogs.js';
import type { DerivedRow, DerivedStore } from './derivedStore.js';

/** A uint that the schema keeps as INTEGER (ids, intervals, Wh, seq): exact below 2^53. */
function int(value: unknown, what: string): number {
  const n = typeof value === 'bigint' ? Number(value) : Number(value);
  if (!Number.isSafeInteger(n)) throw new RangeError(`${what} = ${String(value)} does not fit 2^53`);
  return n;
}
const dec = (value: unknown) => (value as bigint).toString();
const add = (a: string, b: unknown) => (BigInt(a) + (b as bigint)).toString();
const maxDec = (a: string, b: unknown) => (BigInt(a) > (b as bigint) ? a : dec(b));
const sub = (a: string, b: unknown) => (BigInt(a) - (b as bigint)).toString();

function emptyWallet(cellId: number, block: number): DerivedRow<'wallets'> {
  return {
    cellId,
    deposited: '0',
    withdrawn: '0',
    dailyCap: '0',
    poolPaid: '0',
    poolReceived: '0',
    locked: '0',
    debt: '0',
    updatedBlock: block,
  };
}

function emptyInterval(interval: number, block: number): DerivedRow<'intervals'> {
  return {
    interval,
    status: 'open',
    ordersSubmitted: 0,
    ordersCancelled: 0,
    price: null,
    volumeWh: null,
    orderCount: null,
    scheduledCells: null,
    positionsSettled: 0,
    clearedBlock: null,
    updatedBlock: block,
  };
}

/**
 * Applies one event to the derived tables. Every handler reads the rows it changes and
 * writes them whole, so the store can record before-images for rollbacks.
 * @returns false when the event changes no derived table (it stays in `events` only).
 */
export async function applyEvent(store: DerivedStore, event: DecodedEvent): Promise<boolean> {
  const a = event.args;
  const block = event.blockNumber;
  switch (event.eventName) {
    // ---- CellRegistry
    case 'CellConnected': {
      const id = int(a.cellId, 'cellId');
      const existing = await store.get('cells', [id]);
      await store.put('cells', {
        id,
        owner: a.owner as Address,
        cellType: int(a.cellType, 'cellType'),
        parentId: int(a.parentCellId, 'parentCellId'),
        maxImportW: int(a.maxImportW, 'maxImportW'),
        maxExportW: int(a.maxExportW, 'maxExportW'),
        // connect() may configure the agent before announcing the cell: keep what came first.
        agent: existing?.agent ?? null,
        status: 'connected',
        connectedBlock: block,
        updatedBlock: block,
      });
      return true;
    }
    case 'AgentConfigured':
      return updateCell(store, a.cellId, block, (c) => {
        c.agent = a.agent === zeroAddress ? null : (a.agent as Address);
      });
    case 'LimitsChanged':
      return updateCell(store, a.cellId, block, (c) => {
        c.maxImportW = int(a.maxImportW, 'maxImportW');
        c.maxExportW = int(a.maxExportW, 'maxExportW');
      });
    case 'UserChanged':
      return updateCell(store, a.cellId, block, (c) => {
        c.owner = a.newOwner as Address;
        c.agent = null;
      });
    case 'CellDisconnected':
      return updateCell(store, a.cellId, block, (c) => {
        c.status = 'disconnected';
      });
    case 'MeterAdded':
      await store.put('meters', {
        meter: a.meter as Address,
        cellId: int(a.cellId, 'cellId'),
        addedBlock: block,
      });
      return true;
    case 'MeterRemoved':
      await store.remove('meters', [a.meter as Address]);
      return true;
    case 'ServiceSubscribed':
      await store.put('subscriptions', {
        cellId: int(a.cellId, 'cellId'),
        service: a.service as Address,
        subscribedBlock: block,
      });
      return true;
    case 'ServiceUnsubscribed':
      await store.remove('subscriptions', [int(a.cellId, 'cellId'), a.service as Address]);
      return true;

    // ---- CellWallets
    case 'Deposited':
      return updateWallet(store, a.cellId, block, (w) => {
        w.deposited = add(w.deposited, a.amount);
      });
    case 'Withdrawn':
      return updateWallet(store, a.cellId, block, (w) => {
        w.withdrawn = add(w.withdrawn, a.amount);
      });
    case 'DailyCapSet':
      return updateWallet(store, a.cellId, block, (w) => {
        w.dailyCap = dec(a.cap);
      });
    case 'DebtRecorded': {
      const debtId = int(a.debtId, 'debtId');
      const owed = (a.amount as bigint) - (a.paidAtOnce as bigint);
      if (debtId !== 0) {
        await store.get('debts', [debtId]);
        await store.put('debts', {
          id: debtId,
          debtor: int(a.debtor, 'debtor'),
          creditor: int(a.creditor, 'creditor'),
          amount: dec(a.amount),
          paidAtOnce: dec(a.paidAtOnce),
          collected: '0',
          blockNumber: block,
        });
      }
      return updateWallet(store, a.debtor, block, (w) => {
        w.debt = add(w.debt, owed);
      });
    }
    case 'DebtRepaid':
      return updateWallet(store, a.cellId, block, (w) => {
        w.debt = dec(a.outstanding);
      });
    case 'DebtCollected': {
      const debt = await store.get('debts', [int(a.debtId, 'debtId')]);
      if (!debt) return false;
      await store.put('debts', { ...debt, collected: add(debt.collected, a.amount) });
      return true;
    }

    // ---- ClearingPool
    case 'OrderSubmitted': {
      const interval = int(a.interval, 'interval');
      await store.put('orders', {
        interval,
        cellId: int(a.cell, 'cell'),
        nonce: int(a.nonce, 'nonce'),
        side: int(a.side, 'side'),
        energyWh: int(a.energyWh, 'energyWh'),
        limitPrice: dec(a.limitPrice),
        expiry: int(a.expiry, 'expiry'),
        status: 'open',
        blockNumber: block,
        txHash: event.txHash,
      });
      // A buy order locks its worst case in the wallet until its position settles; a cancel
      // releases nothing before.
      if (int(a.side, 'side') === 0) {
        const escrow = escrowFor(a.energyWh as bigint, a.limitPrice as bigint);
        await updateWallet(store, a.cell, block, (w) => {
          w.locked = add(w.locked, escrow);
        });
      }
      return updateInterval(store, interval, block, (i) => {
        i.ordersSubmitted += 1;
      });
    }
    case 'OrderCancelled': {
      const interval = int(a.interval, 'interval');
      const key = [interval, int(a.cell, 'cell'), int(a.nonce, 'nonce')];
      const order = await store.get('orders', key);
      if (order) await store.put('orders', { ...order, status: 'cancelled' });
      return updateInterval(store, interval, block, (i) => {
        i.ordersCancelled += 1;
      });
    }
    case 'IntervalCleared':
      return updateInterval(store, int(a.interval, 'interval'), block, (i) => {
        i.status = 'cleared';
        i.price = dec(a.price);
        i.volumeWh = int(a.volumeWh, 'volumeWh');
        i.orderCount = int(a.orderCount, 'orderCount');
        i.scheduledCells = int(a.scheduledCells, 'scheduledCells');
        i.clearedBlock = block;
      });
    case 'CellScheduled':
      await store.put('schedules', {
        interval: int(a.interval, 'interval'),
        cellId: int(a.cell, 'cell'),
        side: int(a.side, 'side'),
        energyWh: int(a.energyWh, 'energyWh'),
        blockNumber: block,
      });
      return true;
    case 'ReadingAccepted':
      await store.put('readings', {
        interval: int(a.interval, 'interval'),
        cellId: int(a.cell, 'cell'),
        meter: a.meter as Address,
        seq: int(a.seq, 'seq'),
        importWh: int(a.importWh, 'importWh'),
        exportWh: int(a.exportWh, 'exportWh'),
        deliveredWh: int(a.deliveredWh, 'deliveredWh'),
        blockNumber: block,
        txHash: event.txHash,
      });
      return true;
    case 'PositionSettled': {
      const interval = int(a.interval, 'interval');
      const side = int(a.side, 'side');
      await store.put('settlements', {
        interval,
        cellId: int(a.cell, 'cell'),
        side,
        meteredWh: int(a.meteredWh, 'meteredWh'),
        amount: dec(a.amount),
        refund: dec(a.refund),
        blockNumber: block,
        logIndex: event.logIndex,
        txHash: event.txHash,
      });
      await updateWallet(store, a.cell, block, (w) => {
        if (side === 0) {
          // The whole escrow leaves the lock: paid, and the rest refunded.
          w.poolPaid = add(w.poolPaid, a.amount);
          w.locked = sub(sub(w.locked, a.amount), a.refund);
        } else w.poolReceived = add(w.poolReceived, a.amount);
      });
      return updateInterval(store, interval, block, (i) => {
        i.positionsSettled += 1;
        if (i.scheduledCells !== null && i.positionsSettled >= i.scheduledCells) i.status = 'settled';
        else i.status = 'settling';
      });
    }

    // ---- DebtChannels
    case 'ChannelOpened': {
      const id = a.channel as string;
      await store.put('channels', {
        id,
        buyerCell: int(a.buyerCell, 'buyerCell'),
        sellerCell: int(a.sellerCell, 'sellerCell'),
        sellerMeter: a.sellerMeter as Address,
        pricePerKWh: dec(a.pricePerKWh),
        maxWhPerInterval: int(a.maxWhPerInterval, 'maxWhPerInterval'),
        firstInterval: int(a.firstInterval, 'firstInterval'),
        lastInterval: int(a.lastInterval, 'lastInterval'),
        collateral: dec(a.collateral),
        status: 'open',
        voucherSeq: 0,
        deliveredWh: 0,
        owedAmount: '0',
        paidAmount: '0',
        closingDeadline: null,
        endInterval: null,
        refunded: null,
        debt: null,
        debtId: null,
        openedBlock: block,
        updatedBlock: block,
      });
      return true;
    }
    case 'CollateralToppedUp':
      return updateChannel(store, a.channel, block, (c) => {
        c.collateral = dec(a.collateral);
        c.paidAmount = add(c.paidAmount, a.paidNow);
      });
    case 'VoucherAccepted': {
      await store.put('vouchers', {
        channelId: a.channel as string,
        seq: int(a.seq, 'seq'),
        cumulativeWh: int(a.cumulativeWh, 'cumulativeWh'),
        cumulativeAmount: dec(a.cumulativeAmount),
        paidNow: dec(a.paidNow),
        blockNumber: block,
        txHash: event.txHash,
      });
      return updateChannel(store, a.channel, block, (c) => {
        c.voucherSeq = int(a.seq, 'seq');
        c.deliveredWh = Math.max(c.deliveredWh, int(a.cumulativeWh, 'cumulativeWh'));
        c.owedAmount = maxDec(c.owedAmount, a.cumulativeAmount);
        // paidNow went to the seller out of the collateral.
        c.paidAmount = add(c.paidAmount, a.paidNow);
        c.collateral = sub(c.collateral, a.paidNow);
      });
    }
    case 'DeliveryProven':
      return updateChannel(store, a.channel, block, (c) => {
        c.deliveredWh = Math.max(c.deliveredWh, int(a.owedWh, 'owedWh'));
        c.owedAmount = maxDec(c.owedAmount, a.amount);
        c.paidAmount = add(c.paidAmount, a.paidNow);
        c.collateral = sub(c.collateral, a.paidNow);
      });
    case 'ChannelClosing':
      return updateChannel(store, a.channel, block, (c) => {
        c.status = 'closing';
        c.closingDeadline = int(a.deadline, 'deadline');
        c.endInterval = int(a.endInterval, 'endInterval');
      });
    case 'ChannelClosed':
      return updateChannel(store, a.channel, block, (c) => {
        c.status = 'closed';
        c.owedAmount = dec(a.owed);
        c.paidAmount = dec(a.paid);
        c.refunded = dec(a.refunded);
        c.debt = dec(a.debt);
        c.debtId = int(a.debtId, 'debtId') || null;
        // Settled: the seller was paid, the rest refunded; nothing stays locked.
        c.collateral = '0';
      });
    case 'CollateralWithdrawn':
      return updateChannel(store, a.channel, block, (c) => {
        c.collateral = dec(a.collateral);
      });
    default:
      // Transfer, Approval, MarketAdded, AdminRenounced, WithdrawalRequested...: raw events only.
      return false;
  }
}

async function updateCell(
  store: DerivedStore,
  cellId: unknown,
  block: number,
  change: (row: DerivedRow<'cells'>) => void,
): Promise<boolean> {
  const id = int(cellId, 'cellId');
  const found = await store.get('cells', [id]);
  // An event before CellConnected in the same transaction (connect configures the agent
  // first): a placeholder row that CellConnected completes.
  const row: DerivedRow<'cells'> = found
    ? { ...found }
    : {
        id,
        owner: zeroAddress,
        cellType: 0,
        parentId: 0,
        maxImportW: 0,
        maxExportW: 0,
        agent: null,
        status: 'pending',
        connectedBlock: block,
        updatedBlock: block,
      };
  change(row);
  row.updatedBlock = block;
  await store.put('cells', row);
  return true;
}

async function updateWallet(
  store: DerivedStore,
  cellId: unknown,
  block: number,
  change: (row: DerivedRow<'wallets'>) => void,
): Promise<boolean> {
  const id = int(cellId, 'cellId');
  const row = { ...((await store.get('wallets', [id])) ?? emptyWallet(id, block)) };
  change(row);
  row.updatedBlock = block;
  await store.put('wallets', row);
  return true;
}

async function updateInterval(
  store: DerivedStore,
  interval: number,
  block: number,
  change: (row: DerivedRow<'intervals'>) => void,
): Promise<boolean> {
  const row = { ...((await store.get('intervals', [interval])) ?? emptyInterval(interval, block)) };
  change(row);
  row.updatedBlock = block;
  await store.put('intervals', row);
  return true;
}

async function updateChannel(
  store: DerivedStore,
  channel: unknown,
  block: number,
  change: (row: DerivedRow<'channels'>) => void,
): Promise<boolean> {
  const found = await store.get('channels', [channel as string]);
  if (!found) return false;
  const row = { ...found };
  change(row);
  row.updatedBlock = block;
  await store.put('channels', row);
  return true;
}
