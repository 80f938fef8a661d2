import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Clock } from '../../chain/clock/index.js';
import { createPlant, type Plant } from '../plant/index.js';
import { createDerClient, ModbusWriteError } from '../sunspec/derClient.js';
import { connectSunSpec } from '../sunspec/sunspecClient.js';
import { loadTopology } from '../topology/index.js';
import { type PlantServers, startPlantServers } from './startPlantServers.js';

const BASE_PORT = 16100; // this file: 16100-16199
const MIDNIGHT = 1_800_000_000 - (1_800_000_000 % 86_400);

let now = MIDNIGHT + 8 * 3600;
const clock: Clock = { now: async () => BigInt(now) };
let plant: Plant;
let servers: PlantServers;

beforeAll(async () => {
  plant = await createPlant({ topology: loadTopology(), clock, seed: 11 });
  servers = await startPlantServers({ plant, basePort: BASE_PORT });
});
afterAll(async () => {
  await servers?.close();
});

const der = (id: string) => {
  const a = servers.address(id);
  return createDerClient({ host: a.host, port: a.port, timeoutMs: 2000 });
};

describe('the plant on Modbus TCP', () => {
  it('serves every device: router, per cell a hub, a port and a meter, and a rectiverter per link', () => {
    expect(servers.devices.map((d) => d.id)).toEqual([
      'router',
      ...['prosumer-1', 'prosumer-2', 'prosumer-3', 'prosumer-4'].flatMap((c) => [
        `hub:${c}`,
        `port:${c}`,
        `meter:${c}`,
      ]),
      ...['rv-1-2', 'rv-1-3', 'rv-1-4', 'rv-2-3', 'rv-2-4', 'rv-3-4'].map((l) => `link:${l}`),
    ]);
    expect(new Set(servers.devices.map((d) => d.port)).size).toBe(servers.devices.length);
  });

  it('puts models 1, 701, 704 and 713 of a hub at the addresses of FIELD.md', async () => {
    const a = servers.address('hub:prosumer-1');
    const client = await connectSunSpec({ host: a.host, port: a.port });
    try {
      const { base, models } = await client.discover();
      expect(base).toBe(40000);
      expect(models.map((m) => [m.id, m.start, m.length])).toEqual([
        [1, 40002, 66],
        [701, 40070, 153],
        [704, 40225, 65],
        [713, 40292, 7],
      ]);
    } finally {
      await client.close();
    }
  });

  it("a hub setpoint written over Modbus drives the physics and reads back, with the hub's state of charge", async () => {
    const hub = der('hub:prosumer-2');
    try {
      const before = await hub.read();
      await hub.writeSetpoint(-3000, 600); // charge at 3 kW
      now += 300;
      const after = await hub.read();
      expect(after.setpoint).toEqual({
        enabled: true,
        watts: -3000,
        revertSeconds: 600,
        remainingSeconds: 300,
      });
      expect(after.watts).toBe(-3000);
      // 3 kW for 5 min at 96 % into 12 kWh: +2.0 percentage points, read at 0.1 % resolution.
      const gained = (after.socPercent ?? 0) - (before.socPercent ?? 0);
      expect(gained).toBeGreaterThanOrEqual(1.9 - 1e-9);
      expect(gained).toBeLessThanOrEqual(2.1 + 1e-9);
    } finally {
      await hub.close();
    }
  });

  it('a device falls back to its safe state when its setpoint is not refreshed within the revert time', async () => {
    const port = der('port:prosumer-3');
    try {
      await port.writeSetpoint(2500, 30);
      now += 10;
      expect((await port.read()).setpoint).toMatchObject({
        enabled: true,
        watts: 2500,
        remainingSeconds: 20,
      });
      expect(plant.state().cells[2]?.portW).toBe(2500);
      now += 25; // the controller is gone
      const status = await port.read();
      expect(status.setpoint?.enabled).toBe(false);
      expect(status.watts).toBe(0); // the hub holds the port at 0 again (self-consumption)
      expect(plant.reverts().at(-1)).toEqual({ deviceId: 'port:prosumer-3', at: now - 5 });
    } finally {
      await port.close();
    }
  });

  it('the router limit opens the connection to the public grid (islanded) and reverts to the rated limits', async () => {
    const router = der('router');
    try {
      await router.writeLimit(0, 60);
      now += 30;
      const status = await router.read();
      expect(status.limit).toMatchObject({ enabled: true, percent: 0 });
      expect(status.watts).toBe(0);
      expect(plant.state().islanded).toBe(true);
      now += 60;
      expect((await router.read()).limit?.enabled).toBe(false);
      expect(plant.state().islanded).toBe(false);
    } finally {
      await router.close();
    }
  });

  it('the plant-backed meter counts the energy across the cell boundary that the physics integrates', async () => {
    const a = servers.address('meter:prosumer-4');
    const meter = await connectSunSpec({ host: a.host, port: a.port });
    const port = der('port:prosumer-4');
    try {
      await port.writeSetpoint(1000, 7200); // export 1 kW for an hour
      const start = plant.cellCounters('prosumer-4');
      now += 3600;
      const sample = await meter.readMeter();
      const counters = plant.cellCounters('prosumer-4');
      expect(sample.importWh ?? 0n).toBe(counters.importWh);
      expect(sample.exportWh ?? 0n).toBe(counters.exportWh);
      expect(sample.watts).toBe(plant.state().cells[3]?.boundaryW);
      expect(counters.exportWh - start.exportWh).toBe(1000n);
    } finally {
      await port.close();
      await meter.close();
    }
  });

  it('error: a setpoint beyond the device limits is answered with Modbus exception 3 and changes nothing', async () => {
    const link = der('link:rv-1-2');
    try {
      const error = await link.writeSetpoint(3001, 60).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ModbusWriteError);
      expect((error as ModbusWriteError).modbusCode).toBe(3);
      expect((error as Error).message).toMatch(/writing WSet .* failed: Modbus exception 3/);
      expect(plant.setpoint('link:rv-1-2')).toMatchObject({ watts: 0 });
    } finally {
      await link.close();
    }
  });

  it('error: writing a read-only point or an unsupported mode is refused with an exception', async () => {
    const a = servers.address('hub:prosumer-1');
    const { default: ModbusRTU } = await import('modbus-serial');
    const client = new (
      ModbusRTU as unknown as new () => {
        connectTCP(host: string, o: { port: number }): Promise<void>;
        setTimeout(ms: number): void;
        writeRegisters(a: number, v: number[]): Promise<unknown>;
        writeRegister(a: number, v: number): Promise<unknown>;
        close(cb: () => void): void;
      }
    )();
    await client.connectTCP(a.host, { port: a.port });
    client.setTimeout(2000);
    try {
      const code = (p: Promise<unknown>) =>
        p.then(
          () => 'accepted',
          (e: { modbusCode?: number }) => e.modbusCode,
        );
      expect(await code(client.writeRegister(40080, 5))).toBe(2); // 701 W is a measurement
      expect(await code(client.writeRegister(40248, 2))).toBe(3); // WSetMod 2 (percent) is not supported
      expect(await code(client.writeRegister(40249, 0))).toBe(2); // half of the int32 WSet
      expect(await code(client.writeRegisters(40240, [500]))).toBe(2); // a hub has no WMaxLimPct path
      expect(await code(client.writeRegister(40247, 1))).toBe('accepted');
    } finally {
      await new Promise<void>((resolve) => client.close(() => resolve()));
    }
  });
});
