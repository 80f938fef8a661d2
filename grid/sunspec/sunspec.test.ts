import ModbusModule from 'modbus-serial';
import type { ModbusRTU as ModbusRTUClass } from 'modbus-serial/ModbusRTU.js';
import { afterEach, describe, expect, it } from 'vitest';
import type { Clock } from '../../chain/clock/index.js';
import { type SunSpecMeterServer, startSunSpecMeterServer } from '../devices/sunspecMeterServer.js';
import { acc32, encodeAcc32, encodeInt16, int16, scaleFactor, uint16 } from './registers.js';
import { connectSunSpec, type SunSpecClient } from './sunspecClient.js';

/** Explicit ports for this file (ServerTCP given 0 would listen on 502). */
const PORT = 21_500 + (process.pid % 500) * 4;

/** A clock the test moves by hand: the meter's energy then follows exactly. */
function manualClock(start: number) {
  let t = start;
  const clock: Clock = { now: async () => BigInt(t) };
  return { clock, advance: (s: number) => (t += s) };
}

const open: { close(): Promise<void> }[] = [];
afterEach(async () => {
  for (const thing of open.splice(0).reverse()) await thing.close();
});

async function meter(
  port: number,
  profile: (t: number) => number,
  extra: Partial<Parameters<typeof startSunSpecMeterServer>[0]> = {},
) {
  const time = manualClock(1_800_000_000);
  const server: SunSpecMeterServer = await startSunSpecMeterServer({
    port,
    profile,
    clock: time.clock,
    ...extra,
  });
  open.push(server);
  const client: SunSpecClient = await connectSunSpec({ host: '127.0.0.1', port, timeoutMs: 1000 });
  open.push(client);
  return { server, client, time };
}

describe('SunSpec registers', () => {
  it('reads not-implemented sentinels as null', () => {
    expect(int16(0x8000)).toBeNull();
    expect(uint16(0xffff)).toBeNull();
    expect(acc32(0, 0)).toBeNull();
    expect(scaleFactor(0x8000)).toBeNull();
    expect(int16(0xfffe)).toBe(-2);
    expect(scaleFactor(encodeInt16(-3))).toBe(-3);
  });

  it('encodes 32-bit accumulators high word first and wraps at 2^32', () => {
    expect(encodeAcc32(0x0001_0002n)).toEqual([1, 2]);
    expect(encodeAcc32(2n ** 32n + 5n)).toEqual([0, 5]);
    expect(acc32(0xffff, 0xffff)).toBe(2n ** 32n - 1n);
  });
});

describe('simulated SunSpec meter over Modbus TCP', () => {
  it('is discovered at 40000 with models 1 and 203, and its counters integrate the profile', async () => {
    // Exports 3600 W for the first 1000 s, then imports 1800 W.
    const { client, time } = await meter(PORT, (t) => (t < 1_800_001_000 ? 3600 : -1800));
    const { base, models } = await client.discover();
    expect(base).toBe(40000);
    expect(models).toEqual([
      { id: 1, start: 40002, length: 66 },
      { id: 203, start: 40070, length: 105 },
    ]);
    expect(await client.readMeter()).toEqual({
      watts: 3600,
      importWh: null,
      exportWh: null,
      energyImplemented: true,
    });
    time.advance(1000);
    const a = await client.readMeter();
    expect(a).toEqual({ watts: -1800, importWh: null, exportWh: 1000n, energyImplemented: true });
    time.advance(2000);
    expect(await client.readMeter()).toEqual({
      watts: -1800,
      importWh: 1000n,
      exportWh: 1000n,
      energyImplemented: true,
    });
  });

  it('finds a map that starts at 50000', async () => {
    const { client } = await meter(PORT + 1, () => 0, { base: 50000 });
    expect((await client.discover()).base).toBe(50000);
  });

  it('reports counters past 2^32 Wh wrapped, as a real acc32 does', async () => {
    const { client, time } = await meter(PORT + 2, () => 36_000, { initialExportWh: 2n ** 32n - 5n });
    expect((await client.readMeter()).exportWh).toBe(2n ** 32n - 5n);
    time.advance(1);
    expect((await client.readMeter()).exportWh).toBe(5n); // 2^32 - 5 + 10, wrapped
  });

  it('error: a write to the read-only meter gets a Modbus exception', async () => {
    await meter(PORT + 3, () => 0);
    const ModbusRTU = ModbusModule as unknown as typeof ModbusRTUClass;
    const raw = new ModbusRTU();
    await raw.connectTCP('127.0.0.1', { port: PORT + 3 });
    raw.setTimeout(1000);
    raw.setID(1);
    open.push({ close: () => new Promise((r) => raw.close(() => r())) });
    await expect(raw.writeRegisters(40088, [1])).rejects.toMatchObject({ modbusCode: 2 });
    await expect(raw.readHoldingRegisters(39000, 2)).rejects.toMatchObject({ modbusCode: 2 });
  });

  it('error: no device at the address names host and port', async () => {
    await expect(connectSunSpec({ host: '127.0.0.1', port: PORT + 400, timeoutMs: 500 })).rejects.toThrow(
      `cannot connect to the Modbus device at 127.0.0.1:${PORT + 400}`,
    );
  });
});
