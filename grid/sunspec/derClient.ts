/**
 * A client for IEEE 1547 DER devices on Modbus TCP (router, energy hub, energy port,
 * rectiverter): finds models 701, 704 and 713 by walking the SunSpec map, reads power,
 * setpoints and state of charge, and writes setpoints the way FIELD.md says: the value and
 * its revert time first, then the enable. One connection, one request at a time, a request
 * timeout, and a reconnect after the connection drops.
 */
import modbusSerial from 'modbus-serial';
import type { ModbusRTU as ModbusRTUClass } from 'modbus-serial/ModbusRTU.js';
import { BaseError } from '../../chain/errors/index.js';
import {
  acc64,
  BALANCE_64900,
  DER_701,
  DER_704,
  END_MODEL_ID,
  encodeInt32,
  encodeUint32,
  int16,
  int32,
  MAX_READ_REGISTERS,
  STORAGE_713,
  SUNS_MARKER,
  SUNSPEC_BASES,
  scaleFactor,
  uint16,
  uint32,
} from './registers.js';

export class ModbusWriteError extends BaseError {
  override name = 'ModbusWriteError' as const;
  /** The Modbus exception code the device answered, when it answered one. */
  readonly modbusCode: number | undefined;
  constructor(shortMessage: string, fields: { cause?: unknown; details?: string; modbusCode?: number }) {
    super(shortMessage, fields);
    this.modbusCode = fields.modbusCode;
  }
}

/** What a DER device reports. */
export interface DerStatus {
  /** Present power, W (the device's sign: + export / discharge / a-to-b flow). */
  watts: number | null;
  /** WSet path (hub, port, rectiverter); null when the device does not implement it. */
  setpoint: { enabled: boolean; watts: number; revertSeconds: number; remainingSeconds: number } | null;
  /** WMaxLimPct path (router), percent of the rating; null when not implemented. */
  limit: { enabled: boolean; percent: number; revertSeconds: number; remainingSeconds: number } | null;
  /** State of charge, percent (model 713), or null. */
  socPercent: number | null;
  /**
   * Unserved energy (vendor model 64900: energy port = its cell, router = the complex):
   * cumulative load shed and PV curtailed, whole Wh, and the present W; null when the device
   * does not carry the model.
   */
  balance: { shedWh: bigint; curtailedWh: bigint; shedW: number | null; curtailedW: number | null } | null;
}

export interface DerClientParameters {
  host: string;
  port: number;
  unitId?: number;
  /** Per-request timeout, ms (modbus-serial has none by default). */
  timeoutMs?: number;
}

export interface DerClient {
  read(): Promise<DerStatus>;
  /** Writes WSet (W) and WSetRvrtTms (s), then enables. */
  writeSetpoint(watts: number, revertSeconds: number): Promise<void>;
  /** Writes WMaxLimPct (percent, 0.1 % resolution) and its revert time, then enables. */
  writeLimit(percent: number, revertSeconds: number): Promise<void>;
  /** Clears the enable of the WSet (or, for a router, the WMaxLimPct) path. */
  disable(): Promise<void>;
  close(): Promise<void>;
}

const ModbusRTU = modbusSerial as unknown as typeof ModbusRTUClass;

/**
 * Connects to a DER device (lazily: the first request connects, and a dropped connection
 * is re-established on the next request).
 */
