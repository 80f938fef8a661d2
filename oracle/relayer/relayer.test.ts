import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { cellWalletsAbi, clearingPoolAbi, debtChannelsAbi } from '../../chain/abi/contracts.generated.js';
import { quoteClearing } from '../../chain/clearing/quoteClearing.js';
import { createGridcellClients } from '../../chain/client/index.js';
import { chainClock } from '../../chain/clock/index.js';
import { createLogger, silentLogger } from '../../chain/logger/index.js';
import { freshInterval } from '../../chain/test/freshInterval.js';
import { useKit } from '../../chain/test/kit.js';
import { waitFor } from '../../chain/test/waitFor.js';
import {
  channelId,
  type Deal,
  type Order,
  signDeal,
  signMeterReading,
  signOrder,
  toChannelSignature,
  toSignedOrderArg,
} from '../../chain/typed-data/index.js';
import { CellType, Side } from '../../chain/units/index.js';
import { startSunSpecMeterServer } from '../../grid/devices/sunspecMeterServer.js';
import { startMqttBroker } from '../broker/index.js';
import { createOracle } from '../daemon/createOracle.js';
import {
  type EvidenceMessage,
  encodeReadingMessage,
  evidenceMessageSchema,
  parsePayload,
  topics,
} from '../messages/index.js';
import { createMetrics } from '../metrics/index.js';
import { signReadingMessage } from '../signing/readingSigner.js';
import { openOracleStore } from '../store/oracleStore.js';
import { createRelayer } from './createRelayer.js';
import { openRelayerStore } from './relayerStore.js';

const kit = useKit();
const { contracts } = kit.manifest;
const L = kit.manifest.pool.intervalSeconds;
const lead = kit.manifest.pool.gateClosureLead;
/** Explicit Modbus ports for this file (ServerTCP given 0 would listen on 502). */
const PORT = 15_900 + (process.pid % 40) * 2;

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function walletOf() {
  const account = await kit.freshAccount();
  const { walletClient } = createGridcellClients({ manifest: kit.manifest, account, pollingIntervalMs: 20 });
  if (!walletClient) throw new Error('no wallet client');
  return walletClient;
}

function relayerFor(parameters: {
  dir: string;
  mqttUrl: string;
  walletClient: Awaited<ReturnType<typeof walletOf>>;
  publicClient?: typeof kit.publicClient;
}) {
  const metrics = createMetrics('gridcell_relayer');
  const relayer = createRelayer({
    id: 'test',
    zone: 'z1',
    manifest: kit.manifest,
    publicClient: parameters.publicClient ?? kit.publicClient,
    walletClient: parameters.walletClient,
    poolDomain: kit.poolDomain,
    channelsDomain: kit.channelsDomain,
    store: openRelayerStore(join(parameters.dir, 'relayer.sqlite')),
    mqttUrl: parameters.mqttUrl,
    clock: chainClock(kit.publicClient),
    logger: process.env.GRIDCELL_TEST_LOG ? createLogger({ name: 'relayer' }) : silentLogger,
    metrics,
    pollMs: 3_600_000, // the test drives round() itself
  });
  return { relayer, metrics };
}

/** Two fresh cells with matching orders for a fresh interval, cleared at gate closure. */
async function clearedInterval(energyWh: bigint) {
  const seller = await kit.newCell(CellType.Prosumer);
  const buyer = await kit.newCell(CellType.PassiveConsumer);
  const t = await freshInterval(kit);
  const orders: Order[] = [
    {
      cell: seller.id,
      interval: t,
      side: Side.Sell,
      energyWh,
      limitPrice: 100_000n,
      nonce: 0,
      expiry: t * L,
    },
    { cell: buyer.id, interval: t, side: Side.Buy, energyWh, limitPrice: 200_000n, nonce: 0, expiry: t * L },
  ];
  const signed = await Promise.all([
    signOrder(seller.agent, kit.poolDomain, orders[0] as Order),
    signOrder(buyer.agent, kit.poolDomain, orders[1] as Order),
  ]);
  const anyone = await walletOf();
  await kit.publicClient.waitForTransactionReceipt({
    hash: await anyone.writeContract({
      address: contracts.pool,
      abi: clearingPoolAbi,
      functionName: 'submitOrders',
      args: [signed.map(toSignedOrderArg)],
    }),
  });
  await kit.setChainTime(t * L - lead);
  const quote = quoteClearing(orders);
  await kit.publicClient.waitForTransactionReceipt({
    hash: await anyone.writeContract({
      address: contracts.pool,
      abi: clearingPoolAbi,
      functionName: 'clear',
      args: [t, quote.priceLow, quote.priceHigh, orders],
    }),
  });
  return { seller, buyer, t };
}

