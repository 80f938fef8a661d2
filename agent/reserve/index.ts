/**
 * Answering the grid controller's reserve requests (docs/grid.md): when the grid cannot realise
 * a schedule, the controller asks on `gridcell/v1/{zone}/grid/reserve` (QoS 1, not retained) for
 * `energyWh` on one `side` in a later `interval`, naming the cell. The controller holds no agent
 * key, so the named cell's agent answers "through TE" (IDEA): with an ordinary pool order for that
 * interval and side, within its dispatch ledger and at the owner's price limit, before gate closure
 * and once per request.
 */
import type { MqttClient } from 'mqtt';
import type { Address, Chain, LocalAccount, PublicClient, Transport } from 'viem';
import { firstLine } from '../../chain/errors/index.js';
import type { Logger } from '../../chain/logger/index.js';
import type { GridcellDomain, Order } from '../../chain/typed-data/index.js';
import { Side } from '../../chain/units/index.js';
import { gridReserveSchema, gridTopics } from '../../grid/controller/messages.js';
import { parsePayload } from '../../oracle/messages/index.js';
import { nextOpenInterval } from '../bidding/index.js';
import { positionOf, submitOrder } from '../bidding/poolOrder.js';
import type { AgentConfig } from '../config/index.js';
import type { DispatchLedger } from '../dispatch/index.js';
import type { TxSender } from '../sender/index.js';

/** A valid reserve request, as the schema decodes it. */
export type ReserveRequest = ReturnType<typeof gridReserveSchema.parse>;

export interface ReserveAnswer {
  /** `interval:cell:side:forInterval`: one answer per key. */
  key: string;
  request: ReserveRequest;
  /** The order placed (its `energyWh` may be below the request's: what the ledger had free). */
  order?: Order;
  transaction?: `0x${string}`;
  /** Why no order was placed. */
  declined?: string;
}

export interface ReserveMetrics {
  /** Messages on the zone's reserve topic. */
  received: number;
  /** Rejected by the schema (or not JSON). */
  invalid: number;
  /** For another cell. */
  otherCell: number;
  /** A request already answered (or being answered). */
  duplicates: number;
  placed: number;
  declined: number;
  /** The order's transaction failed; the request may be answered again if re-sent. */
  failed: number;
}

export interface ReserveResponder {
  /** Answers the requests received since the last call, in order (the agent's round calls it). */
  tick(now: bigint): Promise<void>;
  answers(): ReserveAnswer[];
  metrics(): ReserveMetrics;
  stop(): Promise<void>;
}

export interface CreateReserveResponderParameters {
  cell: bigint;
  zone: string;
  config: AgentConfig;
  account: LocalAccount;
  mqtt: MqttClient;
  publicClient: PublicClient<Transport, Chain>;
  pool: Address;
  poolDomain: GridcellDomain;
  intervalSeconds: bigint;
  gateClosureLead: bigint;
  ledger: DispatchLedger;
  tx: TxSender;
  logger: Logger;
}

const sideName = (side: Side) => (side === Side.Buy ? 'buy' : 'sell');

/**
 * Subscribes to the zone's reserve topic and returns the responder; requests are queued on
 * arrival and answered in the agent's rounds, so their orders never race the bidder's nonces.
 * @example
 * const reserve = await createReserveResponder({ cell, zone, mqtt, ledger, ... });
 * await reserve.tick(now); // in each round, before bidding
 */
