/**
 * Open deals after the contract net: the buyer's agent turns the seller meter's signed
 * readings (MQTT, oracle/messages) into cumulative vouchers and sends them to the seller; the
 * seller's agent checks each voucher and redeems the latest on chain once enough is owed, and
 * at the deal's end. Nothing happens on chain per interval unless the seller wants it
 * (`redeemThreshold`).
 */
import type { MqttClient } from 'mqtt';
import type { Address, Chain, Hex, LocalAccount, PublicClient, Transport } from 'viem';
import { debtChannelsAbi } from '../../chain/abi/contracts.generated.js';
import type { Logger } from '../../chain/logger/index.js';
import {
  type CompactSignature,
  type Deal,
  type GridcellDomain,
  type MeterReading,
  recoverMeterReadingSigner,
  recoverVoucherSigner,
  type Signed,
  signVoucher,
  toSignedReadingArg,
  toSignedVoucherArg,
  type Voucher,
} from '../../chain/typed-data/index.js';
import { amountFor } from '../../chain/units/index.js';
import { parseReadingMessage, topics } from '../../oracle/messages/index.js';
import type { BodyOf } from '../messages/index.js';
import type { AgentDirectory, AgentNet } from '../net/index.js';
import type { TxSender } from '../sender/index.js';
import { type ChannelClose, type CloseMetrics, createChannelCloser } from './closing.js';
import { handInFirstReading } from './firstReading.js';

export type { ChannelClose, CloseMetrics, CloseState } from './closing.js';

interface SignedReading {
  reading: MeterReading;
  signature: CompactSignature;
}

export interface OpenDeal {
  channel: Hex;
  deal: Deal;
  role: 'buyer' | 'seller';
  /** Buyer: the first and latest readings seen; seller: those the latest voucher carried. */
  firstReading?: SignedReading;
  latestReading?: SignedReading;
  /** The latest voucher signed (buyer) or received (seller). */
  voucher?: Signed<Voucher>;
  /** Seller: paid on chain so far. */
  paid: bigint;
  redeeming?: boolean;
  /** Buyer: subscribed to the seller meter's readings. */
  subscribed: boolean;
  /** The channel's close, once under way (docs/agent.md, "Closing the channel"). */
  close?: ChannelClose;
}

export interface DealMetrics extends CloseMetrics {
  readingsUsed: number;
  readingsRejected: number;
  vouchersSigned: number;
  vouchersReceived: number;
  vouchersRejected: number;
  redemptions: number;
}

export interface DealBook {
  add(deal: Deal, channel: Hex, role: 'buyer' | 'seller'): void;
  deals(): OpenDeal[];
  metrics(): DealMetrics;
  /** Moves the closes of finished deals on (each agent round). */
  tick(): Promise<void>;
  stop(): void;
}

export interface CreateDealBookParameters {
  cell: bigint;
  zone: string;
  chainId: number;
  account: LocalAccount;
  net: AgentNet;
  mqtt: MqttClient | undefined;
  directory: AgentDirectory;
  publicClient: PublicClient<Transport, Chain>;
  channels: Address;
  channelsDomain: GridcellDomain;
  tx: TxSender;
  redeemThreshold: bigint;
  /** The deployment's clock, Unix s, as the agent last read it. */
  now: () => number;
  intervalSeconds: bigint;
  /** How long the seller waits for the buyer's close signature (default 120 s). */
  closeAnswerSeconds?: number;
  /** How long after delivery the seller waits for the last voucher before closing (default 300 s). */
  finalVoucherWaitSeconds?: number;
  /** How long after delivery the buyer waits for the seller to close before it closes alone (default 900 s). */
  buyerCloseWaitSeconds?: number;
  logger: Logger;
}

const toReading = (r: BodyOf<'voucher'>['reading']): SignedReading => ({
  reading: { ...r.reading },
  signature: r.signature,
});

