/**
 * A Modbus TCP server for a SunSpec register map built from model blocks: the "SunS" marker,
 * the models in order, the end model. Every simulated device of the plant (router, hubs,
 * energy ports, rectiverters, meters) is one of these. Reads and writes go through the
 * blocks; an address outside the map, a read-only point or a value the device refuses is
 * answered with a Modbus exception, never ignored (FIELD.md).
 */
import { ServerTCP } from 'modbus-serial';
import { END_MODEL_ID, SUNS_MARKER } from '../sunspec/registers.js';

/** Modbus exception codes (Modbus application protocol v1.1b3, section 7). */
export const ModbusExceptionCode = {
  IllegalFunction: 0x01,
  IllegalDataAddress: 0x02,
  IllegalDataValue: 0x03,
  ServerDeviceFailure: 0x04,
  GatewayTargetFailed: 0x0b,
} as const;

/** Thrown by a block to answer with a Modbus exception (modbus-serial reads `modbusErrorCode`). */
export class ModbusException extends Error {
  readonly modbusErrorCode: number;
  constructor(code: number, message: string) {
    super(message);
    this.modbusErrorCode = code;
  }
}

/** One SunSpec model: its ID, its length L, and its registers after ID and L. */
export interface SunSpecBlock {
  id: number;
  length: number;
  /** The register at `offset` from the model's ID register (2 <= offset < 2 + length). */
  read(offset: number): number;
  /**
   * Writes `values` from `offset` (from the model's ID register). Throws a ModbusException
   * for a read-only point (code 2) or a refused value (code 3). Absent: the model is read-only.
   */
  write?(offset: number, values: number[]): void;
}

export interface SunSpecDeviceServerParameters {
  host?: string;
  /** An explicit port: modbus-serial's ServerTCP given 0 silently listens on 502. */
  port: number;
  unitId?: number;
  /** Where the map starts (40000 by default). */
  base?: number;
  blocks: SunSpecBlock[];
  /** Runs before every request (advance the physics to now). */
  before?: () => Promise<void>;
}

export interface SunSpecDeviceServer {
  host: string;
  port: number;
  unitId: number;
  /** Absolute address of each model's ID register, by model id. */
  modelStart(id: number): number;
  close(): Promise<void>;
}

/**
 * Starts a SunSpec device on Modbus TCP.
 * @example
 * const server = await startSunSpecDeviceServer({ port: 16001, blocks: [common, meter] });
 */
export async function startSunSpecDeviceServer(
  parameters: SunSpecDeviceServerParameters,
): Promise<SunSpecDeviceServer> {
  if (!parameters.port) throw new Error('an explicit port is required (ServerTCP given 0 listens on 502)');
  const host = parameters.host ?? '127.0.0.1';
  const base = parameters.base ?? 40000;
  const unitId = parameters.unitId ?? 1;
  const layout: { block: SunSpecBlock; start: number }[] = [];
  let at = base + 2;
  for (const block of parameters.blocks) {
    layout.push({ block, start: at });
    at += 2 + block.length;
  }
  const endStart = at;
  const mapEnd = endStart + 2;

  function locate(address: number): { block: SunSpecBlock; start: number } | undefined {
    return layout.find(({ block, start }) => address >= start && address < start + 2 + block.length);
  }

  function register(address: number): number {
    if (address === base) return SUNS_MARKER[0];
    if (address === base + 1) return SUNS_MARKER[1];
    if (address === endStart) return END_MODEL_ID;
    if (address === endStart + 1) return 0;
    const found = locate(address);
    if (!found) throw new ModbusException(0x02, `register ${address} is outside the SunSpec map`);
    const offset = address - found.start;
    if (offset === 0) return found.block.id;
    if (offset === 1) return found.block.length;
    return found.block.read(offset) & 0xffff;
  }

  function write(address: number, values: number[]): void {
    const found = locate(address);
    const offset = found ? address - found.start : -1;
    if (!found || offset < 2 || offset + values.length > 2 + found.block.length) {
      throw new ModbusException(
        0x02,
        `registers ${address}..${address + values.length - 1} are not writable points of one model`,
      );
    }
    if (!found.block.write) throw new ModbusException(0x02, `model ${found.block.id} is read-only`);
    found.block.write(offset, values);
  }

  const checkUnit = (unit: number) => {
    if (unit !== unitId) throw new ModbusException(0x0b, `no unit ${unit}`);
  };
  // Serialise requests: a write is applied after the physics has been advanced to its time.
  let queue: Promise<unknown> = Promise.resolve();
  function serially<T>(work: () => T): Promise<T> {
    const next = queue.then(async () => {
      await parameters.before?.();
      return work();
    });
    queue = next.catch(() => {});
    return next;
  }
  // The callback forms: ServerTCP accepts a Promise only per register, not for a block
  // (docs/modbus.md).
  const server = new ServerTCP(
    {
      getMultipleHoldingRegisters: (
        addr: number,
        length: number,
        unit: number,
        cb: (err: Error | null, values: number[]) => void,
      ) => {
        serially(() => {
          checkUnit(unit);
          if (addr < base || addr + length > mapEnd) {
            throw new ModbusException(0x02, `registers ${addr}..${addr + length - 1} are outside the map`);
          }
          return Array.from({ length }, (_, i) => register(addr + i));
        }).then(
          (values) => cb(null, values),
          (error: Error) => cb(error, []),
        );
      },
      getHoldingRegister: (addr: number, unit: number, cb: (err: Error | null, value: number) => void) => {
        serially(() => {
          checkUnit(unit);
          return register(addr);
        }).then(
          (value) => cb(null, value),
          (error: Error) => cb(error, 0),
        );
      },
      setRegister: (addr: number, value: number, unit: number, cb: (err: Error | null) => void) => {
        serially(() => {
          checkUnit(unit);
          write(addr, [value]);
        }).then(
          () => cb(null),
          (error: Error) => cb(error),
        );
      },
      setRegisterArray: (addr: number, values: number[], unit: number, cb: (err: Error | null) => void) => {
        serially(() => {
          checkUnit(unit);
          write(addr, values);
        }).then(
          () => cb(null),
          (error: Error) => cb(error),
        );
      },
    },
    { host, port: parameters.port, unitID: unitId },
  );
  await new Promise<void>((resolve, reject) => {
    server.once('initialized', () => resolve());
    server.once('serverError', reject);
  });
  return {
    host,
    port: parameters.port,
    unitId,
    modelStart(id) {
      const found = layout.find(({ block }) => block.id === id);
      if (!found) throw new Error(`no model ${id} in this map`);
      return found.start;
    },
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
