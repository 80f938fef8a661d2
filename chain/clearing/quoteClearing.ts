import type { Order } from '../typed-data/index.js';
import { Side } from '../units/index.js';

export interface ClearingQuote {
  /** Lowest and highest clearing price: the bounds `clear` takes. */
  priceLow: bigint;
  priceHigh: bigint;
  /** The price the pool will record: the midpoint, rounded down (0 when nothing trades). */
  price: bigint;
  volumeWh: bigint;
  /** Energy each order gets, in the order given (cancelled orders get 0). */
  fills: bigint[];
}

/**
 * Computes the clearing of an interval the way the pool verifies it (docs/clearing.md),
 * so whoever clears can name the price bounds. Sorts the bids down and the asks up and
 * evaluates the curves where they can change; the fills follow the pool's pro-rata rule
 * for marginal orders, in submission order.
 * @param orders Every accepted order of the interval, in submission order.
 * @param cancelled Whether each order was cancelled (same indices).
 */
export function quoteClearing(orders: readonly Order[], cancelled: readonly boolean[] = []): ClearingQuote {
  const live = orders.map((o, i) => ({ o, i })).filter(({ i }) => !cancelled[i]);
  const bids = live
    .filter(({ o }) => o.side === Side.Buy)
    .sort((a, b) => cmpDesc(a.o.limitPrice, b.o.limitPrice));
  const asks = live
    .filter(({ o }) => o.side === Side.Sell)
    .sort((a, b) => cmpDesc(b.o.limitPrice, a.o.limitPrice));
  const fills = orders.map(() => 0n);
  const none: ClearingQuote = { priceLow: 0n, priceHigh: 0n, price: 0n, volumeWh: 0n, fills };
  const bestBid = bids[0]?.o.limitPrice;
  const bestAsk = asks[0]?.o.limitPrice;
  if (bestBid === undefined || bestAsk === undefined || bestBid < bestAsk) return none;

  const curves = (p: bigint) => {
    let demandAbove = 0n;
    let demandAt = 0n;
    let supplyBelow = 0n;
    let supplyAt = 0n;
    for (const { o } of bids) {
      if (o.limitPrice < p) break;
      if (o.limitPrice > p) demandAbove += o.energyWh;
      else demandAt += o.energyWh;
    }
    for (const { o } of asks) {
      if (o.limitPrice > p) break;
      if (o.limitPrice < p) supplyBelow += o.energyWh;
      else supplyAt += o.energyWh;
    }
    return { demandAbove, demandAt, supplyBelow, supplyAt };
  };
  const clears = (p: bigint) => {
    const c = curves(p);
    return c.demandAbove + c.demandAt >= c.supplyBelow && c.supplyBelow + c.supplyAt >= c.demandAbove;
  };

  let low: bigint | undefined;
  let high: bigint | undefined;
  for (const { o } of live) {
    for (const p of [o.limitPrice - 1n, o.limitPrice, o.limitPrice + 1n]) {
      if (p < 0n || !clears(p)) continue;
      if (low === undefined || p < low) low = p;
      if (high === undefined || p > high) high = p;
    }
  }
  if (low === undefined || high === undefined)
    throw new Error('no clearing price: the order book is inconsistent');
  const price = (low + high) / 2n;
  const c = curves(price);
  const demand = c.demandAbove + c.demandAt;
  const supply = c.supplyBelow + c.supplyAt;
  const volumeWh = demand < supply ? demand : supply;
  let buyBefore = 0n;
  let sellBefore = 0n;
  for (const { o, i } of live) {
    const isBuy = o.side === Side.Buy;
    const inMoney = isBuy ? o.limitPrice > price : o.limitPrice < price;
    if (inMoney) fills[i] = o.energyWh;
    else if (o.limitPrice === price) {
      const toShare = isBuy ? volumeWh - c.demandAbove : volumeWh - c.supplyBelow;
      const total = isBuy ? c.demandAt : c.supplyAt;
      const before = isBuy ? buyBefore : sellBefore;
      fills[i] = ((before + o.energyWh) * toShare) / total - (before * toShare) / total;
      if (isBuy) buyBefore += o.energyWh;
      else sellBefore += o.energyWh;
    }
  }
  return { priceLow: low, priceHigh: high, price, volumeWh, fills };
}

function cmpDesc(a: bigint, b: bigint): number {
  return a > b ? -1 : a < b ? 1 : 0;
}
