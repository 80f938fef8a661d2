/**
 * Service applications (IDEA P2O) from the cell's side: discovery and on-chain subscription
 * (plug & play), demand response (decide by the owner's profile, commit the reduction in the
 * dispatch ledger, command the loads over MQTT) and load shedding (ask the service for a plan,
 * open the relays over MQTT).
 *
 * MQTT commands (retained off, QoS 1), for the cell's energy ports and relays:
 * - `gridcell/v1/{zone}/commands/{cell}/loads`: `{v:1, type:'load-command', interval, reduceWh, event}`
 * - `gridcell/v1/{zone}/commands/{cell}/relays/{load}`: `{v:1, type:'relay', state:'open', interval, request}`
 */
import { randomBytes } from 'node:crypto';
import type { MqttClient } from 'mqtt';
import type { Address } from 'viem';
import { cellRegistryAbi } from '../../chain/abi/contracts.generated.js';
import type { Logger } from '../../chain/logger/index.js';
import type { Forecast } from '../bidding/forecast.js';
import type { AgentConfig } from '../config/index.js';
import type { DispatchLedger } from '../dispatch/index.js';
import type { AgentDirectory, AgentNet } from '../net/index.js';
import type { TxSender } from '../sender/index.js';

/** Topics of the commands an agent sends to its cell's equipment. */
export const commandTopics = {
  loads: (zone: string, cell: bigint) => `gridcell/v1/${zone}/commands/${cell}/loads`,
  relay: (zone: string, cell: bigint, load: string) => `gridcell/v1/${zone}/commands/${cell}/relays/${load}`,
} as const;

export type ServiceKind = 'demand-response' | 'load-shedding';

export interface ServiceMetrics {
  announcementsSeen: number;
  subscribed: number;
  drEventsSeen: number;
  drResponses: number;
  drDeclined: number;
  drAwards: number;
  drPaid: bigint;
  shedRequests: number;
  relayCommands: number;
  loadCommands: number;
}

export interface CellServices {
  /** Known services by kind. */
  known(): Map<Address, ServiceKind>;
  /** Asks the load-shedding service for a plan for a shortfall in `interval`. */
  requestShedding(interval: bigint, shortfallWh: bigint): Promise<string | undefined>;
  metrics(): ServiceMetrics;
}

export interface CreateCellServicesParameters {
  cell: bigint;
  zone: string;
  meter: Address;
  config: AgentConfig;
  net: AgentNet;
  mqtt: MqttClient | undefined;
  directory: AgentDirectory;
  ledger: DispatchLedger;
  forecast: Forecast;
  registry: Address;
  tx: TxSender;
  logger: Logger;
}

