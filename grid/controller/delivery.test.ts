import mqtt from 'mqtt';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { clearingPoolAbi } from '../../chain/abi/contracts.generated.js';
import { quoteClearing } from '../../chain/clearing/quoteClearing.js';
import { chainClock } from '../../chain/clock/index.js';
import { useKit } from '../../chain/test/kit.js';
import { waitFor } from '../../chain/test/waitFor.js';
import { type Order, signOrder, toSignedOrderArg } from '../../chain/typed-data/index.js';
import { CellType, Side } from '../../chain/units/index.js';
import { startMqttBroker } from '../../oracle/broker/index.js';
import { type PlantServers, startPlantServers } from '../devices/startPlantServers.js';
import { createPlant, type Plant } from '../plant/index.js';
import { connectSunSpec } from '../sunspec/sunspecClient.js';
import { loadTopology, type Topology } from '../topology/index.js';
import { createGridController, type GridController } from './index.js';
import { gridReserveSchema, gridStatusSchema, gridUnservedSchema } from './messages.js';

// This file: 16300-16399 (islanded), 16400-16499 (grid-connected).
const kit = useKit();
const L = kit.manifest.pool.intervalSeconds;
const gateLead = kit.manifest.pool.gateClosureLead;
const silent = { debug() {}, info() {}, warn() {}, error() {} };

const until = <T>(check: () => T | undefined, what: string, ms = 5000) => waitFor(what, check, ms);

let broker: Awaited<ReturnType<typeof startMqttBroker>>;
let subscriber: mqtt.MqttClient;
let publisher: mqtt.MqttClient;
const received: { topic: string; payload: unknown }[] = [];
const messages = (zone: string, leaf: string) =>
  received.filter((m) => m.topic.startsWith(`gridcell/v1/${zone}/grid/${leaf}`)).map((m) => m.payload);

beforeAll(async () => {
  broker = await startMqttBroker({ port: 0 });
  subscriber = await mqtt.connectAsync(broker.url, { protocolVersion: 4 });
  await subscriber.subscribeAsync('gridcell/v1/+/grid/#', { qos: 1 });
  subscriber.on('message', (topic, payload) =>
    received.push({ topic, payload: JSON.parse(payload.toString()) }),
  );
  publisher = await mqtt.connectAsync(broker.url, { protocolVersion: 4 });
});
afterAll(async () => {
  await subscriber?.endAsync();
  await publisher?.endAsync();
  await broker?.close();
});

/** The four prosumers without PV and with their hubs at the floor (but `charged`): nothing to spare. */
function dark(zone: string, charged: string[] = []): Topology {
  const topology = structuredClone(loadTopology());
  topology.zone = zone;
  for (const c of topology.cells) {
    c.pv.peakW = 0;
    c.hub.initialSocPct = charged.includes(c.name) ? 60 : c.hub.minSocPct;
  }
  return topology;
}

/** The plant's own counts, whole Wh as its devices round them. */
const ownCounts = (plant: Plant) => ({
  cells: plant.state().cells.map((c) => c.shedWs / 3600n),
  complex: plant.totals().shedWs / 3600n,
  meters: plant.topology.cells.map((c) => plant.cellCounters(c.name)),
});

let servers: PlantServers | undefined;
let controller: GridController | undefined;
afterEach(async () => {
  await controller?.close();
  await servers?.close();
  controller = undefined;
  servers = undefined;
});

