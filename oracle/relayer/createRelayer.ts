/**
 * The settlement relayer: listens to every signed reading of a zone on MQTT, checks it,
 * keeps it, and once an interval's delivery has ended (and before its settlement window
 * closes) submits the readings of scheduled cells to the pool's `settle` in batches, then
 * `claim`s the interval's positions so the money moves. It also hands channel sellers the
 * readings their evidence path needs (a retained message per channel).
 *
 * It is safe to run several relayers, or to restart one: the pool ignores a position that
 * already has its reading, and the relayer checks positions before it spends gas.
 */
import mqtt, { type MqttClient } from 'mqtt';
import {
  type Account,
  type Address,
  type Chain,
  type Hex,
  isAddressEqual,
  type PublicClient,
  type Transport,
  type WalletClient,
} from 'viem';
import { cellRegistryAbi, clearingPoolAbi, debtChannelsAbi } from '../../chain/abi/contracts.generated.js';
import type { Clock } from '../../chain/clock/index.js';
import { ContractRevertError, decodeContractError } from '../../chain/errors/index.js';
import type { Logger } from '../../chain/logger/index.js';
import type { Manifest } from '../../chain/manifest/index.js';
import { type GridcellDomain, recoverMeterReadingSigner } from '../../chain/typed-data/index.js';
import { Side } from '../../chain/units/index.js';
import { parseReadingMessage, type ReadingMessage, topics } from '../messages/index.js';
import type { Metrics } from '../metrics/index.js';
import { settleWithin } from '../util/within.js';
import type { RelayedReading, RelayerStore } from './relayerStore.js';

const SCHEDULED = 1;
const REPORTED = 2;

export interface CreateRelayerParameters {
  id: string;
  zone: string;
  manifest: Manifest;
  publicClient: PublicClient<Transport, Chain>;
  /** Sends settle and claim; its account pays the gas. */
  walletClient: WalletClient<Transport, Chain, Account>;
  poolDomain: GridcellDomain;
  channelsDomain: GridcellDomain;
  store: RelayerStore;
  mqttUrl: string;
  clock: Clock;
  logger: Logger;
  metrics: Metrics;
  /** Readings per settle transaction. Default 50. */
  batchSize?: number;
  /** Real milliseconds between two settlement rounds. Default 2000. */
  pollMs?: number;
  /** Claim the interval's positions after settling. Default true. */
  claim?: boolean;
  /** Real milliseconds between two status lines. Default 60000. */
  statusMs?: number;
}

export interface Relayer {
  start(): Promise<void>;
  /** One settlement round (the timer calls it; tests may call it directly). */
  round(): Promise<void>;
  /** How many readings this relayer has accepted into its store since it started. */
  received(): number;
  status(): { connected: boolean; readings: Record<string, number> };
  stop(): Promise<void>;
}

/**
 * Creates the relayer; `start()` subscribes and starts the settlement rounds.
 * @example
 * const relayer = createRelayer({ id: 'r1', zone: 'z1', manifest, publicClient, walletClient, ... });
 * await relayer.start();
 */
