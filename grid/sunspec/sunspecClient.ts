/**
 * A SunSpec client over Modbus TCP: finds the map (40000, then 0, then 50000), walks its
 * models, and reads the meter points the oracle needs. One connection, one request at a time.
 */
import modbusSerial from 'modbus-serial';
import type { ModbusRTU as ModbusRTUClass } from 'modbus-serial/ModbusRTU.js';
import { BaseError } from '../../chain/errors/index.js';
import {
  acc32,
  END_MODEL_ID,
  int16,
  MAX_READ_REGISTERS,
  METER_203,
  SUNS_MARKER,
  SUNSPEC_BASES,
  scaleFactor,
} from './registers.js';

export interface SunSpecModel {
  id: number;
  /** Address of the model's ID register. */
  start: number;
  /** Registers after the ID and length registers (L). */
  length: number;
}

export interface MeterSample {
  /** Total real power, W (positive = export), or null when not implemented. */
  watts: number | null;
  /** Cumulative energy counters, Wh, as the meter holds them (32-bit, they wrap). */
  importWh: bigint | null;
  exportWh: bigint | null;
  /**
   * Whether the meter implements its energy points (TotWh_SF is not the sentinel). An acc32
   * reads 0 both when not implemented and when the counter is at zero: with the scale factor
   * implemented, a null counter is a counter at zero.
   */
  energyImplemented: boolean;
}

export class ModbusReadError extends BaseError {
  override name = 'ModbusReadError' as const;
}

export interface SunSpecClientParameters {
  /** Modbus TCP: the device's host and port. */
  host?: string | undefined;
  port?: number | undefined;
  /** Modbus RTU instead of TCP: a serial port (8 data bits, no parity, 1 stop bit by default). */
  serial?:
    | {
        path: string;
        baudRate: number;
        parity?: 'none' | 'even' | 'odd' | undefined;
        stopBits?: 1 | 2 | undefined;
      }
    | undefined;
  unitId?: number;
  /** Per-request timeout, ms (modbus-serial has none by default). */
  timeoutMs?: number;
}

export interface SunSpecClient {
  /** The map's base and models, read once and cached. */
  discover(): Promise<{ base: number; models: SunSpecModel[] }>;
  /** Power and energy counters of the first meter model (201-204). */
  readMeter(): Promise<MeterSample>;
  close(): Promise<void>;
}

// modbus-serial is CommonJS: its module.exports is the client class, which its typings
// declare as a default export; under NodeNext that default is typed as the whole module.
const ModbusRTU = modbusSerial as unknown as typeof ModbusRTUClass;

/** Meter models 201 (single phase) to 204 (delta) share the point layout read here. */
const METER_MODELS = new Set([201, 202, 203, 204]);

export async function connectSunSpec(parameters: SunSpecClientParameters): Promise<SunSpecClient> {
  const { serial, host, port } = parameters;
  const device = serial ? `${serial.path} (RTU, ${serial.baudRate} baud)` : `${host}:${port}`;
  const where = `${device} unit ${parameters.unitId ?? 1}`;
  const client = new ModbusRTU();
  try {
    if (serial) {
      await client.connectRTUBuffered(serial.path, {
        baudRate: serial.baudRate,
        dataBits: 8,
        parity: serial.parity ?? 'none',
        stopBits: serial.stopBits ?? 1,
      });
    } else {
      if (!host || !port) throw new Error('give host and port (TCP) or a serial port (RTU)');
      await client.connectTCP(host, { port });
    }
  } catch (cause) {
    throw new ModbusReadError(
      `cannot connect to the Modbus device at ${device}: ${(cause as Error).message}`,
      {
        cause,
      },
    );
  }
  client.setTimeout(parameters.timeoutMs ?? 2000);
  client.setID(parameters.unitId ?? 1);

  // Requests on one connection are serialised: modbus-serial matches answers to requests
  // by order, and setID is per client.
  let queue: Promise<unknown> = Promise.resolve();
  function read(address: number, length: number): Promise<number[]> {
    const next = queue.then(async () => {
      try {
        return (await client.readHoldingRegisters(address, length)).data;
      } catch (cause) {
        const reason =
          (cause as { modbusCode?: number }).modbusCode !== undefined
            ? `Modbus exception ${(cause as { modbusCode: number }).modbusCode}`
            : (cause as Error).message;
        throw new ModbusReadError(
          `reading registers ${address}..${address + length - 1} of ${where} failed: ${reason}`,
          {
            cause,
          },
        );
      }
    });
    queue = next.catch(() => {});
    return next;
  }

  async function readBlock(start: number, length: number): Promise<number[]> {
    const out: number[] = [];
    for (let at = start; at < start + length; at += MAX_READ_REGISTERS) {
      out.push(...(await read(at, Math.min(MAX_READ_REGISTERS, start + length - at))));
    }
    return out;
  }

  let found: { base: number; models: SunSpecModel[] } | undefined;
  async function discover() {
    if (found) return found;
    for (const base of SUNSPEC_BASES) {
      let marker: number[];
      try {
        marker = await read(base, 2);
      } catch {
        continue; // an exception here means no map at this base
      }
      if (marker[0] !== SUNS_MARKER[0] || marker[1] !== SUNS_MARKER[1]) continue;
      const models: SunSpecModel[] = [];
      let at = base + 2;
      for (let guard = 0; guard < 64; guard++) {
        const [id = END_MODEL_ID, length = 0] = await read(at, 2);
        if (id === END_MODEL_ID) {
          found = { base, models };
          return found;
        }
        models.push({ id, start: at, length });
        at += 2 + length;
      }
      throw new ModbusReadError(`the SunSpec map of ${where} has no end model within 64 models`);
    }
    throw new ModbusReadError(`no SunSpec map at ${where}: "SunS" not found at ${SUNSPEC_BASES.join(', ')}`);
  }

  return {
    discover,
    async readMeter() {
      const { models } = await discover();
      const model = models.find((m) => METER_MODELS.has(m.id));
      if (!model) throw new ModbusReadError(`${where} has no meter model (201-204)`);
      // Registers from the model's ID on, so offsets match METER_203.
      const r = await readBlock(model.start, 2 + model.length);
      const at = (offset: number) => r[offset] ?? 0xffff;
      const wSf = scaleFactor(at(METER_203.W_SF));
      const whSf = scaleFactor(at(METER_203.TotWh_SF));
      const w = int16(at(METER_203.W));
      const exp = acc32(at(METER_203.TotWhExp), at(METER_203.TotWhExp + 1));
      const imp = acc32(at(METER_203.TotWhImp), at(METER_203.TotWhImp + 1));
      const energy = (v: bigint | null) =>
        v === null || whSf === null ? null : whSf >= 0 ? v * 10n ** BigInt(whSf) : v / 10n ** BigInt(-whSf);
      return {
        watts: w === null || wSf === null ? null : w * 10 ** wSf,
        importWh: energy(imp),
        exportWh: energy(exp),
        energyImplemented: whSf !== null,
      };
    },
    // modbus-serial's TcpPort.close calls back on the socket's 'close' event, which never
    // comes again for a socket the device already closed (ports/tcpport.js): destroy instead.
    close: () =>
      new Promise<void>((resolve) => {
        if (!client.isOpen) {
          client.destroy(() => resolve());
          setImmediate(resolve);
          return;
        }
        client.close(() => resolve());
      }),
  };
}