/** Creates the book of open deals and registers its handlers (MQTT readings, vouchers). */
export function createDealBook(parameters: CreateDealBookParameters): DealBook {
  const { cell, zone, chainId, account, net, mqtt, directory, publicClient, tx, logger } = parameters;
  const open = new Map<Hex, OpenDeal>();
  const byTopic = new Map<string, OpenDeal>();
  const metrics: Omit<DealMetrics, keyof CloseMetrics> = {
    readingsUsed: 0,
    readingsRejected: 0,
    vouchersSigned: 0,
    vouchersReceived: 0,
    vouchersRejected: 0,
    redemptions: 0,
  };

  async function onReading(topic: string, payload: Buffer) {
    const entry = byTopic.get(topic);
    if (!entry) return;
    const parsed = parseReadingMessage(payload);
    const { deal } = entry;
    const refuse = (reason: string) => {
      metrics.readingsRejected++;
      logger.warn('reading refused', { topic, reason });
    };
    if (!parsed.ok) return refuse(parsed.reason);
    const message = parsed.value;
    const r = message.reading;
    if (message.chainId !== chainId) return refuse(`chain ${message.chainId}, expected ${chainId}`);
    if (r.meter !== deal.sellerMeter || r.cell !== deal.sellerCell)
      return refuse(
        `reading of meter ${r.meter} cell ${r.cell}, expected ${deal.sellerMeter} cell ${deal.sellerCell}`,
      );
    if (r.interval < deal.firstInterval || r.interval > deal.lastInterval) return;
    const signer = await recoverMeterReadingSigner(parameters.channelsDomain, r, message.signatures.channels);
    if (signer !== r.meter) return refuse(`channels signature by ${signer}, expected the meter ${r.meter}`);
    const signed = { reading: r, signature: message.signatures.channels };
    if (!entry.firstReading || r.interval < entry.firstReading.reading.interval) entry.firstReading = signed;
    if (!entry.latestReading || r.interval > entry.latestReading.reading.interval)
      entry.latestReading = signed;
    metrics.readingsUsed++;
    await signNext(entry);
  }

  /** The buyer signs what it owes in all, as far as the readings prove it. */
  async function signNext(entry: OpenDeal) {
    const { deal, firstReading, latestReading } = entry;
    if (!firstReading || !latestReading) return;
    const baseline = firstReading.reading.exportCumWh - firstReading.reading.exportWh;
    const metered = latestReading.reading.exportCumWh - baseline;
    const contracted = deal.maxWhPerInterval * (latestReading.reading.interval - deal.firstInterval + 1n);
    const cumulativeWh = metered < contracted ? metered : contracted;
    const previous = entry.voucher?.message;
    if (previous && cumulativeWh <= previous.cumulativeWh) return;
    const voucher: Voucher = {
      channel: entry.channel,
      seq: (previous?.seq ?? 0) + 1,
      cumulativeWh,
      cumulativeAmount: amountFor(cumulativeWh, deal.pricePerKWh),
    };
    entry.voucher = await signVoucher(account, parameters.channelsDomain, voucher);
    metrics.vouchersSigned++;
    logger.info('voucher signed', {
      channel: entry.channel,
      seq: voucher.seq,
      wh: cumulativeWh,
      amount: voucher.cumulativeAmount,
      interval: latestReading.reading.interval,
    });
    await net.publish({
      type: 'voucher',
      to: deal.sellerCell,
      voucher,
      signature: entry.voucher.signature,
      reading: latestReading,
      firstReading,
    });
  }

  net.on('voucher', async (body, envelope) => {
    if (body.to !== cell) return;
    const entry = open.get(body.voucher.channel);
    const refuse = (reason: string) => {
      metrics.vouchersRejected++;
      logger.warn('voucher refused', { channel: body.voucher.channel, reason });
    };
    if (entry?.role !== 'seller') return refuse('no open deal of this cell as seller has this channel');
    const { deal } = entry;
    if (!('cell' in envelope.from) || envelope.from.cell !== deal.buyerCell)
      return refuse(`sent by ${JSON.stringify(envelope.from)}, expected the buyer cell ${deal.buyerCell}`);
    const voucher: Voucher = { ...body.voucher };
    if (entry.voucher && voucher.seq <= entry.voucher.message.seq)
      return refuse(`seq ${voucher.seq}, expected above ${entry.voucher.message.seq}`);
    const [signer, agent] = await Promise.all([
      recoverVoucherSigner(parameters.channelsDomain, voucher, body.signature),
      directory.agentOf(deal.buyerCell),
    ]);
    if (signer !== agent) return refuse(`signed by ${signer}, expected the buyer's agent ${agent}`);
    if (voucher.cumulativeAmount > amountFor(voucher.cumulativeWh, deal.pricePerKWh))
      return refuse(
        `amount ${voucher.cumulativeAmount} above ${voucher.cumulativeWh} Wh at the deal's price`,
      );
    for (const r of [body.reading, body.firstReading]) {
      const s = await recoverMeterReadingSigner(parameters.channelsDomain, { ...r.reading }, r.signature);
      if (s !== deal.sellerMeter)
        return refuse(`a reading is signed by ${s}, expected the meter ${deal.sellerMeter}`);
    }
    metrics.vouchersReceived++;
    entry.voucher = { message: voucher, signature: body.signature };
    entry.latestReading = toReading(body.reading);
    if (!entry.firstReading || body.firstReading.reading.interval < entry.firstReading.reading.interval)
      entry.firstReading = toReading(body.firstReading);
    const unpaid = voucher.cumulativeAmount - entry.paid;
    const atEnd = body.reading.reading.interval >= deal.lastInterval;
    if (unpaid > 0n && (unpaid >= parameters.redeemThreshold || atEnd)) await redeem(entry);
  });

  async function redeem(entry: OpenDeal) {
    if (entry.redeeming || !entry.voucher || !entry.latestReading || !entry.firstReading) return;
    entry.redeeming = true;
    const channels = { address: parameters.channels, abi: debtChannelsAbi } as const;
    try {
      const state = await publicClient.readContract({
        ...channels,
        functionName: 'channelOf',
        args: [entry.channel, entry.deal.sellerMeter],
      });
      await handInFirstReading({
        entry,
        baselineCumWh: state.baselineCumWh,
        channels: parameters.channels,
        tx,
      });
      const receipt = await tx.send({
        ...channels,
        functionName: 'redeem',
        args: [
          entry.deal,
          toSignedVoucherArg(entry.voucher),
          toSignedReadingArg({
            message: entry.latestReading.reading,
            signature: entry.latestReading.signature,
          }),
        ],
      });
      const after = await publicClient.readContract({
        ...channels,
        functionName: 'channelOf',
        args: [entry.channel, entry.deal.sellerMeter],
      });
      entry.paid = after.paid;
      metrics.redemptions++;
      logger.info('voucher redeemed', {
        channel: entry.channel,
        seq: entry.voucher.message.seq,
        paid: after.paid,
        transaction: receipt.transactionHash,
      });
    } catch (error) {
      logger.error('redeem failed', { channel: entry.channel, error });
    } finally {
      entry.redeeming = false;
    }
  }

  const closer = createChannelCloser({
    cell,
    account,
    net,
    directory,
    publicClient,
    channels: parameters.channels,
    channelsDomain: parameters.channelsDomain,
    tx,
    now: parameters.now,
    intervalSeconds: parameters.intervalSeconds,
    closeAnswerSeconds: parameters.closeAnswerSeconds ?? 120,
    finalVoucherWaitSeconds: parameters.finalVoucherWaitSeconds ?? 300,
    buyerCloseWaitSeconds: parameters.buyerCloseWaitSeconds ?? 900,
    deals: () => open.values(),
    deal: (channel) => open.get(channel),
    onClosed(entry) {
      if (entry.role !== 'buyer') return;
      // The deal is over: stop following the seller's meter.
      const topic = topics.reading(zone, entry.deal.sellerCell, entry.deal.sellerMeter);
      if (byTopic.get(topic) === entry) {
        byTopic.delete(topic);
        mqtt?.unsubscribe(topic);
      }
    },
    logger: logger.child('close'),
  });

  const onMessage = (topic: string, payload: Buffer) => {
    onReading(topic, payload).catch((error) => logger.error('reading handler failed', { topic, error }));
  };
  mqtt?.on('message', onMessage);

  return {
    add(deal, channel, role) {
      if (open.has(channel)) return;
      const entry: OpenDeal = { channel, deal, role, paid: 0n, subscribed: false };
      open.set(channel, entry);
      if (role === 'buyer') {
        const topic = topics.reading(zone, deal.sellerCell, deal.sellerMeter);
        byTopic.set(topic, entry);
        if (!mqtt) logger.warn('no MQTT broker: vouchers cannot follow the meter', { channel });
        mqtt?.subscribe(topic, { qos: 1 }, (error) => {
          if (error) logger.error('cannot subscribe to the seller meter', { topic, error });
          else entry.subscribed = true;
        });
      }
    },
    deals: () => [...open.values()],
    metrics: () => ({ ...metrics, ...closer.metrics() }),
    tick: () => closer.tick(),
    stop() {
      closer.stop();
      mqtt?.off('message', onMessage);
    },
  };
}
