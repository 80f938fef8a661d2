import mqtt, { type MqttClient } from 'mqtt';
import { createTestClient, http, type LocalAccount, parseEther } from 'viem';
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { clearingPoolAbi, debtChannelsAbi, devnetTokenAbi } from '../chain/abi/contracts.generated.js';
import { createGridcellClients } from '../chain/client/index.js';
import { chainClock } from '../chain/clock/index.js';
import { type TestCell, useKit } from '../chain/test/kit.js';
import { type MeterReading, signMeterReading } from '../chain/typed-data/index.js';
import { CellType } from '../chain/units/index.js';
import { type MqttBroker, startMqttBroker } from '../oracle/broker/index.js';
import { encodeReadingMessage, topics } from '../oracle/messages/index.js';
import { type AgentConfigInput, parseAgentConfig } from './config/index.js';
import { type Agent, createAgent } from './index.js';
import { createAgentDirectory, createAgentNet } from './net/index.js';
import { createTxSender } from './sender/index.js';
import { commandTopics } from './services/index.js';
import { createDemandResponseOperator, createLoadSheddingService } from './services/operators.js';
import { testLogger, waitFor } from './test/helpers.js';

const kit = useKit();
const testClient = createTestClient({ chain: kit.chain, mode: 'anvil', transport: http(kit.rpcUrl) });
const zone = 'agent-test';
const L = kit.manifest.pool.intervalSeconds;
const log = testLogger('agent-test');
const agents: Agent[] = [];
const cleanups: Array<() => Promise<void> | void> = [];
let broker: MqttBroker;
let observer: MqttClient;

beforeAll(async () => {
  broker = await startMqttBroker();
  observer = await mqtt.connectAsync(broker.url);
});
afterAll(async () => {
  await Promise.all(agents.map((a) => a.stop()));
  for (const c of cleanups) await c();
  await observer.endAsync();
  await broker.close();
});

async function startAgent(cell: TestCell, overrides: Partial<AgentConfigInput>, bootstrap: string[] = []) {
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
  const clients = createGridcellClients({
    manifest: kit.manifest,
    account: cell.agent,
    pollingIntervalMs: 20,
  });
  const agent = await createAgent({
    config,
    account: cell.agent,
    manifest: kit.manifest,
    clients,
    clock: chainClock(kit.publicClient),
    logger: log.child(`cell-${cell.id}`),
    mqttUrl: broker.url,
    bootstrap,
  });
  agents.push(agent);
  return agent;
}

/** Publishes a meter reading signed for both contracts, as the oracle does. */
async function publishReading(cell: TestCell, reading: Omit<MeterReading, 'meter' | 'cell'>) {
  const full: MeterReading = { meter: cell.meter.address, cell: cell.id, ...reading };
  const [pool, channels] = await Promise.all([
    signMeterReading(cell.meter, kit.poolDomain, full),
    signMeterReading(cell.meter, kit.channelsDomain, full),
  ]);
  await observer.publishAsync(
    topics.reading(zone, cell.id, cell.meter.address),
    encodeReadingMessage({
      v: 1,
      type: 'reading',
      chainId: kit.manifest.chainId,
      reading: full,
      signatures: { pool: pool.signature, channels: channels.signature },
      producedAt: Number(await kit.chainTime()),
    }),
    { qos: 1 },
  );
}

async function ordersOf(interval: bigint) {
  const logs = await kit.publicClient.getContractEvents({
    address: kit.manifest.contracts.pool,
    abi: clearingPoolAbi,
    eventName: 'OrderSubmitted',
    args: { interval },
    fromBlock: kit.manifest.deploymentBlock,
  });
  return new Map(logs.map((l) => [l.args.cell ?? 0n, l.args]));
}

