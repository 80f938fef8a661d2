/**
 * The software agent of one power cell (IDEA): it holds the agent key and a libp2p identity
 * bound to it, negotiates bilateral deals by contract net, signs vouchers from the seller
 * meter's readings, bids the rest of its forecast into the pool before gate closure, takes
 * part in demand response and asks for load shedding when it cannot hold its balance. One
 * dispatch ledger keeps the same capacity from being promised twice. docs/agent.md.
 */

import type { PrivateKey } from '@libp2p/interface';
import mqtt, { type MqttClient } from 'mqtt';
import type { LocalAccount } from 'viem';
import { clearingPoolAbi } from '../chain/abi/contracts.generated.js';
import type { GridcellClients } from '../chain/client/index.js';
import type { Clock } from '../chain/clock/index.js';
import { BaseError } from '../chain/errors/index.js';
import type { Logger } from '../chain/logger/index.js';
import type { Manifest } from '../chain/manifest/index.js';
import { Side } from '../chain/units/index.js';
import {
  createForecast,
  createPoolBidder,
  type ForecastRevision,
  nextOpenInterval,
  type PoolBid,
} from './bidding/index.js';
import type { AgentConfig } from './config/index.js';
import { createDealBook, type DealMetrics, type OpenDeal } from './deals/index.js';
import { createDispatchLedger, type DispatchLedger } from './dispatch/index.js';
import { type Conversation, createContractNet, type NegotiationMetrics } from './negotiation/index.js';
import { createAgentDirectory, createAgentNet, type NetMetrics } from './net/index.js';
import {
  createReserveResponder,
  type ReserveAnswer,
  type ReserveMetrics,
  type ReserveResponder,
} from './reserve/index.js';
import { createTxSender } from './sender/index.js';
import { createCellServices, type ServiceMetrics } from './services/index.js';

export { type AgentConfig, parseAgentConfig, readAgentConfig } from './config/index.js';

export interface AgentMetrics {
  net: NetMetrics;
  negotiation: NegotiationMetrics;
  deals: DealMetrics;
  services: ServiceMetrics;
  bids: PoolBid[];
  /** Reserve requests of the grid controller: counters and each answer (absent when off or without a broker). */
  reserve?: ReserveMetrics & { answers: ReserveAnswer[] };
  transactions: number;
}

export interface Agent {
  cell: bigint;
  peerId: string;
  multiaddrs(): string[];
  /** The agent's conversations, open deals and ledger (diagnostics, tests, the demo). */
  conversations(): Conversation[];
  deals(): OpenDeal[];
  ledger: DispatchLedger;
  metrics(): AgentMetrics;
  /** Calls for proposals now (the buyer's side); the tick does it by the config. */
  callForProposals(request: {
    whPerInterval: bigint;
    firstInterval: bigint;
    lastInterval: bigint;
  }): Promise<string>;
  requestShedding(interval: bigint, shortfallWh: bigint): Promise<string | undefined>;
  /**
   * A new forecast for one interval (a weather update, the owner's plan). From the next round,
   * a pool order it no longer backs is cancelled before gate closure and what is left is bid.
   */
  reviseForecast(interval: bigint, revision: ForecastRevision): void;
  /** Runs one round now (the timer runs them every `tickMs`). */
  tick(): Promise<void>;
  stop(): Promise<void>;
}

export interface CreateAgentParameters {
  config: AgentConfig;
  /** The cell's agent key. */
  account: LocalAccount;
  manifest: Manifest;
  /** Clients whose wallet client holds `account`. */
  clients: GridcellClients;
  clock: Clock;
  logger: Logger;
  /** Overrides the config's broker. */
  mqttUrl?: string;
  /** Added to the config's bootstrap peers. */
  bootstrap?: string[];
  /** A persistent libp2p identity; a fresh one otherwise (the binding is signed anew at start). */
  privateKey?: PrivateKey;
}

export class AgentStartError extends BaseError {
  override name = 'AgentStartError' as const;
}

/**
 * Starts an agent: checks that `account` is the cell's agent on chain, joins the zone's
 * topics and begins its rounds.
 * @example
 * const agent = await createAgent({ config, account, manifest, clients, clock, logger });
 * process.once('SIGINT', () => agent.stop());
 */