export async function createReserveResponder(
  parameters: CreateReserveResponderParameters,
): Promise<ReserveResponder> {
  const { cell, zone, config, account, mqtt, publicClient, pool, ledger, tx, logger } = parameters;
  const orders = { publicClient, pool, account, poolDomain: parameters.poolDomain, tx };
  const L = parameters.intervalSeconds;
  const lead = parameters.gateClosureLead;
  const topic = gridTopics.reserve(zone);
  const metrics: ReserveMetrics = {
    received: 0,
    invalid: 0,
    otherCell: 0,
    duplicates: 0,
    placed: 0,
    declined: 0,
    failed: 0,
  };
  const seen = new Set<string>();
  const pending: { key: string; request: ReserveRequest }[] = [];
  const answers: ReserveAnswer[] = [];

  const onMessage = (received: string, payload: Buffer) => {
    // The client is shared: only this zone's reserve topic is ours.
    if (received !== topic) return;
    metrics.received++;
    const parsed = parsePayload(gridReserveSchema, payload);
    if (!parsed.ok) {
      metrics.invalid++;
      logger.warn('reserve request rejected', {
        topic,
        reason: parsed.reason,
        expected: 'a grid-reserve payload (docs/grid.md)',
      });
      return;
    }
    const request = parsed.value;
    if (request.cell !== cell) {
      metrics.otherCell++;
      logger.debug('reserve request for another cell ignored', {
        cell: request.cell,
        interval: request.interval,
      });
      return;
    }
    const key = `${request.interval}:${request.cell}:${request.side}:${request.forInterval}`;
    if (seen.has(key)) {
      metrics.duplicates++;
      logger.info('reserve request already answered', { key });
      return;
    }
    seen.add(key);
    pending.push({ key, request });
  };
  mqtt.on('message', onMessage);
  await mqtt.subscribeAsync(topic, { qos: 1 });

  function decline(answer: ReserveAnswer, reason: string) {
    answer.declined = reason;
    metrics.declined++;
    logger.warn('reserve request declined', {
      interval: answer.request.interval,
      side: answer.request.side,
      wh: answer.request.energyWh,
      code: answer.request.code,
      forInterval: answer.request.forInterval,
      reason,
    });
  }

  async function answer(key: string, request: ReserveRequest, now: bigint): Promise<ReserveAnswer> {
    const result: ReserveAnswer = { key, request };
    const { interval } = request;
    const gateClosure = interval * L - lead;
    if (now >= gateClosure) {
      decline(result, `gate closed: interval ${interval} closed at ${gateClosure}, now ${now}`);
      return result;
    }
    // The controller asks for the next interval still open; anyone on the broker could ask for
    // far ones and lock escrow in each. One interval of slack for clocks read a moment apart.
    const latest = nextOpenInterval(now, L, lead) + 1n;
    if (interval > latest) {
      decline(
        result,
        `too far ahead: interval ${interval}, the controller asks for ${latest - 1n} at the latest`,
      );
      return result;
    }
    const side = request.side === 'buy' ? Side.Buy : Side.Sell;
    const limitPrice = side === Side.Buy ? config.preferences.maxBuyPrice : config.preferences.minSellPrice;
    // A limit of 0 is no limit the owner set: the agent neither buys with nothing escrowed nor gives energy away.
    if (limitPrice === 0n) {
      decline(
        result,
        `no price limit: preferences.${side === Side.Buy ? 'maxBuyPrice' : 'minSellPrice'} is 0`,
      );
      return result;
    }
    const direction = side === Side.Buy ? 'import' : 'export';
    const free = ledger.available(interval, direction);
    if (free === 0n) {
      decline(result, `ledger full: no ${direction} free in interval ${interval}`);
      return result;
    }
    const energyWh = request.energyWh < free ? request.energyWh : free;
    const ledgerKey = `reserve:${key}`;
    try {
      ledger.commit({ key: ledgerKey, service: 'pool', interval, direction, wh: energyWh });
    } catch (error) {
      decline(result, `ledger full: ${(error as Error).message}`);
      return result;
    }
    try {
      const { position, nonce } = await positionOf(orders, interval, cell);
      // The pool takes one side per cell and interval (PoolSideConflict): say so instead of reverting.
      if (position.orderCount !== 0 && position.side !== side) {
        ledger.release(ledgerKey);
        decline(
          result,
          `side conflict: the cell holds ${sideName(position.side as Side)} orders in interval ${interval}`,
        );
        return result;
      }
      const order: Order = { cell, interval, side, energyWh, limitPrice, nonce, expiry: gateClosure };
      const transaction = await submitOrder(orders, order);
      result.order = order;
      result.transaction = transaction;
      metrics.placed++;
      logger.info('reserve request answered with a pool order', {
        interval,
        side: request.side,
        wh: energyWh,
        requestedWh: request.energyWh,
        limit: limitPrice,
        nonce,
        code: request.code,
        forInterval: request.forInterval,
        transaction,
      });
      return result;
    } catch (error) {
      ledger.release(ledgerKey);
      // Transient (RPC down, nonce race): a re-sent request may be answered.
      seen.delete(key);
      metrics.failed++;
      result.declined = `order failed: ${firstLine(error)}`;
      logger.error('reserve order failed', { interval, side: request.side, wh: energyWh, error });
      return result;
    }
  }

  return {
    async tick(now) {
      while (pending.length > 0) {
        const next = pending.shift();
        if (next) answers.push(await answer(next.key, next.request, now));
      }
    },
    answers: () => [...answers],
    metrics: () => ({ ...metrics }),
    async stop() {
      mqtt.off('message', onMessage);
      await mqtt.unsubscribeAsync(topic).catch(() => undefined);
    },
  };
}