export function createRelayer(parameters: CreateRelayerParameters): Relayer {
  const { store, logger, metrics, manifest, publicClient, walletClient, zone } = parameters;
  const pool = { address: manifest.contracts.pool, abi: clearingPoolAbi } as const;
  const registry = { address: manifest.contracts.registry, abi: cellRegistryAbi } as const;
  const channels = { address: manifest.contracts.channels, abi: debtChannelsAbi } as const;
  const L = manifest.pool.intervalSeconds;
  const windowSeconds = manifest.pool.settlementWindow;
  const batchSize = parameters.batchSize ?? 50;
  const statusTopic = topics.relayerStatus(zone, parameters.id);
  let client: MqttClient | undefined;
  const timers: NodeJS.Timeout[] = [];
  let running: Promise<void> | undefined;
  let stopped = false;
  let accepted = 0;
  /** A short-lived cache of the registry: meter → cell. */
  const meterCells = new Map<string, { cell: bigint; until: number }>();

  function reject(reason: string, topic: string, kind: string) {
    metrics.inc('readings_refused', { kind });
    logger.warn('reading refused', { topic, reason });
  }

  async function cellOfMeter(meter: Address): Promise<bigint> {
    const cached = meterCells.get(meter.toLowerCase());
    if (cached && cached.until > Date.now()) return cached.cell;
    const cell = await publicClient.readContract({ ...registry, functionName: 'cellOfMeter', args: [meter] });
    meterCells.set(meter.toLowerCase(), { cell, until: Date.now() + 30_000 });
    return cell;
  }

  async function onReading(topic: string, payload: Buffer) {
    const parsed = parseReadingMessage(payload);
    if (!parsed.ok) return reject(parsed.reason, topic, 'malformed');
    const message = parsed.value;
    const r = message.reading;
    if (message.chainId !== manifest.chainId) {
      return reject(
        `signed for chain ${message.chainId}, this deployment is on chain ${manifest.chainId}`,
        topic,
        'chain',
      );
    }
    if (r.importWh > r.importCumWh || r.exportWh > r.exportCumWh) {
      return reject('interval energy exceeds the cumulative counter', topic, 'inconsistent');
    }
    const [poolSigner, channelsSigner] = await Promise.all([
      recoverMeterReadingSigner(parameters.poolDomain, r, message.signatures.pool).catch(() => undefined),
      recoverMeterReadingSigner(parameters.channelsDomain, r, message.signatures.channels).catch(
        () => undefined,
      ),
    ]);
    if (
      !poolSigner ||
      !isAddressEqual(poolSigner, r.meter) ||
      !channelsSigner ||
      !isAddressEqual(channelsSigner, r.meter)
    ) {
      return reject(
        `a signature is not the meter's (${r.meter}) under this deployment's domains`,
        topic,
        'signature',
      );
    }
    let cell: bigint;
    try {
      cell = await cellOfMeter(r.meter);
    } catch (error) {
      // The node is away: keep nothing, the oracle's QoS 1 retry or the next reading will come.
      metrics.inc('rpc_failures');
      logger.warn('cannot check the meter on chain; reading not taken', { reason: (error as Error).message });
      return;
    }
    if (cell !== r.cell) {
      return reject(
        `meter ${r.meter} serves ${cell === 0n ? 'no cell' : `cell ${cell}`}, the reading names cell ${r.cell}`,
        topic,
        'meter',
      );
    }
    const added = store.addReading({
      meter: r.meter,
      cell: r.cell,
      interval: r.interval,
      seq: r.seq,
      payload: payload.toString('utf8'),
    });
    if (!added) {
      metrics.inc('readings_duplicate');
      return;
    }
    accepted++;
    metrics.inc('readings_accepted');
    publishEvidence(message);
  }

  function publishEvidence(message: ReadingMessage) {
    const r = message.reading;
    for (const c of store.channelsOfMeter(r.meter)) {
      if (r.interval < c.firstInterval || r.interval > c.lastInterval) continue;
      const readings = store.readingsOfMeter(r.meter, c.firstInterval, c.lastInterval);
      const first = readings[0];
      const last = readings[readings.length - 1];
      if (!first || !last) continue;
      const chosen = first === last ? [first] : [first, last];
      const payload = `{"v":1,"type":"evidence","channel":"${c.channel}","readings":[${chosen.map((x) => x.payload).join(',')}]}`;
      client?.publish(topics.channelEvidence(zone, c.channel), payload, { qos: 1, retain: true });
      metrics.inc('evidence_published');
    }
  }

  async function scanChannels() {
    // viem caches the block number for the client's polling interval: ask the node, or a
    // block mined a moment ago is not seen yet.
    const head = await publicClient.getBlockNumber({ cacheTime: 0 });
    const from = (store.channelsScannedTo() ?? manifest.deploymentBlock - 1n) + 1n;
    if (from > head) return;
    const logs = await publicClient.getContractEvents({
      ...channels,
      eventName: 'ChannelOpened',
      fromBlock: from,
      toBlock: head,
    });
    for (const log of logs) {
      const a = log.args;
      if (!a.channel || !a.sellerMeter || a.firstInterval === undefined || a.lastInterval === undefined)
        continue;
      store.addChannel({
        channel: a.channel,
        sellerMeter: a.sellerMeter,
        firstInterval: BigInt(a.firstInterval),
        lastInterval: BigInt(a.lastInterval),
      });
      logger.info('serving a channel seller', { channel: a.channel, sellerMeter: a.sellerMeter });
    }
    store.setChannelsScannedTo(head);
  }

  async function send(functionName: 'settle' | 'claim', args: readonly unknown[]): Promise<Hex> {
    try {
      const { request } = await publicClient.simulateContract({
        ...pool,
        functionName,
        args: args as never,
        account: walletClient.account,
      });
      const hash = await walletClient.writeContract(request as never);
      const receipt = await publicClient.waitForTransactionReceipt({ hash });
      if (receipt.status !== 'success') throw new Error(`${functionName} transaction ${hash} reverted`);
      return hash;
    } catch (error) {
      throw decodeContractError(error, functionName);
    }
  }

  const toArg = (r: RelayedReading) => {
    const m = parseReadingMessage(r.payload);
    if (!m.ok) throw new Error(`stored reading no longer parses: ${m.reason}`);
    return { reading: m.value.reading, r: m.value.signatures.pool.r, vs: m.value.signatures.pool.vs };
  };

  async function settleInterval(interval: bigint, now: bigint) {
    const deliveryEnd = (interval + 1n) * L;
    const windowEnd = deliveryEnd + windowSeconds;
    if (now < deliveryEnd) return;
    const pending = store.readingsOf(interval, 'pending');
    if (now >= windowEnd) {
      for (const r of pending)
        store.setStatus(r.meter, interval, 'expired', `settlement window closed at ${windowEnd}`);
      metrics.inc('readings_expired', {}, pending.length);
      logger.warn('settlement window closed before these readings could be submitted', {
        interval,
        readings: pending.length,
      });
      return;
    }
    const state = await publicClient.readContract({ ...pool, functionName: 'intervalOf', args: [interval] });
    if (!state.cleared) return; // wait for clearing, until the window closes
    const batch: RelayedReading[] = [];
    for (const r of pending) {
      const position = await publicClient.readContract({
        ...pool,
        functionName: 'positionOf',
        args: [interval, r.cell],
      });
      if ((position.flags & SCHEDULED) === 0) store.setStatus(r.meter, interval, 'unscheduled');
      else if ((position.flags & REPORTED) !== 0) store.setStatus(r.meter, interval, 'already-settled');
      else batch.push(r);
    }
    for (let i = 0; i < batch.length; i += batchSize) {
      await submit(interval, batch.slice(i, i + batchSize));
    }
  }

  /** Submits a batch; when the pool refuses it, finds the reading at fault one by one. */
  async function submit(interval: bigint, batch: RelayedReading[]) {
    try {
      const hash = await send('settle', [batch.map(toArg)]);
      for (const r of batch) store.setStatus(r.meter, interval, 'settled', undefined, hash);
      metrics.inc('readings_settled', {}, batch.length);
      metrics.inc('settle_transactions');
      logger.info('readings settled', { interval, readings: batch.length, transaction: hash });
    } catch (error) {
      if (!(error instanceof ContractRevertError)) {
        metrics.inc('rpc_failures');
        logger.warn('settle failed; will retry', { interval, reason: (error as Error).message });
        return;
      }
      if (batch.length > 1) {
        for (const r of batch) await submit(interval, [r]);
        return;
      }
      const [r] = batch;
      if (!r) return;
      store.setStatus(r.meter, interval, 'rejected', error.shortMessage);
      metrics.inc('readings_rejected');
      logger.warn('the pool refused a reading', {
        interval,
        meter: r.meter,
        cell: r.cell,
        reason: error.shortMessage,
      });
    }
  }

  async function claimInterval(interval: bigint, now: bigint) {
    const state = await publicClient.readContract({ ...pool, functionName: 'intervalOf', args: [interval] });
    const windowEnd = (interval + 1n) * L + windowSeconds;
    if (state.reportedCells < state.scheduledCells && now < windowEnd) return;
    const logs = await publicClient.getContractEvents({
      ...pool,
      eventName: 'OrderSubmitted',
      args: { interval },
      fromBlock: manifest.deploymentBlock,
    });
    // Buyers first: the pool pays sellers from what buyers paid in (PoolBuyersUnpaid otherwise).
    const buyers = new Set<bigint>();
    const sellers = new Set<bigint>();
    for (const l of logs) {
      if (l.args.cell === undefined) continue;
      (l.args.side === Side.Buy ? buyers : sellers).add(l.args.cell);
    }
    const cells = [...buyers, ...[...sellers].filter((c) => !buyers.has(c))];
    if (cells.length === 0) {
      store.markClaimed(interval, null);
      return;
    }
    try {
      const hash = await send('claim', [interval, cells]);
      store.markClaimed(interval, hash);
      metrics.inc('claim_transactions');
      logger.info('interval claimed: positions paid out', {
        interval,
        cells: cells.length,
        transaction: hash,
      });
    } catch (error) {
      metrics.inc('claim_failures');
      logger.warn('claim failed; will retry', { interval, reason: (error as Error).message });
    }
  }

  async function round() {
    if (stopped) return;
    if (running) return running;
    running = (async () => {
      const now = await parameters.clock.now();
      await scanChannels();
      for (const interval of store.pendingIntervals()) await settleInterval(interval, now);
      if (parameters.claim ?? true) {
        for (const interval of store.unclaimedIntervals()) await claimInterval(interval, now);
      }
    })()
      .catch((error: Error) => {
        metrics.inc('round_failures');
        logger.warn('settlement round failed; will retry', { reason: error.message });
      })
      .finally(() => {
        running = undefined;
      });
    return running;
  }

  function statusLine() {
    const readings = store.countByStatus();
    logger.info('status', {
      mqtt: client?.connected ? 'connected' : 'disconnected',
      ...readings,
      refused: sumRefused(),
    });
    client?.publish(
      statusTopic,
      JSON.stringify({ v: 1, type: 'status', state: 'online', detail: { readings } }),
      { qos: 1, retain: true },
    );
  }
  const sumRefused = () =>
    Object.entries(metrics.snapshot())
      .filter(([k]) => k.includes('_readings_refused'))
      .reduce((a, [, v]) => a + v, 0);

  return {
    async start() {
      await scanChannels();
      client = mqtt.connect(parameters.mqttUrl, {
        // A persistent session under a stable id: the broker keeps QoS 1 readings published
        // while the relayer was away and delivers them when it reconnects.
        clientId: `gridcell-relayer-${parameters.id}`,
        clean: false,
        reconnectPeriod: 1000,
        connectTimeout: 5000,
        will: {
          topic: statusTopic,
          payload: Buffer.from(JSON.stringify({ v: 1, type: 'status', state: 'offline' })),
          qos: 1,
          retain: true,
        },
      });
      client.on('message', (topic, payload) => {
        onReading(topic, payload).catch((error: Error) => {
          metrics.inc('handler_failures');
          logger.error('handling a reading failed', { topic, reason: error.message });
        });
      });
      client.on('connect', () => {
        logger.info('connected to the MQTT broker', { url: parameters.mqttUrl });
        statusLine();
      });
      client.on('offline', () => logger.warn('MQTT broker unreachable; reconnecting'));
      client.on('error', (error) => logger.warn('MQTT error', { reason: error.message }));
      await new Promise<void>((resolve) => client?.once('connect', () => resolve()));
      // With a resumed session the subscription exists already; subscribing again is harmless.
      await client.subscribeAsync(topics.allReadings(zone), { qos: 1 });
      timers.push(setInterval(() => void round(), parameters.pollMs ?? 2000));
      timers.push(setInterval(statusLine, parameters.statusMs ?? 60_000));
    },
    round,
    received: () => accepted,
    status: () => ({ connected: client?.connected ?? false, readings: store.countByStatus() }),
    async stop() {
      if (stopped) return;
      stopped = true;
      for (const t of timers) clearInterval(t);
      await running;
      // A broker that just died may still look connected: nothing here waits for it for long.
      if (client?.connected) {
        await settleWithin(
          2000,
          client.publishAsync(statusTopic, JSON.stringify({ v: 1, type: 'status', state: 'offline' }), {
            qos: 1,
            retain: true,
          }),
        );
      }
      if (client) await settleWithin(2000, client.endAsync(true));
      store.close();
      logger.info('stopped');
    },
  };
}