/** Creates the cell's side of the service applications and registers its handlers. */
export function createCellServices(parameters: CreateCellServicesParameters): CellServices {
  const { cell, zone, meter, config, net, mqtt, directory, ledger, forecast, tx, logger } = parameters;
  const known = new Map<Address, ServiceKind>();
  const subscribing = new Set<Address>();
  const metrics: ServiceMetrics = {
    announcementsSeen: 0,
    subscribed: 0,
    drEventsSeen: 0,
    drResponses: 0,
    drDeclined: 0,
    drAwards: 0,
    drPaid: 0n,
    shedRequests: 0,
    relayCommands: 0,
    loadCommands: 0,
  };

  function command(topic: string, payload: unknown) {
    if (!mqtt) {
      logger.warn('no MQTT broker: command not sent', { topic });
      return;
    }
    mqtt.publish(
      topic,
      JSON.stringify(payload, (_k, v) => (typeof v === 'bigint' ? v.toString() : v)),
      { qos: 1 },
    );
  }

  net.on('service-announce', async (body, envelope) => {
    if (!('service' in envelope.from)) return;
    const service = envelope.from.service;
    metrics.announcementsSeen++;
    if (!known.has(service))
      logger.info('service discovered', { service, kind: body.kind, description: body.description });
    known.set(service, body.kind);
    if (!config.services.subscribe.includes(body.kind) || subscribing.has(service)) return;
    subscribing.add(service);
    if (await directory.isSubscribed(cell, service)) return;
    try {
      const receipt = await tx.send({
        address: parameters.registry,
        abi: cellRegistryAbi,
        functionName: 'subscribe',
        args: [cell, service],
      });
      directory.invalidate(cell);
      metrics.subscribed++;
      logger.info('subscribed to service', {
        service,
        kind: body.kind,
        transaction: receipt.transactionHash,
      });
    } catch (error) {
      subscribing.delete(service);
      logger.error('cannot subscribe to service', { service, error });
    }
  });

  net.on('dr-event', async (body, envelope) => {
    if (!('service' in envelope.from)) return;
    const service = envelope.from.service;
    metrics.drEventsSeen++;
    const decline = (reason: string) => {
      metrics.drDeclined++;
      logger.info('demand-response event declined', { event: body.event, reason });
    };
    if (!(await directory.isSubscribed(cell, service))) return decline(`not subscribed to ${service}`);
    const minPrice = config.preferences.minDemandResponsePrice;
    if (minPrice === undefined) return decline('the owner takes part in no demand response');
    if (body.pricePerKWh < minPrice)
      return decline(`price ${body.pricePerKWh} below the owner's ${minPrice}`);
    const free = ledger.available(body.interval, 'reduction');
    const offered = free < body.requestedReductionWh ? free : body.requestedReductionWh;
    if (offered === 0n) return decline('no flexible load left in that interval');
    ledger.commit({
      key: `dr:${body.event}`,
      service: 'demand-response',
      interval: body.interval,
      direction: 'reduction',
      wh: offered,
    });
    metrics.drResponses++;
    const f = forecast.at(body.interval);
    logger.info('demand-response offer', { event: body.event, interval: body.interval, wh: offered });
    await net.publish({
      type: 'dr-response',
      event: body.event,
      to: service,
      offeredWh: offered,
      baselineImportWh: f.loadWh > f.generationWh ? f.loadWh - f.generationWh : 0n,
      meter,
    });
  });

  net.on('dr-award', (body) => {
    if (body.to !== cell) return;
    metrics.drAwards++;
    const key = `dr:${body.event}`;
    if (body.awardedWh === 0n) {
      ledger.release(key);
      return;
    }
    try {
      ledger.resize(key, body.interval, 'reduction', body.awardedWh);
    } catch (error) {
      logger.warn('award beyond the offer', { event: body.event, error });
      return;
    }
    metrics.loadCommands++;
    logger.info('demand response awarded: loads commanded', {
      event: body.event,
      interval: body.interval,
      wh: body.awardedWh,
    });
    command(commandTopics.loads(zone, cell), {
      v: 1,
      type: 'load-command',
      interval: body.interval,
      reduceWh: body.awardedWh,
      event: body.event,
    });
  });

  net.on('dr-settled', (body) => {
    if (body.to !== cell) return;
    metrics.drPaid += body.amount;
    logger.info('demand response paid', {
      event: body.event,
      verifiedWh: body.verifiedWh,
      amount: body.amount,
      transaction: body.transaction,
    });
  });

  net.on('shed-plan', (body) => {
    if (body.to !== cell) return;
    for (const load of body.open) {
      metrics.relayCommands++;
      command(commandTopics.relay(zone, cell, load), {
        v: 1,
        type: 'relay',
        state: 'open',
        interval: body.interval,
        request: body.request,
      });
    }
    logger.warn('load shedding: relays opened', {
      interval: body.interval,
      loads: body.open.join(','),
      wh: body.shedWh,
      covers: body.coversShortfall,
    });
  });

  return {
    known: () => new Map(known),
    async requestShedding(interval, shortfallWh) {
      const service = [...known].find(([, kind]) => kind === 'load-shedding')?.[0];
      if (!service) {
        logger.error('cannot hold the balance and no load-shedding service is known', {
          interval,
          shortfallWh,
        });
        return undefined;
      }
      if (config.loads.length === 0) {
        logger.error('cannot hold the balance and the owner listed no loads to shed', {
          interval,
          shortfallWh,
        });
        return undefined;
      }
      const request = randomBytes(8).toString('hex');
      metrics.shedRequests++;
      logger.warn('asking for a load-shedding plan', { interval, shortfallWh, service });
      await net.publish({
        type: 'shed-request',
        request,
        to: service,
        interval,
        shortfallWh,
        loads: config.loads,
      });
      return request;
    },
    metrics: () => ({ ...metrics }),
  };
}
