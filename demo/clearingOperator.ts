/**
 * The market operator of the demo: after each interval's gate closes and before its delivery
 * starts, it reads the interval's orders from the pool's events, computes the clearing
 * (chain/clearing/quoteClearing) and calls `clear`. Anyone may clear; the pool verifies.
 */
import type { Account, Chain, PublicClient, Transport, WalletClient } from 'viem';
import { clearingPoolAbi } from '../chain/abi/contracts.generated.js';
import { quoteClearing } from '../chain/clearing/quoteClearing.js';
import { decodeContractError } from '../chain/errors/index.js';
import type { Logger } from '../chain/logger/index.js';
import type { Manifest } from '../chain/manifest/index.js';
import type { Order } from '../chain/typed-data/index.js';

export interface ClearingResult {
  interval: bigint;
  orders: number;
  price: bigint;
  volumeWh: bigint;
  /** Chain time of the block that cleared it. */
  clearedAt: bigint;
  transaction: `0x${string}`;
}

export interface ClearingOperator {
  /** Clears `interval` if its gate is closed, delivery has not started and it has orders. */
  maybeClear(interval: bigint, now: bigint): Promise<ClearingResult | undefined>;
  results(): ClearingResult[];
}

/** Creates the operator; its wallet client pays the gas of `clear`. */
export function createClearingOperator(parameters: {
  manifest: Manifest;
  publicClient: PublicClient<Transport, Chain>;
  walletClient: WalletClient<Transport, Chain, Account>;
  logger: Logger;
}): ClearingOperator {
  const { manifest, publicClient, walletClient, logger } = parameters;
  const pool = { address: manifest.contracts.pool, abi: clearingPoolAbi } as const;
  const L = manifest.pool.intervalSeconds;
  const lead = manifest.pool.gateClosureLead;
  const done = new Map<bigint, ClearingResult | undefined>();
  const inFlight = new Set<bigint>();

  async function ordersOf(t: bigint): Promise<{ orders: Order[]; cancelled: boolean[] }> {
    const logs = await publicClient.getContractEvents({
      ...pool,
      eventName: 'OrderSubmitted',
      args: { interval: t },
      fromBlock: manifest.deploymentBlock,
    });
    const orders: Order[] = logs.map(({ args }) => ({
      cell: args.cell ?? 0n,
      interval: t,
      side: args.side ?? 0,
      energyWh: args.energyWh ?? 0n,
      limitPrice: args.limitPrice ?? 0n,
      nonce: args.nonce ?? 0,
      expiry: args.expiry ?? 0n,
    }));
    const masks = new Map<bigint, number>();
    for (const o of orders) {
      if (masks.has(o.cell)) continue;
      const p = await publicClient.readContract({ ...pool, functionName: 'positionOf', args: [t, o.cell] });
      masks.set(o.cell, p.cancelMask);
    }
    return { orders, cancelled: orders.map((o) => ((masks.get(o.cell) ?? 0) & (1 << o.nonce)) !== 0) };
  }

  return {
    async maybeClear(t, now) {
      if (done.has(t) || inFlight.has(t)) return undefined;
      if (now < t * L - lead || now >= t * L) return undefined;
      inFlight.add(t);
      try {
        const state = await publicClient.readContract({ ...pool, functionName: 'intervalOf', args: [t] });
        if (state.cleared || state.orderCount === 0) {
          done.set(t, undefined);
          return undefined;
        }
        const { orders, cancelled } = await ordersOf(t);
        const quote = quoteClearing(orders, cancelled);
        const { request } = await publicClient.simulateContract({
          ...pool,
          functionName: 'clear',
          args: [t, quote.priceLow, quote.priceHigh, orders],
          account: walletClient.account,
        });
        const hash = await walletClient.writeContract(request);
        const receipt = await publicClient.waitForTransactionReceipt({ hash });
        if (receipt.status !== 'success') throw new Error(`clear(${t}) reverted in ${hash}`);
        const block = await publicClient.getBlock({ blockNumber: receipt.blockNumber });
        const result: ClearingResult = {
          interval: t,
          orders: orders.length,
          price: quote.price,
          volumeWh: quote.volumeWh,
          clearedAt: block.timestamp,
          transaction: hash,
        };
        done.set(t, result);
        logger.info('interval cleared', {
          interval: t,
          orders: orders.length,
          price: quote.price,
          volumeWh: quote.volumeWh,
          secondsBeforeDelivery: t * L - block.timestamp,
        });
        return result;
      } catch (error) {
        const decoded = decodeContractError(error, 'clear');
        logger.error('clearing failed', { interval: t, error: decoded });
        return undefined;
      } finally {
        inFlight.delete(t);
      }
    },
    results: () => [...done.values()].filter((r): r is ClearingResult => r !== undefined),
  };
}