describe('after delivery the controller reports unserved energy and shortfalls from the devices', () => {
  it('islanded with a deficit: the ports and the router count the shed load, and the controller reports exactly the plant’s own count', async () => {
    const topology = dark('island');
    const clock = chainClock(kit.publicClient);
    const t = (await kit.chainTime()) / L + 2n;
    await kit.setChainTime(t * L);
    const plant = await createPlant({ topology, clock, seed: 4 });
    servers = await startPlantServers({ plant, basePort: 16300 });
    controller = createGridController({
      topology,
      manifest: kit.manifest,
      publicClient: kit.publicClient,
      endpoint: (id) => servers?.address(id) ?? { host: '', port: 0 },
      clock,
      logger: silent,
      mqtt: publisher,
      confirmations: 1,
      islanded: true,
      revertSeconds: 1200,
      refreshSeconds: 400,
      fromBlock: await kit.publicClient.getBlockNumber(),
    });

    // The vendor model sits after 704 on a port, at the addresses docs/modbus.md gives.
    const port = servers.address('port:prosumer-1');
    const sunspec = await connectSunSpec({ host: port.host, port: port.port });
    try {
      expect((await sunspec.discover()).models.map((m) => [m.id, m.start, m.length])).toEqual([
        [1, 40002, 66],
        [701, 40070, 153],
        [704, 40225, 65],
        [64900, 40292, 12],
      ]);
    } finally {
      await sunspec.close();
    }

    const first = await controller.tick(); // opens the router, samples the counters at t·L
    expect(first).toMatchObject({ interval: t, wrote: 'setpoints', failures: [], report: undefined });
    expect(plant.setpoint('router')).toMatchObject({ enabled: true, watts: 0 }); // open
    const before = ownCounts(plant);
    await kit.setChainTime((t + 1n) * L);
    const end = await controller.tick();
    const after = ownCounts(plant);
    expect(end.failures).toEqual([]);
    const report = end.report;
    if (!report) throw new Error('no report for the interval that ended');
    expect(report.interval).toBe(t);
    const shed = after.cells.map((a, i) => a - (before.cells[i] ?? 0n));
    expect(shed.every((wh) => wh > 0n)).toBe(true);
    expect(report.cells.map((c) => c.shedWh)).toEqual(shed);
    expect(report.complex?.shedWh).toBe(after.complex - before.complex);
    expect(report.complex?.shedWh).toBeGreaterThan(0n);

    const published = gridUnservedSchema.parse(
      await until(() => messages('island', 'unserved').at(-1), 'grid/unserved on MQTT'),
    );
    expect(published).toMatchObject({
      interval: t,
      islanded: true,
      from: Number(t * L),
      to: Number((t + 1n) * L),
    });
    expect(published.cells.map((c) => c.shedWh)).toEqual(shed);
    expect(published.complex?.shedWh).toBe(after.complex - before.complex);
    expect(controller.status()).toMatchObject({
      islanded: true,
      lastReported: t,
      unservedWh: after.complex - before.complex,
    });
    const status = gridStatusSchema.parse(
      await until(
        () => messages('island', 'status').find((p) => (p as { unservedWh?: string }).unservedWh),
        'grid/status with the unserved energy',
      ),
    );
    expect(status.unservedWh).toBe(after.complex - before.complex);
  });

  it('grid-connected: nothing is shed, and a seller whose meter falls short raises a reserve request into the next open interval', async () => {
    const seller = await kit.newCell(CellType.Prosumer);
    const buyer = await kit.newCell(CellType.Prosumer);
    // prosumer-1 sells but has no PV and an empty hub; prosumer-2 buys and can take it.
    const topology = dark('connected', ['prosumer-2']);
    const [p1, p2] = topology.cells;
    if (!p1 || !p2) throw new Error('the default topology has four cells');
    p1.cellId = String(seller.id);
    p2.cellId = String(buyer.id);
    const clock = chainClock(kit.publicClient);
    const plant = await createPlant({ topology, clock, seed: 4 });
    servers = await startPlantServers({ plant, basePort: 16400 });
    controller = createGridController({
      topology,
      manifest: kit.manifest,
      publicClient: kit.publicClient,
      endpoint: (id) => servers?.address(id) ?? { host: '', port: 0 },
      clock,
      logger: silent,
      mqtt: publisher,
      confirmations: 1,
      writeLeadSeconds: 5,
      // The test jumps over the interval in one step: no heartbeat in between.
      revertSeconds: 1200,
      refreshSeconds: 400,
      fromBlock: await kit.publicClient.getBlockNumber(),
    });

    const t = (await kit.chainTime()) / L + 2n;
    const order = (cell: typeof seller, side: Side, limitPrice: bigint): Order => ({
      cell: cell.id,
      interval: t,
      side,
      energyWh: 1000n,
      limitPrice,
      nonce: 0,
      expiry: t * L,
    });
    const book = [
      { cell: seller, order: order(seller, Side.Sell, 100_000n) },
      { cell: buyer, order: order(buyer, Side.Buy, 200_000n) },
    ];
    const signed = await Promise.all(
      book.map(({ cell, order }) => signOrder(cell.agent, kit.poolDomain, order)),
    );
    const relayer = await kit.freshAccount();
    await kit.write(relayer, {
      address: kit.manifest.contracts.pool,
      abi: clearingPoolAbi,
      functionName: 'submitOrders',
      args: [signed.map(toSignedOrderArg)],
    });
    await kit.setChainTime(t * L - gateLead);
    const quote = quoteClearing(book.map((b) => b.order));
    await kit.write(relayer, {
      address: kit.manifest.contracts.pool,
      abi: clearingPoolAbi,
      functionName: 'clear',
      args: [t, quote.priceLow, quote.priceHigh, book.map((b) => b.order)],
    });
    await kit.setChainTime(t * L - 5n); // confirmed; within the write lead
    expect(await controller.tick()).toMatchObject({ writtenInterval: t, wrote: 'setpoints', failures: [] });
    await kit.setChainTime(t * L);
    expect((await controller.tick()).report?.interval).toBe(t - 1n); // the partial interval before
    const before = ownCounts(plant);
    await kit.setChainTime((t + 1n) * L);
    const end = await controller.tick();
    const after = ownCounts(plant);
    const report = end.report;
    if (!report) throw new Error('no report for interval t');
    expect(end.failures).toEqual([]);

    // Connected: the router imports what the hubs cannot give; nothing is shed.
    expect(report.cells.map((c) => c.shedWh)).toEqual([0n, 0n, 0n, 0n]);
    expect(report.complex).toEqual({ shedWh: 0n, curtailedWh: 0n });
    expect(after.complex - before.complex).toBe(0n);
    // The meters over Modbus are the plant's counters.
    const net = (i: number) =>
      (after.meters[i]?.exportWh ?? 0n) -
      (before.meters[i]?.exportWh ?? 0n) -
      ((after.meters[i]?.importWh ?? 0n) - (before.meters[i]?.importWh ?? 0n));
    expect(report.cells.map((c) => c.meteredWh)).toEqual([net(0), net(1), net(2), net(3)]);
    expect(net(0)).toBeLessThan(0n); // the seller imported its own load instead of exporting
    expect(net(1)).toBeLessThanOrEqual(-980n); // the buyer took its 1000 Wh (within the tolerance)

    // Only the seller falls short: a buy request for the first interval whose gate is still open.
    const expected = {
      interval: t + 2n,
      code: 'Shortfall',
      side: 'buy',
      energyWh: 1000n,
      cell: seller.id,
      forInterval: t,
    };
    expect(report.reserve).toHaveLength(1);
    expect(report.reserve[0]).toMatchObject(expected);
    expect(report.reserve[0]?.reason).toBe(
      `Shortfall: cell ${seller.id} (prosumer-1) was scheduled to export 1000 Wh in interval ${t}, its meter counted a net import of ${-net(0)} Wh: 1000 Wh missing, tolerance 20 Wh`,
    );
    const published = gridReserveSchema.parse(
      await until(
        () => messages('connected', 'reserve').find((p) => (p as { code?: string }).code === 'Shortfall'),
        'the shortfall reserve request on MQTT',
      ),
    );
    expect(published).toMatchObject(expected);
    expect(controller.status()).toMatchObject({ islanded: false, unservedWh: 0n, shortfalls: 1 });
  });
});