describe('agents', () => {
  let seller: TestCell;
  let buyer: TestCell;
  let sellerAgent: Agent;
  let buyerAgent: Agent;
  let c: bigint;
  let channel: `0x${string}`;

  test('a contract-net round ends in a channel on chain, and the pool gets only what the deal left', async () => {
    [seller, buyer] = await Promise.all([kit.newCell(CellType.Prosumer), kit.newCell(CellType.Prosumer)]);
    // A fresh interval, 10 s in: the pool's gate for the next one is open.
    const start = ((await kit.chainTime()) / L + 2n) * L + 10n;
    await kit.setChainTime(start);
    c = start / L;
    sellerAgent = await startAgent(seller, {
      profile: { loadWh: [200], generationWh: [1200] },
      preferences: { minSellPrice: '100000', maxBuyPrice: '300000', dealPrice: '150000' },
    });
    buyerAgent = await startAgent(
      buyer,
      {
        profile: { loadWh: [600], generationWh: [0] },
        deals: { buy: { maxWhPerInterval: '500', intervals: 2, leadIntervals: 2 }, cfpWindowSeconds: 30 },
      },
      sellerAgent.multiaddrs(),
    );
    await waitFor('the agents to meet', () => sellerAgent.metrics().net.peers >= 1);
    // Both bid the whole forecast into the next interval (no deal there)...
    await waitFor('the orders of interval c+1', async () => (await ordersOf(c + 1n)).size === 2);
    const first = await ordersOf(c + 1n);
    expect(first.get(seller.id)?.energyWh).toBe(1000n);
    expect(first.get(buyer.id)?.energyWh).toBe(600n);
    // ...and the buyer calls for 500 Wh in c+2 and c+3; the seller proposes.
    const conversation = await waitFor('a proposal', () =>
      buyerAgent.conversations().find((x) => x.role === 'initiator' && x.proposals.size === 1),
    );
    expect(conversation.firstInterval).toBe(c + 2n);
    expect(sellerAgent.ledger.available(c + 2n, 'export')).toBe(500n);
    // The deadline passes: the buyer accepts, the seller opens the channel.
    // In two steps, each agent reading the clock after each: a message stamped more than 30 s
    // ahead of the receiver's clock is ignored, and the buyer accepts in the round that passes
    // the deadline.
    await kit.setChainTime(BigInt(conversation.deadline) - 10n);
    await Promise.all([sellerAgent.tick(), buyerAgent.tick()]);
    await kit.setChainTime(BigInt(conversation.deadline) + 1n);
    const done = await waitFor('the deal to open on both sides', () => {
      const b = buyerAgent.conversations().find((x) => x.id === conversation.id);
      const s = sellerAgent.conversations().find((x) => x.id === conversation.id);
      return b?.state === 'open' && s?.state === 'open' ? b : undefined;
    });
    channel = done.channel ?? '0x';
    const state = await kit.publicClient.readContract({
      address: kit.manifest.contracts.channels,
      abi: debtChannelsAbi,
      functionName: 'channelOf',
      args: [channel, seller.meter.address],
    });
    expect(state.status).toBe(1);
    // 2 intervals x 500 Wh at 0.15 per kWh, in base units.
    expect(state.collateral).toBe(150_000n);
    // The next interval's pool orders carry only what the deal left: 1000 - 500 and 600 - 500.
    await kit.setChainTime((c + 1n) * L + 10n);
    await waitFor('the orders of interval c+2', async () => (await ordersOf(c + 2n)).size === 2);
    const second = await ordersOf(c + 2n);
    expect(second.get(seller.id)?.energyWh).toBe(500n);
    expect(second.get(buyer.id)?.energyWh).toBe(100n);
    expect(sellerAgent.ledger.available(c + 2n, 'export')).toBe(0n);
  });

  test('the buyer signs vouchers from the seller meter readings on MQTT and the seller redeems them on chain', async () => {
    await waitFor('the buyer to follow the seller meter', () => buyerAgent.deals().find((d) => d.subscribed));
    await kit.setChainTime((c + 4n) * L + 10n);
    // Both agents read the new time before the readings come: a voucher stamped by a clock
    // behind the seller's by more than 120 s would be ignored as late.
    await Promise.all([sellerAgent.tick(), buyerAgent.tick()]);
    await publishReading(seller, {
      interval: c + 2n,
      importWh: 0n,
      exportWh: 450n,
      importCumWh: 0n,
      exportCumWh: 10_450n,
      seq: 1n,
    });
    await waitFor('the first redemption', () => sellerAgent.metrics().deals.redemptions >= 1);
    // More than the deal allows in c+3: the voucher stops at the contracted 1000 Wh.
    await publishReading(seller, {
      interval: c + 3n,
      importWh: 0n,
      exportWh: 700n,
      importCumWh: 0n,
      exportCumWh: 11_150n,
      seq: 2n,
    });
    await waitFor('the second redemption', () => sellerAgent.metrics().deals.redemptions >= 2);
    const state = await kit.publicClient.readContract({
      address: kit.manifest.contracts.channels,
      abi: debtChannelsAbi,
      functionName: 'channelOf',
      args: [channel, seller.meter.address],
    });
    expect(state.seq).toBe(2);
    expect(state.owed).toBe(150_000n);
    expect(state.paid).toBe(150_000n);
    expect(buyerAgent.metrics().deals.vouchersSigned).toBe(2);
    expect(sellerAgent.metrics().deals.vouchersRejected).toBe(0);
  });

  test('a cell that joins late discovers the services, subscribes and trades in the next interval; demand response is verified and paid; load shedding opens relays', async () => {
    // The services: a demand-response operator and a load-shedding service, each with its own key.
    const operatorKey: LocalAccount = privateKeyToAccount(generatePrivateKey());
    const shedderKey: LocalAccount = privateKeyToAccount(generatePrivateKey());
    await testClient.setBalance({ address: operatorKey.address, value: parseEther('10') });
    await kit.faucet(operatorKey.address, 10_000_000n);
    let now = Number(await kit.chainTime());
    const directory = createAgentDirectory({
      publicClient: kit.publicClient,
      registry: kit.manifest.contracts.registry,
      now: () => now,
      logger: log,
    });
    const serviceNet = async (key: LocalAccount) =>
      createAgentNet({
        chainId: kit.manifest.chainId,
        registry: kit.manifest.contracts.registry,
        zone,
        sender: { service: key.address },
        account: key,
        directory,
        now: () => now,
        logger: log.child(`service-${key.address.slice(0, 8)}`),
        bootstrap: sellerAgent.multiaddrs(),
      });
    const [operatorNet, shedderNet] = [await serviceNet(operatorKey), await serviceNet(shedderKey)];
    const operatorMqtt = await mqtt.connectAsync(broker.url);
    const { walletClient: operatorWallet } = createGridcellClients({
      manifest: kit.manifest,
      account: operatorKey,
      pollingIntervalMs: 20,
    });
    if (!operatorWallet) throw new Error('no wallet client');
    const operator = createDemandResponseOperator({
      zone,
      chainId: kit.manifest.chainId,
      net: operatorNet,
      mqtt: operatorMqtt,
      publicClient: kit.publicClient,
      contracts: kit.manifest.contracts,
      poolDomain: kit.poolDomain,
      tx: createTxSender({ publicClient: kit.publicClient, walletClient: operatorWallet }),
      now: () => now,
      logger: log.child('dr-operator'),
    });
    const shedder = createLoadSheddingService({
      zone,
      net: shedderNet,
      service: shedderKey.address,
      logger: log,
    });
    cleanups.push(async () => {
      operator.stop();
      directory.stop();
      await operatorNet.stop();
      await shedderNet.stop();
      await operatorMqtt.endAsync();
    });

    // The newcomer: its key, its owner's deposit, the manifest, one bootstrap address.
    const late = await kit.newCell(CellType.Prosumer);
    const lateAgent = await startAgent(
      late,
      {
        profile: { loadWh: [800], generationWh: [0], flexibleLoadWh: [300] },
        preferences: { minSellPrice: '100000', maxBuyPrice: '300000', minDemandResponsePrice: '200000' },
        services: { subscribe: ['demand-response', 'load-shedding'] },
        loads: [
          { id: 'heatpump', wh: '400', priority: 10 },
          { id: 'ev', wh: '300', priority: 1 },
        ],
      },
      [buyerAgent.multiaddrs()[0] ?? ''],
    );
    const T = ((await kit.chainTime()) + kit.manifest.pool.gateClosureLead) / L + 1n;
    await waitFor('the newcomer to bid in the next open interval', async () =>
      (await ordersOf(T)).get(late.id),
    );
    expect((await ordersOf(T)).get(late.id)?.energyWh).toBe(800n);

    // Discovery: services announce; the newcomer subscribes its cell on chain.
    await waitFor('the newcomer to see the services', async () => {
      await operator.announce();
      await shedder.announce();
      return lateAgent.metrics().services.subscribed === 2;
    });
    expect(await directory.isSubscribed(late.id, operatorKey.address)).toBe(true);

    // Demand response for interval T+1, at a price the owner takes.
    const loadCommands: string[] = [];
    const relays: string[] = [];
    await observer.subscribeAsync([
      commandTopics.loads(zone, late.id),
      `gridcell/v1/${zone}/commands/${late.id}/relays/+`,
    ]);
    observer.on('message', (topic, payload) => {
      if (topic === commandTopics.loads(zone, late.id)) loadCommands.push(payload.toString());
      else if (topic.includes('/relays/')) relays.push(topic.split('/').at(-1) ?? '');
    });
    now = Number(await kit.chainTime());
    const event = await operator.callEvent({
      interval: T + 1n,
      requestedReductionWh: 500n,
      pricePerKWh: 250_000n,
      windowSeconds: 20,
    });
    await waitFor('the offer', () => operator.events().find((e) => e.id === event && e.offers === 1));
    expect(lateAgent.ledger.available(T + 1n, 'reduction')).toBe(0n);
    await kit.setChainTime(BigInt(now + 21));
    now += 21;
    await operator.tick();
    await waitFor('the load command', () => loadCommands.length === 1);
    expect(JSON.parse(loadCommands[0] ?? '{}')).toMatchObject({
      type: 'load-command',
      reduceWh: '300',
      event,
    });
    // The meter shows 800 - 300 Wh imported in T+1: 300 Wh verified, paid 300 x 0.25 into the wallet.
    const before = await kit.publicClient.readContract({
      address: kit.manifest.contracts.token,
      abi: devnetTokenAbi,
      functionName: 'balanceOf',
      args: [kit.manifest.contracts.wallets],
    });
    await publishReading(late, {
      interval: T + 1n,
      importWh: 500n,
      exportWh: 0n,
      importCumWh: 500n,
      exportCumWh: 0n,
      seq: 1n,
    });
    await waitFor('the payment', () => lateAgent.metrics().services.drPaid === 75_000n);
    const after = await kit.publicClient.readContract({
      address: kit.manifest.contracts.token,
      abi: devnetTokenAbi,
      functionName: 'balanceOf',
      args: [kit.manifest.contracts.wallets],
    });
    expect(after - before).toBe(75_000n);

    // The cell cannot hold its balance: the service plans, the agent opens relays (EV first).
    await lateAgent.requestShedding(T + 2n, 250n);
    await waitFor('the relay command', () => relays.length === 1);
    expect(relays).toEqual(['ev']);
    expect(shedder.plans()).toBe(1);
  });
});