export function createDerClient(parameters: DerClientParameters): DerClient {
  const unitId = parameters.unitId ?? 1;
  const where = `${parameters.host}:${parameters.port} unit ${unitId}`;
  let client: InstanceType<typeof ModbusRTUClass> | undefined;
  let models: Map<number, number> | undefined;
  let queue: Promise<unknown> = Promise.resolve();

  async function connection() {
    if (client?.isOpen) return client;
    const next = new ModbusRTU();
    try {
      await next.connectTCP(parameters.host, { port: parameters.port });
    } catch (cause) {
      throw new ModbusWriteError(`cannot connect to the Modbus device at ${where}`, { cause });
    }
    next.setTimeout(parameters.timeoutMs ?? 2000);
    next.setID(unitId);
    client = next;
    return next;
  }

  function reason(cause: unknown): { text: string; code?: number } {
    const code = (cause as { modbusCode?: number }).modbusCode;
    return code !== undefined
      ? { text: `Modbus exception ${code}`, code }
      : { text: (cause as Error).message ?? String(cause) };
  }

  function serially<T>(work: (c: InstanceType<typeof ModbusRTUClass>) => Promise<T>): Promise<T> {
    const next = queue.then(async () => work(await connection()));
    queue = next.catch(() => {});
    return next;
  }

  const readRegisters = (address: number, length: number) =>
    serially(async (c) => {
      try {
        return (await c.readHoldingRegisters(address, length)).data;
      } catch (cause) {
        const r = reason(cause);
        throw new ModbusWriteError(
          `reading registers ${address}..${address + length - 1} of ${where} failed: ${r.text}`,
          {
            cause,
            ...(r.code !== undefined ? { modbusCode: r.code } : {}),
          },
        );
      }
    });

  const writeRegisters = (address: number, values: number[], point: string) =>
    serially(async (c) => {
      try {
        await c.writeRegisters(address, values);
      } catch (cause) {
        const r = reason(cause);
        throw new ModbusWriteError(
          `writing ${point} (register ${address}) = [${values.join(', ')}] to ${where} failed: ${r.text}`,
          {
            cause,
            details: r.code === 3 ? 'the device refused the value (out of its limits)' : undefined,
            ...(r.code !== undefined ? { modbusCode: r.code } : {}),
          } as { cause: unknown; details?: string; modbusCode?: number },
        );
      }
    });

  async function readBlock(start: number, length: number): Promise<number[]> {
    const out: number[] = [];
    for (let at = start; at < start + length; at += MAX_READ_REGISTERS) {
      out.push(...(await readRegisters(at, Math.min(MAX_READ_REGISTERS, start + length - at))));
    }
    return out;
  }

  async function discover(): Promise<Map<number, number>> {
    if (models) return models;
    for (const base of SUNSPEC_BASES) {
      let marker: number[];
      try {
        marker = await readRegisters(base, 2);
      } catch {
        continue;
      }
      if (marker[0] !== SUNS_MARKER[0] || marker[1] !== SUNS_MARKER[1]) continue;
      const found = new Map<number, number>();
      let at = base + 2;
      for (let guard = 0; guard < 64; guard++) {
        const [id = END_MODEL_ID, length = 0] = await readRegisters(at, 2);
        if (id === END_MODEL_ID) {
          models = found;
          return found;
        }
        found.set(id, at);
        at += 2 + length;
      }
      throw new ModbusWriteError(`the SunSpec map of ${where} has no end model within 64 models`, {});
    }
    throw new ModbusWriteError(`no SunSpec map at ${where}`, {});
  }

  async function controlsAt(): Promise<number> {
    const start = (await discover()).get(DER_704.id);
    if (start === undefined) throw new ModbusWriteError(`${where} has no DER controls model 704`, {});
    return start;
  }

  return {
    async read() {
      const found = await discover();
      const m701 = found.get(DER_701.id);
      const m704 = found.get(DER_704.id);
      const m713 = found.get(STORAGE_713.id);
      let watts: number | null = null;
      if (m701 !== undefined) {
        const r = await readBlock(m701, 2 + DER_701.length);
        const w = int16(r[DER_701.W] ?? 0x8000);
        const sf = scaleFactor(r[DER_701.W_SF] ?? 0x8000);
        watts = w === null || sf === null ? null : w * 10 ** sf;
      }
      let setpoint: DerStatus['setpoint'] = null;
      let limit: DerStatus['limit'] = null;
      if (m704 !== undefined) {
        const r = await readBlock(m704, 2 + DER_704.length);
        const at = (o: number) => r[o] ?? 0xffff;
        const wSet = int32(at(DER_704.WSet), at(DER_704.WSet + 1));
        const wSf = scaleFactor(at(DER_704.WSet_SF));
        if (uint16(at(DER_704.WSetEna)) !== null && wSet !== null && wSf !== null) {
          setpoint = {
            enabled: at(DER_704.WSetEna) === 1,
            watts: wSet * 10 ** wSf,
            revertSeconds: uint32(at(DER_704.WSetRvrtTms), at(DER_704.WSetRvrtTms + 1)) ?? 0,
            remainingSeconds: uint32(at(DER_704.WSetRvrtRem), at(DER_704.WSetRvrtRem + 1)) ?? 0,
          };
        }
        const pct = uint16(at(DER_704.WMaxLimPct));
        const pSf = scaleFactor(at(DER_704.WMaxLimPct_SF));
        if (uint16(at(DER_704.WMaxLimPctEna)) !== null && pct !== null && pSf !== null) {
          limit = {
            enabled: at(DER_704.WMaxLimPctEna) === 1,
            percent: pct * 10 ** pSf,
            revertSeconds: uint32(at(DER_704.WMaxLimPctRvrtTms), at(DER_704.WMaxLimPctRvrtTms + 1)) ?? 0,
            remainingSeconds: uint32(at(DER_704.WMaxLimPctRvrtRem), at(DER_704.WMaxLimPctRvrtRem + 1)) ?? 0,
          };
        }
      }
      let socPercent: number | null = null;
      if (m713 !== undefined) {
        const r = await readBlock(m713, 2 + STORAGE_713.length);
        const soc = uint16(r[STORAGE_713.SoC] ?? 0xffff);
        const sf = scaleFactor(r[STORAGE_713.Pct_SF] ?? 0x8000);
        socPercent = soc === null || sf === null ? null : soc * 10 ** sf;
      }
      let balance: DerStatus['balance'] = null;
      const m64900 = found.get(BALANCE_64900.id);
      if (m64900 !== undefined) {
        const r = await readBlock(m64900, 2 + BALANCE_64900.length);
        const whSf = scaleFactor(r[BALANCE_64900.Wh_SF] ?? 0x8000);
        const wSf = scaleFactor(r[BALANCE_64900.W_SF] ?? 0x8000);
        // With Wh_SF implemented, an acc64 of 0 is a zero count (docs/modbus.md).
        const energy = (at: number) => {
          const v = acc64(r.slice(at, at + 4)) ?? 0n;
          return (whSf ?? 0) >= 0 ? v * 10n ** BigInt(whSf ?? 0) : v / 10n ** BigInt(-(whSf ?? 0));
        };
        const power = (at: number) => {
          const w = int16(r[at] ?? 0x8000);
          return w === null || wSf === null ? null : w * 10 ** wSf;
        };
        if (whSf !== null) {
          balance = {
            shedWh: energy(BALANCE_64900.ShedWh),
            curtailedWh: energy(BALANCE_64900.CurtWh),
            shedW: power(BALANCE_64900.ShedW),
            curtailedW: power(BALANCE_64900.CurtW),
          };
        }
      }
      return { watts, setpoint, limit, socPercent, balance };
    },
    async writeSetpoint(watts, revertSeconds) {
      const start = await controlsAt();
      await writeRegisters(start + DER_704.WSetRvrtTms, encodeUint32(revertSeconds), 'WSetRvrtTms');
      await writeRegisters(start + DER_704.WSet, encodeInt32(watts), 'WSet');
      await writeRegisters(start + DER_704.WSetEna, [1], 'WSetEna');
    },
    async writeLimit(percent, revertSeconds) {
      const start = await controlsAt();
      await writeRegisters(
        start + DER_704.WMaxLimPctRvrtTms,
        encodeUint32(revertSeconds),
        'WMaxLimPctRvrtTms',
      );
      await writeRegisters(start + DER_704.WMaxLimPct, [Math.round(percent * 10)], 'WMaxLimPct');
      await writeRegisters(start + DER_704.WMaxLimPctEna, [1], 'WMaxLimPctEna');
    },
    async disable() {
      const start = await controlsAt();
      const status = await this.read();
      if (status.setpoint) await writeRegisters(start + DER_704.WSetEna, [0], 'WSetEna');
      else await writeRegisters(start + DER_704.WMaxLimPctEna, [0], 'WMaxLimPctEna');
    },
    close: () =>
      new Promise((resolve) => {
        if (!client?.isOpen) return resolve();
        client.close(() => resolve());
      }),
  };
}