export async function createAgent(parameters: CreateAgentParameters): Promise<Agent> {
  const { config, account, manifest, clients, clock, logger } = parameters;
  const { publicClient, walletClient } = clients;
  const cell = config.cell;
  if (!walletClient || walletClient.account.address !== account.address) {
    throw new AgentStartError('the clients must carry a wallet client for the agent key', {
      details: `expected account ${account.address}, received ${walletClient?.account.address ?? 'none'}`,
    });
  }
  let now = Number(await clock.now());
  const directory = createAgentDirectory({
    publicClient,
    registry: manifest.contracts.registry,
    now: () => now,
    logger: logger.child('directory'),
  });
  const onChainAgent = await directory.agentOf(cell);
  if (onChainAgent !== account.address) {
    directory.stop();
    throw new AgentStartError(`key ${account.address} is not the agent of cell ${cell}`, {
      details: `the registry names ${onChainAgent}; the owner sets it with \`gridcell cells\``,
    });
  }
  const forecast = createForecast({
    profile: config.profile,
    ...(config.battery ? { battery: config.battery } : {}),
  });
  const ledger = createDispatchLedger({
    capacity: (interval, direction) => {
      const f = forecast.at(interval);
      return direction === 'export' ? f.surplusWh : direction === 'import' ? f.deficitWh : f.flexibleWh;
    },
    priorities: config.priorities,
  });
  const net = await createAgentNet({
    chainId: manifest.chainId,
    registry: manifest.contracts.registry,
    zone: config.zone,
    sender: { cell },
    account,
    directory,
    now: () => now,
    logger: logger.child('net'),
    listen: config.network.listen,
    bootstrap: [...config.network.bootstrap, ...(parameters.bootstrap ?? [])],
    mdns: config.network.mdns,
    ...(parameters.privateKey ? { privateKey: parameters.privateKey } : {}),
  });
  const mqttUrl = parameters.mqttUrl ?? config.mqttUrl;
  let broker: MqttClient | undefined;
  if (mqttUrl) {
    broker = await mqtt.connectAsync(mqttUrl, {
      clientId: `gridcell-agent-${cell}-${net.peerId.toString().slice(-8)}`,
    });
    broker.on('error', (error) => logger.warn('MQTT error', { error }));
  } else {
    logger.warn('no MQTT broker configured: no vouchers, no load commands');
  }
  const tx = createTxSender({ publicClient, walletClient });
  const deals = createDealBook({
    cell,
    zone: config.zone,
    chainId: manifest.chainId,
    account,
    net,
    mqtt: broker,
    directory,
    publicClient,
    channels: manifest.contracts.channels,
    channelsDomain: clients.channelsDomain,
    tx,
    redeemThreshold: config.deals.redeemThreshold,
    now: () => now,
    intervalSeconds: manifest.pool.intervalSeconds,
    closeAnswerSeconds: config.deals.closeAnswerSeconds,
    finalVoucherWaitSeconds: config.deals.finalVoucherWaitSeconds,
    buyerCloseWaitSeconds: config.deals.buyerCloseWaitSeconds,
    logger: logger.child('deals'),
  });
  const negotiation = createContractNet({
    cell,
    meter: config.meter,
    config,
    account,
    net,
    directory,
    ledger,
    publicClient,
    channels: manifest.contracts.channels,
    channelsDomain: clients.channelsDomain,
    tx,
    now: () => now,
    logger: logger.child('negotiation'),
    onDealOpened: (deal, channel, role) => deals.add(deal, channel, role),
  });
  const bidder = createPoolBidder({
    cell,
    config,
    account,
    publicClient,
    pool: manifest.contracts.pool,
    poolDomain: clients.poolDomain,
    intervalSeconds: manifest.pool.intervalSeconds,
    gateClosureLead: manifest.pool.gateClosureLead,
    forecast,
    ledger,
    tx,
    logger: logger.child('pool'),
  });
  const services = createCellServices({
    cell,
    zone: config.zone,
    meter: config.meter,
    config,
    net,
    mqtt: broker,
    directory,
    ledger,
    forecast,
    registry: manifest.contracts.registry,
    tx,
    logger: logger.child('services'),
  });

  let reserve: ReserveResponder | undefined;
  if (config.grid.answerReserve && broker) {
    reserve = await createReserveResponder({
      cell,
      zone: config.zone,
      config,
      account,
      mqtt: broker,
      publicClient,
      pool: manifest.contracts.pool,
      poolDomain: clients.poolDomain,
      intervalSeconds: manifest.pool.intervalSeconds,
      gateClosureLead: manifest.pool.gateClosureLead,
      ledger,
      tx,
      logger: logger.child('reserve'),
    });
  } else if (config.grid.answerReserve) {
    logger.warn('no MQTT broker configured: reserve requests of the grid go unanswered');
  }

  const L = manifest.pool.intervalSeconds;
  const lead = manifest.pool.gateClosureLead;
  let lastCfpFirst = -1n;
  const checked = new Set<bigint>();

  /** Whether a conversation still being negotiated covers `interval`. */
  const negotiating = (interval: bigint) =>
    negotiation
      .conversations()
      .some(
        (c) =>
          (c.state === 'collecting' || c.state === 'accepted') &&
          c.firstInterval <= interval &&
          interval <= c.lastInterval,
      );

  async function callIfShort() {
    const buy = config.deals.buy;
    if (!buy) return;
    const first = BigInt(now) / L + BigInt(buy.leadIntervals);
    if (first === lastCfpFirst) return;
    // A call nobody hears is lost (gossipsub does not queue): wait for a peer on the topic.
    if (net.subscribers('market') === 0) return;
    const last = first + BigInt(buy.intervals) - 1n;
    for (let t = first; t <= last; t++) if (negotiating(t)) return;
    lastCfpFirst = first;
    let wh = buy.maxWhPerInterval;
    for (let t = first; t <= last; t++) {
      const free = ledger.available(t, 'import');
      if (free < wh) wh = free;
    }
    if (wh > 0n)
      await negotiation.callForProposals({ whPerInterval: wh, firstInterval: first, lastInterval: last });
  }

  /** After delivery starts: a buy order the pool did not fill is a balance the cell cannot hold. */
  async function checkBalance() {
    for (const bid of bidder.bids()) {
      const order = bid.order;
      if (!order || bid.cancelled || order.side !== Side.Buy || checked.has(bid.interval)) continue;
      if (BigInt(now) < bid.interval * L) continue;
      checked.add(bid.interval);
      const [state, position] = await Promise.all([
        publicClient.readContract({
          address: manifest.contracts.pool,
          abi: clearingPoolAbi,
          functionName: 'intervalOf',
          args: [bid.interval],
        }),
        publicClient.readContract({
          address: manifest.contracts.pool,
          abi: clearingPoolAbi,
          functionName: 'positionOf',
          args: [bid.interval, cell],
        }),
      ]);
      const filled = state.cleared ? BigInt(position.filledWh) : 0n;
      const shortfall = order.energyWh - filled;
      if (shortfall > 0n) await services.requestShedding(bid.interval, shortfall);
    }
  }

  async function tick() {
    now = Number(await clock.now());
    await negotiation.tick();
    await deals.tick();
    await callIfShort();
    // The grid's reserve requests before the round's own bid: the bid gets what they leave.
    await reserve?.tick(BigInt(now));
    if (config.pool.enabled) {
      // An order the forecast no longer backs goes before gate closure, before anything new is bid.
      if (config.pool.cancelUnbacked) await bidder.review(BigInt(now));
      const target = nextOpenInterval(BigInt(now), L, lead);
      // Deals come first: the pool gets what negotiations leave, unless the gate is near.
      const gateNear = BigInt(now) >= target * L - lead - BigInt(config.deals.cfpWindowSeconds);
      if (!negotiating(target) || gateNear) await bidder.bid(target);
    }
    await checkBalance();
  }

  let running: Promise<void> | undefined;
  let stopped = false;
  const timer = setInterval(() => {
    if (running || stopped) return;
    running = tick()
      .catch((error) => logger.error('agent round failed', { error }))
      .finally(() => {
        running = undefined;
      });
  }, config.tickMs);

  logger.info('agent started', {
    cell,
    zone: config.zone,
    agent: account.address,
    peerId: net.peerId.toString(),
    listen: net.multiaddrs().join(','),
  });

  return {
    cell,
    peerId: net.peerId.toString(),
    multiaddrs: () => net.multiaddrs(),
    conversations: () => negotiation.conversations(),
    deals: () => deals.deals(),
    ledger,
    metrics: () => ({
      net: net.metrics(),
      negotiation: negotiation.metrics(),
      deals: deals.metrics(),
      services: services.metrics(),
      bids: bidder.bids(),
      transactions: tx.sent(),
      ...(reserve ? { reserve: { ...reserve.metrics(), answers: reserve.answers() } } : {}),
    }),
    callForProposals: (request) => negotiation.callForProposals(request),
    requestShedding: (interval, shortfallWh) => services.requestShedding(interval, shortfallWh),
    reviseForecast: (interval, revision) => forecast.revise(interval, revision),
    tick: async () => {
      while (running) await running;
      await tick();
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      clearInterval(timer);
      while (running) await running;
      deals.stop();
      await reserve?.stop();
      directory.stop();
      await net.stop();
      await broker?.endAsync();
      logger.info('agent stopped', { cell });
    },
  };
}
