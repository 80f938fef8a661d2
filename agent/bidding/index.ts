/**
 * Pool bidding: before gate closure of an interval, the agent offers what its forecast leaves
 * after the deals and demand response already committed in the dispatch ledger: a sell order
 * at the owner's minimum sell price for a surplus, a buy order at the owner's maximum buy price
 * for a deficit. One order per interval, signed with the agent key, submitted by the agent.
 */
import type { Address, Chain, LocalAccount, PublicClient, Transport } from 'viem';
import { clearingPoolAbi } from '../../chain/abi/contracts.generated.js';
import { firstLine } from '../../chain/errors/index.js';
import type { Logger } from '../../chain/logger/index.js';
import type { GridcellDomain, Order } from '../../chain/typed-data/index.js';
import { Side } from '../../chain/units/index.js';
import type { AgentConfig } from '../config/index.js';
import type { DispatchLedger } from '../dispatch/index.js';
import type { TxSender } from '../sender/index.js';
import type { Forecast } from './forecast.js';
import { positionOf, submitOrder } from './poolOrder.js';

export { createForecast, type Forecast, type ForecastRevision, type IntervalForecast } from './forecast.js';

export interface PoolBid {
  interval: bigint;
  order?: Order;
  transaction?: `0x${string}`;
  /** Why no order was placed. */
  skipped?: string;
  /** The order was cancelled before gate closure: the forecast no longer backed it. */
  cancelled?: { transaction: `0x${string}`; reason: string };
}

export interface PoolBidder {
  /** Bids for `interval` once; later calls return the first result. */
  bid(interval: bigint): Promise<PoolBid>;
  bids(): PoolBid[];
  /**
   * Cancels, before gate closure, each placed order the dispatch ledger no longer backs (the
   * forecast fell below what is committed); the interval may then be bid again with what is left.
   * @returns the orders cancelled now.
   */
  review(now: bigint): Promise<PoolBid[]>;
}

export interface CreatePoolBidderParameters {
  cell: bigint;
  config: AgentConfig;
  account: LocalAccount;
  publicClient: PublicClient<Transport, Chain>;
  pool: Address;
  poolDomain: GridcellDomain;
  intervalSeconds: bigint;
  gateClosureLead: bigint;
  forecast: Forecast;
  ledger: DispatchLedger;
  tx: TxSender;
  logger: Logger;
}

/**
 * The first interval whose gate is still open at `now` (as `gridcell market` computes it).
 * @example nextOpenInterval(1000n, 900n, 300n) // 2n
 */
export function nextOpenInterval(now: bigint, intervalSeconds: bigint, lead: bigint): bigint {
  let t = now / intervalSeconds + 1n;
  while (t * intervalSeconds - lead <= now) t++;
  return t;
}

/** Creates the pool bidder of one cell. */
export function createPoolBidder(parameters: CreatePoolBidderParameters): PoolBidder {
  const { cell, config, account, publicClient, pool, forecast, ledger, tx, logger } = parameters;
  const orders = { publicClient, pool, account, poolDomain: parameters.poolDomain, tx };
  const results = new Map<bigint, Promise<PoolBid>>();
  const settled: PoolBid[] = [];

  async function place(interval: bigint): Promise<PoolBid> {
    const exportWh = ledger.available(interval, 'export');
    const importWh = ledger.available(interval, 'import');
    if (exportWh === 0n && importWh === 0n) return { interval, skipped: 'nothing left to trade' };
    const side = exportWh > 0n ? Side.Sell : Side.Buy;
    const energyWh = side === Side.Sell ? exportWh : importWh;
    // The pool takes one side per cell and interval; the ledger only ever has one side free.
    ledger.commit({
      key: `pool:${interval}`,
      service: 'pool',
      interval,
      direction: side === Side.Sell ? 'export' : 'import',
      wh: energyWh,
    });
    try {
      const { nonce } = await positionOf(orders, interval, cell);
      const order: Order = {
        cell,
        interval,
        side,
        energyWh,
        limitPrice: side === Side.Sell ? config.preferences.minSellPrice : config.preferences.maxBuyPrice,
        nonce,
        expiry: interval * parameters.intervalSeconds - parameters.gateClosureLead,
      };
      const transaction = await submitOrder(orders, order);
      forecast.advance(interval);
      logger.info('pool order placed', {
        interval,
        side: side === Side.Sell ? 'sell' : 'buy',
        wh: energyWh,
        limit: order.limitPrice,
        transaction,
      });
      return { interval, order, transaction };
    } catch (error) {
      ledger.release(`pool:${interval}`);
      logger.error('pool order failed', { interval, error });
      return { interval, skipped: `order failed: ${firstLine(error)}` };
    }
  }

  async function cancel(bid: PoolBid, order: Order, reason: string) {
    const receipt = await tx.send({
      address: pool,
      abi: clearingPoolAbi,
      functionName: 'cancelOrder',
      args: [cell, order.interval, order.nonce],
    });
    bid.cancelled = { transaction: receipt.transactionHash, reason };
    ledger.release(`pool:${order.interval}`);
    // The interval is open again: the next round bids what the forecast still backs.
    results.delete(order.interval);
    logger.warn('pool order cancelled', {
      interval: order.interval,
      nonce: order.nonce,
      wh: order.energyWh,
      reason,
      transaction: receipt.transactionHash,
    });
  }

  return {
    async review(now) {
      const cancelled: PoolBid[] = [];
      for (const bid of settled) {
        const { order } = bid;
        if (!order || bid.cancelled) continue;
        const gateClosure = order.interval * parameters.intervalSeconds - parameters.gateClosureLead;
        if (now >= gateClosure) continue;
        const direction = order.side === Side.Sell ? 'export' : 'import';
        const over = ledger.overCommitted(order.interval, direction);
        if (over === 0n) continue;
        const backed = order.energyWh > over ? order.energyWh - over : 0n;
        try {
          await cancel(
            bid,
            order,
            `the forecast backs ${backed} of the order's ${order.energyWh} Wh of ${direction}`,
          );
          cancelled.push(bid);
        } catch (error) {
          logger.error('pool order could not be cancelled', {
            interval: order.interval,
            nonce: order.nonce,
            error,
          });
        }
      }
      return cancelled;
    },
    bid(interval) {
      let result = results.get(interval);
      if (!result) {
        result = place(interval).then((bid) => {
          settled.push(bid);
          return bid;
        });
        results.set(interval, result);
      }
      return result;
    },
    bids: () => [...settled],
  };
}
