/**
 * The service operators' side (P2O), for the demo and the tests: a demand-response operator
 * and a load-shedding service, each speaking on the services topic under its own key.
 *
 * Demand response: the operator announces an event, collects offers until the deadline,
 * awards greedily (largest offer first) up to the requested reduction, then verifies each
 * awarded cell's meter reading of the interval (the meter's signature under the pool's domain,
 * and the registry's cellOfMeter) and pays `min(awarded, baseline - imported) x price` into the
 * cell's wallet on chain (CellWallets.deposit). The baseline is the lower of the cell's declared
 * one and the mean import of the readings the operator saw from that meter before.
 *
 * Load shedding: for a request it opens the lowest-priority loads first until the shortfall is
 * covered.
 */
import { randomBytes } from 'node:crypto';
import type { MqttClient } from 'mqtt';
import type { Address, Chain, Hex, PublicClient, Transport } from 'viem';
import { cellRegistryAbi, cellWalletsAbi, devnetTokenAbi } from '../../chain/abi/contracts.generated.js';
import type { Logger } from '../../chain/logger/index.js';
import { type GridcellDomain, recoverMeterReadingSigner } from '../../chain/typed-data/index.js';
import { amountFor } from '../../chain/units/index.js';
import { parseReadingMessage, topics } from '../../oracle/messages/index.js';
import type { AgentNet } from '../net/index.js';
import type { TxSender } from '../sender/index.js';

interface Award {
  cell: bigint;
  meter: Address;
  awardedWh: bigint;
  baselineWh: bigint;
  settled: boolean;
}

interface DrEvent {
  id: string;
  interval: bigint;
  requestedWh: bigint;
  price: bigint;
  deadline: number;
  offers: Array<{ cell: bigint; offeredWh: bigint; baselineWh: bigint; meter: Address }>;
  awards: Award[];
  awarded: boolean;
}

export interface DemandResponseOperator {
  announce(): Promise<void>;
  callEvent(request: {
    interval: bigint;
    requestedReductionWh: bigint;
    pricePerKWh: bigint;
    windowSeconds: number;
  }): Promise<string>;
  tick(): Promise<void>;
  events(): Array<Omit<DrEvent, 'offers'> & { offers: number }>;
  stop(): void;
}

export interface CreateDemandResponseOperatorParameters {
  zone: string;
  chainId: number;
  net: AgentNet;
  mqtt: MqttClient;
  publicClient: PublicClient<Transport, Chain>;
  contracts: { registry: Address; wallets: Address; token: Address };
  poolDomain: GridcellDomain;
  tx: TxSender;
  now: () => number;
  logger: Logger;
}

