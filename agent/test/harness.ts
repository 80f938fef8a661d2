/**
 * Agents against the shared anvil and a real broker, for the agent tests: start an agent for a
 * test cell, publish meter readings as the oracle does, read the pool's orders and a cell's
 * wallet.
 */
import mqtt, { type MqttClient } from 'mqtt';
import { createTestClient, http, parseEther } from 'viem';
import { cellWalletsAbi, clearingPoolAbi } from '../../chain/abi/contracts.generated.js';
import { createGridcellClients } from '../../chain/client/index.js';
import { chainClock } from '../../chain/clock/index.js';
import type { Kit, TestCell } from '../../chain/test/kit.js';
import { type MeterReading, signMeterReading } from '../../chain/typed-data/index.js';
import { type MqttBroker, startMqttBroker } from '../../oracle/broker/index.js';
import { encodeReadingMessage, topics } from '../../oracle/messages/index.js';
import { type AgentConfigInput, parseAgentConfig } from '../config/index.js';
import { type Agent, createAgent } from '../index.js';
import { testLogger } from './helpers.js';

export interface AgentHarness {
  /** The harness's broker, for tests that publish as another system (the grid controller). */
  mqttUrl: string;
  startAgent(cell: TestCell, overrides: Partial<AgentConfigInput>, bootstrap?: string[]): Promise<Agent>;
  /** Publishes a meter reading signed for both contracts, as the oracle does. */
  publishReading(cell: TestCell, reading: Omit<MeterReading, 'meter' | 'cell'>): Promise<void>;
  /** The pool's orders of an interval, by cell (the last one a cell submitted). */
  ordersOf(
    interval: bigint,
  ): Promise<
    Map<bigint, { nonce?: number | undefined; energyWh?: bigint | undefined; side?: number | undefined }>
  >;
  /** Cancellations of an interval: `cell:nonce`. */
  cancellationsOf(interval: bigint): Promise<string[]>;
  /**
   * Moves chain time to `to` and lets each running agent read it (one round each) before the
   * caller goes on. An agent ignores messages stamped more than 30 s ahead of its own clock:
   * jump at most that far past a moment when an agent sends by itself (a deadline).
   */
  setTime(to: bigint, agents?: Agent[]): Promise<void>;
  /** A cell's available wallet balance (base units). */
  available(cell: TestCell): Promise<bigint>;
  close(): Promise<void>;
}

/** Starts a broker and gives the helpers; `close` stops every agent started and the broker. */
export async function createAgentHarness(kit: Kit, zone: string): Promise<AgentHarness> {
  const testClient = createTestClient({ chain: kit.chain, mode: 'anvil', transport: http(kit.rpcUrl) });
  const log = testLogger(zone);
  const broker: MqttBroker = await startMqttBroker();
  const publisher: MqttClient = await mqtt.connectAsync(broker.url);
  const agents: Agent[] = [];
  const pool = { address: kit.manifest.contracts.pool, abi: clearingPoolAbi } as const;
  return {
    mqttUrl: broker.url,
    async startAgent(cell, overrides, bootstrap = []) {
      await testClient.setBalance({ address: cell.agent.address, value: parseEther('10') });
      const config = parseAgentConfig({
        cell: cell.id.toString(),
        zone,
        meter: cell.meter.address,
        profile: { loadWh: [0], generationWh: [0] },
        preferences: { minSellPrice: '100000', maxBuyPrice: '300000' },
        tickMs: 50,
        ...overrides,
      });
      const agent = await createAgent({
        config,
        account: cell.agent,
        manifest: kit.manifest,
        clients: createGridcellClients({
          manifest: kit.manifest,
          account: cell.agent,
          pollingIntervalMs: 20,
        }),
        clock: chainClock(kit.publicClient),
        logger: log.child(`cell-${cell.id}`),
        mqttUrl: broker.url,
        bootstrap,
      });
      agents.push(agent);
      return agent;
    },
    async publishReading(cell, reading) {
      const full: MeterReading = { meter: cell.meter.address, cell: cell.id, ...reading };
      const [poolSigned, channelsSigned] = await Promise.all([
        signMeterReading(cell.meter, kit.poolDomain, full),
        signMeterReading(cell.meter, kit.channelsDomain, full),
      ]);
      await publisher.publishAsync(
        topics.reading(zone, cell.id, cell.meter.address),
        encodeReadingMessage({
          v: 1,
          type: 'reading',
          chainId: kit.manifest.chainId,
          reading: full,
          signatures: { pool: poolSigned.signature, channels: channelsSigned.signature },
          producedAt: Number(await kit.chainTime()),
        }),
        { qos: 1 },
      );
    },
    async ordersOf(interval) {
      const logs = await kit.publicClient.getContractEvents({
        ...pool,
        eventName: 'OrderSubmitted',
        args: { interval },
        fromBlock: kit.manifest.deploymentBlock,
      });
      return new Map(logs.map((l) => [l.args.cell ?? 0n, l.args]));
    },
    async cancellationsOf(interval) {
      const logs = await kit.publicClient.getContractEvents({
        ...pool,
        eventName: 'OrderCancelled',
        args: { interval },
        fromBlock: kit.manifest.deploymentBlock,
      });
      return logs.map((l) => `${l.args.cell}:${l.args.nonce}`);
    },
    async setTime(to, running = agents) {
      await kit.setChainTime(to);
      await Promise.all(running.map((a) => a.tick()));
    },
    async available(cell) {
      const [available] = await kit.publicClient.readContract({
        address: kit.manifest.contracts.wallets,
        abi: cellWalletsAbi,
        functionName: 'balanceOf',
        args: [cell.id],
      });
      return available;
    },
    async close() {
      await Promise.all(agents.map((a) => a.stop()));
      await publisher.endAsync();
      await broker.close();
    },
  };
}
