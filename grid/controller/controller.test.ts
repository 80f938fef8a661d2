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
import { createDerClient } from '../sunspec/derClient.js';
import { loadTopology } from '../topology/index.js';
import { createGridController, type GridController } from './index.js';
import { gridRefusalSchema, gridTelemetrySchema } from './messages.js';

const BASE_PORT = 16200; // this file: 16200-16299
const kit = useKit();
const L = kit.manifest.pool.intervalSeconds;
const lead = kit.manifest.pool.gateClosureLead;

const WRITE_LEAD = 5n;
const silent = { debug() {}, info() {}, warn() {}, error() {} };

/** Waits for `check` to return a value, polling, until the deadline. */
const until = <T>(check: () => T | undefined, what: string, ms = 5000) => waitFor(what, check, ms);

let broker: Awaited<ReturnType<typeof startMqttBroker>>;
let subscriber: mqtt.MqttClient;
let publisher: mqtt.MqttClient;
const received: { topic: string; payload: unknown }[] = [];

beforeAll(async () => {
  broker = await startMqttBroker({ port: 0 });
  subscriber = await mqtt.connectAsync(broker.url, { protocolVersion: 4 });
  await subscriber.subscribeAsync('gridcell/v1/test/grid/#', { qos: 1 });
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

describe('the grid controller against a real chain, real Modbus devices and a real broker', () => {
  let servers: PlantServers;
  let controller: GridController;

  afterAll(async () => {
    await controller?.close();
    await servers?.close();
  });

  it('has the setpoints of a cleared interval in place at delivery start (written a lead before), refuses a limit-breaking schedule, refreshes, and the devices revert when it is gone', async () => {
    const seller = await kit.newCell(CellType.Prosumer);
    const buyer = await kit.newCell(CellType.Prosumer);
    const tooBig = await kit.newCell(CellType.Prosumer);
    const outsider = await kit.newCell(CellType.PassiveConsumer);
    const topology = structuredClone(loadTopology());
    topology.zone = 'test';
    const [p1, p2, p3] = topology.cells;
    if (!p1 || !p2 || !p3) throw new Error('the default topology has four cells');
    p1.cellId = String(seller.id);
    p2.cellId = String(buyer.id);
    p3.cellId = String(tooBig.id);
    p3.maxExportW = 2000; // 1000 Wh in 15 minutes is 4000 W: beyond it

    const clock = chainClock(kit.publicClient);
    const plant = await createPlant({ topology, clock, seed: 9 });
    servers = await startPlantServers({ plant, basePort: BASE_PORT });
    controller = createGridController({
      topology,
      manifest: kit.manifest,
      publicClient: kit.publicClient,
      endpoint: (id) => servers.address(id),
      clock,
      logger: silent,
      mqtt: publisher,
      confirmations: 1,
      revertSeconds: 60,
      refreshSeconds: 20,
      writeLeadSeconds: Number(WRITE_LEAD),
      fromBlock: await kit.publicClient.getBlockNumber(),
    });

    // Orders for t, gate closure, clearing.
    const t = (await kit.chainTime()) / L + 2n;
    const order = (
      cell: typeof seller,
      side: Side,
      limitPrice: bigint,
    ): { cell: typeof seller; order: Order } => ({
      cell,
      order: { cell: cell.id, interval: t, side, energyWh: 1000n, limitPrice, nonce: 0, expiry: t * L },
    });
    const book = [
      order(seller, Side.Sell, 100_000n),
      order(buyer, Side.Buy, 200_000n),
      order(tooBig, Side.Sell, 100_000n),
      order(outsider, Side.Buy, 200_000n),
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
    await kit.setChainTime(t * L - lead);
    const quote = quoteClearing(book.map((b) => b.order));
    await kit.write(relayer, {
      address: kit.manifest.contracts.pool,
      abi: clearingPoolAbi,
      functionName: 'clear',
      args: [t, quote.priceLow, quote.priceHigh, book.map((b) => b.order)],
    });

    // Before delivery: the clearing is not confirmed yet (one block), so nothing is planned.
    await controller.tick();
    expect(controller.plan(t)).toBeUndefined();
    await kit.setChainTime(t * L - lead + 10n); // one more block: the clearing is confirmed
    const before = await controller.tick();
    expect(before.interval).toBe(t - 1n);
    const plan = controller.plan(t);
    expect(plan?.ports.map((p) => p.watts)).toEqual([4000, -4000, 0, 0]);
    // The refusal is out before delivery starts, naming the trade and the limit.
    const refusal = await until(
      () => received.find((m) => m.topic === 'gridcell/v1/test/grid/refusal')?.payload,
      'the refusal on MQTT',
    );
    const parsed = gridRefusalSchema.parse(refusal);
    expect(parsed.code).toBe('CellLimit');
    expect(parsed.trade).toEqual({
      kind: 'pool',
      interval: t,
      cell: tooBig.id,
      side: 'sell',
      energyWh: 1000n,
    });
    expect(parsed.reason).toBe(
      `cell ${tooBig.id} (prosumer-3) is scheduled to export 4000 W, its limit is 2000 W`,
    );
    const reserve = await until(
      () => received.find((m) => m.topic === 'gridcell/v1/test/grid/reserve')?.payload,
      'the reserve request on MQTT',
    );
    expect(reserve).toMatchObject({
      interval: String(t + 1n),
      side: 'buy',
      energyWh: '1000',
      cell: String(tooBig.id),
    });
    const port1 = createDerClient({ ...servers.address('port:prosumer-1') });
    const port3 = createDerClient({ ...servers.address('port:prosumer-3') });
    const router = createDerClient({ ...servers.address('router') });
    try {
      expect((await port1.read()).setpoint?.watts).toBe(0); // t - 1 had nothing for it

      // Just outside the write lead: still t - 1's setpoints.
      await kit.setChainTime(t * L - WRITE_LEAD - 1n);
      const outside = await controller.tick();
      expect(outside).toMatchObject({ interval: t - 1n, writtenInterval: t - 1n });
      expect(outside.wrote).not.toBe('setpoints');
      expect((await port1.read()).setpoint?.watts).toBe(0);
      // Within the lead, with t's clearing confirmed: the setpoints of t are written and read back.
      await kit.setChainTime(t * L - WRITE_LEAD);
      const early = await controller.tick();
      expect(early).toMatchObject({ interval: t - 1n, writtenInterval: t, wrote: 'setpoints', failures: [] });
      // Delivery starts: the setpoints are already in place, no new write is needed.
      await kit.setChainTime(t * L);
      expect((await port1.read()).setpoint).toEqual({
        enabled: true,
        watts: 4000,
        revertSeconds: 60,
        remainingSeconds: 60 - Number(WRITE_LEAD),
      });
      expect(await controller.tick()).toMatchObject({ interval: t, writtenInterval: t, wrote: undefined });
      expect((await createDerClient({ ...servers.address('port:prosumer-2') }).read()).setpoint?.watts).toBe(
        -4000,
      );
      expect((await port3.read()).setpoint?.watts).toBe(0); // refused: not written
      expect((await router.read()).limit).toMatchObject({ enabled: true, percent: 80 });
      const telemetry = await until(
        () =>
          received.find(
            (m) =>
              m.topic === 'gridcell/v1/test/grid/telemetry/port:prosumer-1' &&
              (m.payload as { interval: string }).interval === String(t),
          )?.payload,
        'telemetry of port:prosumer-1',
      );
      expect(gridTelemetrySchema.parse(telemetry)).toMatchObject({ wanted: 4000, confirmed: true });

      // The heartbeat refreshes the revert timers.
      await kit.setChainTime(t * L - WRITE_LEAD + 30n);
      expect((await port1.read()).setpoint?.remainingSeconds).toBe(30);
      expect((await controller.tick()).wrote).toBe('refresh');
      expect((await port1.read()).setpoint?.remainingSeconds).toBe(60);

      // The controller is lost: the devices fall back on their own.
      await controller.close();
      await kit.setChainTime(t * L - WRITE_LEAD + 30n + 61n);
      expect((await port1.read()).setpoint?.enabled).toBe(false);
      expect((await router.read()).limit?.enabled).toBe(false);
      // The plant has dropped the 4000 W target: the hub is back to self-consumption, whose
      // flow depends on the hour and the state of charge (not always 0 W at the port).
      expect(plant.setpoint('port:prosumer-1').enabled).toBe(false);
      expect(plant.state().cells[0]?.portW).not.toBe(4000);
    } finally {
      await Promise.all([port1.close(), port3.close(), router.close()]);
    }
  });
});

describe('a change of mode while the controller is writing', () => {
  let servers: PlantServers | undefined;
  let controller: GridController | undefined;

  afterEach(async () => {
    await controller?.close();
    await servers?.close();
    controller = undefined;
    servers = undefined;
  });

  // The router's limit in each mode: 0 % (open) islanded, 80 % of its rating grid-connected.
  it.each([
    {
      from: 'islanded',
      to: 'grid-connected',
      islanded: true,
      before: 0,
      after: 80,
      basePort: BASE_PORT + 30,
    },
    {
      from: 'grid-connected',
      to: 'islanded',
      islanded: false,
      before: 80,
      after: 0,
      basePort: BASE_PORT + 60,
    },
  ])(
    'does not lose a switch from $from to $to that lands while it writes: the next pass writes the interval again in the new mode',
    async ({ islanded, before, after, basePort }) => {
      const topology = structuredClone(loadTopology());
      topology.zone = 'test';
      const clock = chainClock(kit.publicClient);
      const t = (await kit.chainTime()) / L + 2n;
      await kit.setChainTime(t * L - 60n);
      const plant = await createPlant({ topology, clock, seed: 9 });
      // The plant as its Modbus servers see it, except that the first router write once
      // `onRouterWrite` is set switches the controller's mode: the switch lands while the
      // controller's write is on the wire, as the demo's setIslanded may (it switches a write
      // lead before a phase's first interval, when the controller writes that interval).
      let onRouterWrite: (() => void) | undefined;
      const wired: Plant = {
        ...plant,
        write(id, change) {
          plant.write(id, change);
          const hook = id === 'router' ? onRouterWrite : undefined;
          if (hook) onRouterWrite = undefined;
          hook?.();
        },
      };
      servers = await startPlantServers({ plant: wired, basePort });
      const c = createGridController({
        topology,
        manifest: kit.manifest,
        publicClient: kit.publicClient,
        endpoint: (id) => servers?.address(id) ?? { host: '', port: 0 },
        clock,
        logger: silent,
        confirmations: 1,
        islanded,
        revertSeconds: 600,
        refreshSeconds: 200,
        fromBlock: await kit.publicClient.getBlockNumber(),
      });
      controller = c;
      const routerPercent = () => {
        const s = plant.setpoint('router');
        return s.enabled ? Math.round((s.watts * 1000) / topology.router.ratedW) / 10 : undefined;
      };

      expect(await c.tick()).toMatchObject({ interval: t - 1n, wrote: 'setpoints', failures: [] });
      expect(routerPercent()).toBe(before);

      // Delivery of t starts: t is planned in the old mode and the switch comes mid-write.
      await kit.setChainTime(t * L);
      onRouterWrite = () => c.setIslanded(!islanded);
      expect(await c.tick()).toMatchObject({
        interval: t,
        writtenInterval: t,
        wrote: 'setpoints',
        failures: [],
      });
      expect(onRouterWrite).toBeUndefined(); // the switch did land during the write
      expect(routerPercent()).toBe(before);

      // The next pass, long before a refresh is due, writes t again in the new mode.
      await kit.setChainTime(t * L + 10n);
      expect(await c.tick()).toMatchObject({
        interval: t,
        writtenInterval: t,
        wrote: 'setpoints',
        failures: [],
      });
      expect(c.status().islanded).toBe(!islanded);
      expect(c.plan(t)?.router.percent).toBe(after);
      expect(routerPercent()).toBe(after);
      const limits = plant.state().routerLimits;
      expect(limits.importW === 0 && limits.exportW === 0).toBe(after === 0);
      // Then nothing is due until the refresh.
      await kit.setChainTime(t * L + 20n);
      expect((await c.tick()).wrote).toBeUndefined();
      expect(routerPercent()).toBe(after);
    },
  );
});