describe('settlement relayer: readings from MQTT to money on chain', () => {
  it('settles an interval from meters read over Modbus, claims it, and submits nothing twice after a restart', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gridcell-relayer-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const { seller, buyer, t } = await clearedInterval(500n);
    const price = (
      await kit.publicClient.readContract({
        address: contracts.pool,
        abi: clearingPoolAbi,
        functionName: 'intervalOf',
        args: [t],
      })
    ).price;

    // The physical side: the seller exports 2.4 kW, the buyer imports 2.4 kW (600 Wh in 900 s).
    const clock = chainClock(kit.publicClient);
    const sellerMeter = await startSunSpecMeterServer({ port: PORT, profile: () => 2400, clock });
    const buyerMeter = await startSunSpecMeterServer({ port: PORT + 1, profile: () => -2400, clock });
    cleanups.push(
      () => sellerMeter.close(),
      () => buyerMeter.close(),
    );
    const broker = await startMqttBroker({ port: 0 });
    cleanups.push(() => broker.close());

    const oracle = createOracle({
      id: 'complex',
      zone: 'z1',
      meters: [
        {
          name: 'seller',
          account: seller.meter,
          cell: seller.id,
          source: { type: 'modbus', host: '127.0.0.1', port: PORT },
          limits: { maxImportW: 100_000n, maxExportW: 100_000n },
        },
        {
          name: 'buyer',
          account: buyer.meter,
          cell: buyer.id,
          source: { type: 'modbus', host: '127.0.0.1', port: PORT + 1 },
          limits: { maxImportW: 100_000n, maxExportW: 100_000n },
        },
      ],
      store: openOracleStore(join(dir, 'oracle.sqlite')),
      mqttUrl: broker.url,
      clock,
      intervalSeconds: L,
      chainId: kit.manifest.chainId,
      poolDomain: kit.poolDomain,
      channelsDomain: kit.channelsDomain,
      logger: silentLogger,
      metrics: createMetrics('gridcell_oracle'),
      sampleMs: 3_600_000,
      telemetryMs: 0,
    });
    const relayWallet = await walletOf();
    const first = relayerFor({ dir, mqttUrl: broker.url, walletClient: relayWallet });
    await first.relayer.start();
    await kit.setChainTime(t * L);
    await oracle.start();
    cleanups.push(() => oracle.stop());
    await kit.setChainTime((t + 1n) * L + 1n);
    await oracle.tick();
    await waitFor('both readings at the relayer', () => first.relayer.received() === 2);

    const before = await Promise.all(
      [seller.id, buyer.id].map((id) =>
        kit.publicClient.readContract({
          address: contracts.wallets,
          abi: cellWalletsAbi,
          functionName: 'balanceOf',
          args: [id],
        }),
      ),
    );
    await first.relayer.round();
    expect(first.metrics.get('readings_settled')).toBe(2);
    expect(first.metrics.get('settle_transactions')).toBe(1);
    expect(first.metrics.get('claim_transactions')).toBe(1);
    for (const cell of [seller.id, buyer.id]) {
      const p = await kit.publicClient.readContract({
        address: contracts.pool,
        abi: clearingPoolAbi,
        functionName: 'positionOf',
        args: [t, cell],
      });
      expect(p.deliveredWh).toBe(500); // 600 metered, never more than scheduled
      expect(p.flags & 6).toBe(6); // REPORTED | CLAIMED
    }
    const after = await Promise.all(
      [seller.id, buyer.id].map((id) =>
        kit.publicClient.readContract({
          address: contracts.wallets,
          abi: cellWalletsAbi,
          functionName: 'balanceOf',
          args: [id],
        }),
      ),
    );
    const paid = (500n * price) / 1000n;
    expect(after[0]?.[0]).toBe((before[0]?.[0] ?? 0n) + paid);
    expect(after[1]?.[1]).toBe(0n); // the buyer's escrow is released
    await first.relayer.stop();

    // Restarted relayer, same store, the oracle publishing the same readings again: no transaction.
    const second = relayerFor({ dir, mqttUrl: broker.url, walletClient: relayWallet });
    await second.relayer.start();
    cleanups.push(() => second.relayer.stop());
    const nonce = await kit.publicClient.getTransactionCount({ address: relayWallet.account.address });
    const replay = await mqtt.connectAsync(broker.url);
    cleanups.push(() => replay.endAsync(true));
    const reading = {
      meter: seller.meter.address,
      cell: seller.id,
      interval: t,
      importWh: 0n,
      exportWh: 600n,
      importCumWh: 0n,
      exportCumWh: 600n,
      seq: 1n,
    };
    const pool = await signMeterReading(seller.meter, kit.poolDomain, reading);
    const channels = await signMeterReading(seller.meter, kit.channelsDomain, reading);
    await replay.publishAsync(
      topics.reading('z1', seller.id, seller.meter.address),
      encodeReadingMessage({
        v: 1,
        type: 'reading',
        chainId: kit.manifest.chainId,
        reading,
        signatures: { pool: pool.signature, channels: channels.signature },
        producedAt: 0,
      }),
      { qos: 1 },
    );
    await waitFor('the duplicate seen', () => second.metrics.get('readings_duplicate') === 1);
    await second.relayer.round();
    expect(await kit.publicClient.getTransactionCount({ address: relayWallet.account.address })).toBe(nonce);
    expect(second.relayer.status().readings).toEqual({ settled: 2 });
  });

  it('hands a channel seller the earliest and latest readings, which redeem on chain by the evidence path', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gridcell-relayer-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const [seller, buyer] = await Promise.all([
      kit.newCell(CellType.Prosumer),
      kit.newCell(CellType.PassiveConsumer),
    ]);
    const now = await kit.chainTime();
    const first = now / L + 2n;
    const deal: Deal = {
      buyerCell: buyer.id,
      sellerCell: seller.id,
      sellerMeter: seller.meter.address,
      pricePerKWh: 200_000n,
      maxWhPerInterval: 2000n,
      firstInterval: first,
      lastInterval: first + 3n,
      collateral: 1_600_000n,
      expiry: now + 3600n,
      salt: 7n,
    };
    const [b, s] = await Promise.all([
      signDeal(buyer.agent, kit.channelsDomain, deal),
      signDeal(seller.agent, kit.channelsDomain, deal),
    ]);
    const channels = { address: contracts.channels, abi: debtChannelsAbi } as const;
    await kit.write(await kit.freshAccount(), {
      ...channels,
      functionName: 'open',
      args: [deal, toChannelSignature(b.signature), toChannelSignature(s.signature)],
    });
    const id = channelId(kit.channelsDomain, deal);

    const broker = await startMqttBroker({ port: 0 });
    cleanups.push(() => broker.close());
    const { relayer, metrics } = relayerFor({ dir, mqttUrl: broker.url, walletClient: await walletOf() });
    await relayer.start();
    cleanups.push(() => relayer.stop());
    const client = await mqtt.connectAsync(broker.url);
    cleanups.push(() => client.endAsync(true));
    let evidence: EvidenceMessage | undefined;
    client.on('message', (_topic, payload) => {
      const parsed = parsePayload(evidenceMessageSchema, payload);
      if (parsed.ok) evidence = parsed.value;
    });
    await client.subscribeAsync(topics.channelEvidence('z1', id), { qos: 1 });

    // The meter counted 10,000 Wh before the deal, then 1500 and 2500 Wh in its first two intervals.
    const readings = [
      { interval: first, exportWh: 1500n, exportCumWh: 11_500n, seq: 1n },
      { interval: first + 1n, exportWh: 2500n, exportCumWh: 14_000n, seq: 2n },
    ];
    for (const r of readings) {
      const reading = { meter: seller.meter.address, cell: seller.id, importWh: 0n, importCumWh: 0n, ...r };
      await client.publishAsync(
        topics.reading('z1', seller.id, seller.meter.address),
        encodeReadingMessage(await signReadingMessage(seller.meter, kit, kit.manifest.chainId, reading)),
        { qos: 1 },
      );
    }
    const proof = await waitFor(
      'evidence with both readings',
      () => evidence?.readings.length === 2 && evidence,
    );
    expect(proof.readings.map((m) => m.reading.interval)).toEqual([first, first + 1n]);
    expect(metrics.get('evidence_published')).toBe(2);

    await kit.setChainTime((first + 2n) * L);
    await kit.write(await kit.freshAccount(), {
      ...channels,
      functionName: 'redeemWithReadings',
      args: [
        deal,
        proof.readings.map((m) => ({
          reading: m.reading,
          r: m.signatures.channels.r,
          vs: m.signatures.channels.vs,
        })),
      ],
    });
    const state = await kit.publicClient.readContract({
      ...channels,
      functionName: 'channelOf',
      args: [id, deal.sellerMeter],
    });
    // min(metered 4000 Wh, contracted 2 x 2000 Wh) x 0.20/kWh
    expect(state.owed).toBe(800_000n);
  });

  it('keeps readings through an RPC outage and settles them when the node answers again', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gridcell-relayer-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const { seller, buyer, t } = await clearedInterval(400n);
    // A proxy in front of anvil that can be switched off: the node "goes away" and comes back.
    let down = false;
    const proxy = createServer(async (request, response) => {
      if (down) {
        request.socket.destroy();
        return;
      }
      const body = await new Promise<string>((resolve) => {
        let data = '';
        request.on('data', (c: Buffer) => {
          data += c.toString();
        });
        request.on('end', () => resolve(data));
      });
      const answer = await fetch(kit.rpcUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body,
      });
      response.writeHead(answer.status, { 'content-type': 'application/json' });
      response.end(await answer.text());
    });
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', () => resolve()));
    cleanups.push(() => new Promise<void>((resolve) => proxy.close(() => resolve())));
    const address = proxy.address();
    const rpcUrl = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
    const account = await kit.freshAccount();
    const viaProxy = createGridcellClients({
      manifest: kit.manifest,
      rpcUrl,
      account,
      pollingIntervalMs: 20,
    });
    if (!viaProxy.walletClient) throw new Error('no wallet client');

    const broker = await startMqttBroker({ port: 0 });
    cleanups.push(() => broker.close());
    const { relayer, metrics } = relayerFor({
      dir,
      mqttUrl: broker.url,
      walletClient: viaProxy.walletClient,
      publicClient: viaProxy.publicClient,
    });
    await relayer.start();
    cleanups.push(() => relayer.stop());
    const client = await mqtt.connectAsync(broker.url);
    cleanups.push(() => client.endAsync(true));
    await kit.setChainTime((t + 1n) * L + 1n);
    for (const [cell, importWh, exportWh] of [
      [seller, 0n, 400n],
      [buyer, 400n, 0n],
    ] as const) {
      const reading = {
        meter: cell.meter.address,
        cell: cell.id,
        interval: t,
        importWh,
        exportWh,
        importCumWh: importWh,
        exportCumWh: exportWh,
        seq: 1n,
      };
      await client.publishAsync(
        topics.reading('z1', cell.id, cell.meter.address),
        encodeReadingMessage(await signReadingMessage(cell.meter, kit, kit.manifest.chainId, reading)),
        { qos: 1 },
      );
    }
    await waitFor('both readings taken', () => relayer.received() === 2);

    down = true;
    await relayer.round();
    expect(metrics.get('round_failures')).toBe(1);
    expect(relayer.status().readings).toEqual({ pending: 2 });

    down = false;
    await relayer.round();
    expect(relayer.status().readings).toEqual({ settled: 2 });
    expect(metrics.get('claim_transactions')).toBe(1);
    const p = await kit.publicClient.readContract({
      address: contracts.pool,
      abi: clearingPoolAbi,
      functionName: 'positionOf',
      args: [t, seller.id],
    });
    expect(p.deliveredWh).toBe(400);
  });

  it("error: a reading signed by a key that is not the cell's meter, or malformed, is refused and counted", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gridcell-relayer-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const cell = await kit.newCell(CellType.Prosumer);
    const other = await kit.newCell(CellType.Prosumer);
    const broker = await startMqttBroker({ port: 0 });
    cleanups.push(() => broker.close());
    const { relayer, metrics } = relayerFor({ dir, mqttUrl: broker.url, walletClient: await walletOf() });
    await relayer.start();
    cleanups.push(() => relayer.stop());
    const client = await mqtt.connectAsync(broker.url);
    cleanups.push(() => client.endAsync(true));
    const reading = {
      meter: other.meter.address,
      cell: cell.id,
      interval: 5n,
      importWh: 1n,
      exportWh: 0n,
      importCumWh: 1n,
      exportCumWh: 0n,
      seq: 1n,
    };
    const fromOtherMeter = await signReadingMessage(other.meter, kit, kit.manifest.chainId, reading);
    // The same reading, signed by a key that is not the meter it names.
    const forged = {
      ...fromOtherMeter,
      signatures: {
        pool: (await signMeterReading(cell.agent, kit.poolDomain, reading)).signature,
        channels: (await signMeterReading(cell.agent, kit.channelsDomain, reading)).signature,
      },
    };
    const topic = topics.reading('z1', cell.id, other.meter.address);
    await client.publishAsync(topic, encodeReadingMessage(fromOtherMeter), { qos: 1 }); // the other cell's meter
    await client.publishAsync(topic, encodeReadingMessage(forged), { qos: 1 }); // not a meter's signature
    await client.publishAsync(topic, '{"v":1,"type":"reading"}', { qos: 1 });
    await waitFor(
      'three refusals',
      () =>
        metrics.get('readings_refused', { kind: 'meter' }) === 1 &&
        metrics.get('readings_refused', { kind: 'signature' }) === 1 &&
        metrics.get('readings_refused', { kind: 'malformed' }) === 1,
    );
    expect(relayer.received()).toBe(0);
  });
});