/** Creates a demand-response operator on an existing service network node. */
export function createDemandResponseOperator(
  parameters: CreateDemandResponseOperatorParameters,
): DemandResponseOperator {
  const { zone, chainId, net, mqtt, publicClient, contracts, tx, now, logger } = parameters;
  const events = new Map<string, DrEvent>();
  const history = new Map<string, bigint[]>();

  net.on('dr-response', (body, envelope) => {
    const event = events.get(body.event);
    if (!event || event.awarded || !('cell' in envelope.from)) return;
    const cell = envelope.from.cell;
    if (event.offers.some((o) => o.cell === cell)) return;
    event.offers.push({
      cell,
      offeredWh: body.offeredWh,
      baselineWh: body.baselineImportWh,
      meter: body.meter,
    });
  });

  async function onReading(topic: string, payload: Buffer) {
    const parsed = parseReadingMessage(payload);
    if (!parsed.ok || parsed.value.chainId !== chainId) return;
    const r = parsed.value.reading;
    const signer = await recoverMeterReadingSigner(parameters.poolDomain, r, parsed.value.signatures.pool);
    if (signer !== r.meter) {
      logger.warn('reading with a bad signature', { topic, signer, meter: r.meter });
      return;
    }
    const key = r.meter.toLowerCase();
    for (const event of events.values()) {
      if (event.interval !== r.interval) continue;
      const award = event.awards.find((a) => a.cell === r.cell && a.meter === r.meter && !a.settled);
      if (award) await settle(event, award, r.importWh);
    }
    const past = history.get(key) ?? [];
    past.push(r.importWh);
    history.set(key, past.slice(-4));
  }

  async function settle(event: DrEvent, award: Award, importedWh: bigint) {
    const cellOfMeter = await publicClient.readContract({
      address: contracts.registry,
      abi: cellRegistryAbi,
      functionName: 'cellOfMeter',
      args: [award.meter],
    });
    if (cellOfMeter !== award.cell) {
      logger.warn("meter is not the cell's", {
        event: event.id,
        meter: award.meter,
        cell: award.cell,
        cellOfMeter,
      });
      return;
    }
    award.settled = true;
    const past = history.get(award.meter.toLowerCase()) ?? [];
    const mean = past.length > 0 ? past.reduce((a, b) => a + b, 0n) / BigInt(past.length) : award.baselineWh;
    const baseline = mean < award.baselineWh ? mean : award.baselineWh;
    const reduced = baseline > importedWh ? baseline - importedWh : 0n;
    const verifiedWh = reduced < award.awardedWh ? reduced : award.awardedWh;
    const amount = amountFor(verifiedWh, event.price);
    let transaction: Hex | undefined;
    if (amount > 0n) {
      await tx.send({
        address: contracts.token,
        abi: devnetTokenAbi,
        functionName: 'approve',
        args: [contracts.wallets, amount],
      });
      const receipt = await tx.send({
        address: contracts.wallets,
        abi: cellWalletsAbi,
        functionName: 'deposit',
        args: [award.cell, amount],
      });
      transaction = receipt.transactionHash;
    }
    logger.info('demand response verified and paid', {
      event: event.id,
      cell: award.cell,
      baseline,
      importedWh,
      verifiedWh,
      amount,
      transaction,
    });
    await net.publish({
      type: 'dr-settled',
      event: event.id,
      to: award.cell,
      verifiedWh,
      amount,
      ...(transaction ? { transaction } : {}),
    });
  }

  const onMessage = (topic: string, payload: Buffer) => {
    onReading(topic, payload).catch((error) => logger.error('reading handler failed', { topic, error }));
  };
  mqtt.on('message', onMessage);
  mqtt.subscribe(topics.allReadings(zone), { qos: 1 });

  return {
    announce: async () => {
      await net.publish({
        type: 'service-announce',
        kind: 'demand-response',
        description: `demand response, zone ${zone}`,
      });
    },
    async callEvent({ interval, requestedReductionWh, pricePerKWh, windowSeconds }) {
      const id = randomBytes(8).toString('hex');
      const event: DrEvent = {
        id,
        interval,
        requestedWh: requestedReductionWh,
        price: pricePerKWh,
        deadline: now() + windowSeconds,
        offers: [],
        awards: [],
        awarded: false,
      };
      events.set(id, event);
      logger.info('demand-response event', {
        event: id,
        interval,
        wh: requestedReductionWh,
        price: pricePerKWh,
      });
      await net.publish({
        type: 'dr-event',
        event: id,
        interval,
        requestedReductionWh,
        pricePerKWh,
        deadline: event.deadline,
      });
      return id;
    },
    async tick() {
      for (const event of events.values()) {
        if (event.awarded || now() < event.deadline) continue;
        event.awarded = true;
        let left = event.requestedWh;
        for (const offer of [...event.offers].sort((a, b) => (a.offeredWh > b.offeredWh ? -1 : 1))) {
          const awardedWh = offer.offeredWh < left ? offer.offeredWh : left;
          left -= awardedWh;
          if (awardedWh > 0n)
            event.awards.push({
              cell: offer.cell,
              meter: offer.meter,
              awardedWh,
              baselineWh: offer.baselineWh,
              settled: false,
            });
          await net.publish({
            type: 'dr-award',
            event: event.id,
            to: offer.cell,
            awardedWh,
            interval: event.interval,
          });
        }
        logger.info('demand-response awards', {
          event: event.id,
          offers: event.offers.length,
          awardedWh: event.requestedWh - left,
        });
      }
    },
    events: () => [...events.values()].map((e) => ({ ...e, offers: e.offers.length })),
    stop() {
      mqtt.off('message', onMessage);
    },
  };
}

export interface LoadSheddingService {
  announce(): Promise<void>;
  plans(): number;
}

/** Creates a load-shedding service on an existing service network node. */
export function createLoadSheddingService(parameters: {
  zone: string;
  net: AgentNet;
  service: Address;
  logger: Logger;
}): LoadSheddingService {
  const { zone, net, service, logger } = parameters;
  let plans = 0;
  net.on('shed-request', async (body, envelope) => {
    if (body.to !== service || !('cell' in envelope.from)) return;
    const open: string[] = [];
    let shed = 0n;
    for (const load of [...body.loads].sort((a, b) => a.priority - b.priority)) {
      if (shed >= body.shortfallWh) break;
      open.push(load.id);
      shed += load.wh;
    }
    plans++;
    logger.info('load-shedding plan', {
      cell: envelope.from.cell,
      interval: body.interval,
      loads: open.join(','),
      wh: shed,
    });
    await net.publish({
      type: 'shed-plan',
      request: body.request,
      to: envelope.from.cell,
      interval: body.interval,
      open,
      shedWh: shed,
      coversShortfall: shed >= body.shortfallWh,
    });
  });
  return {
    announce: async () => {
      await net.publish({
        type: 'service-announce',
        kind: 'load-shedding',
        description: `load shedding, zone ${zone}`,
      });
    },
    plans: () => plans,
  };
}
