/**
 * A simulated SunSpec meter: a real Modbus TCP server, or a Modbus RTU server on a serial
 * port, with models 1 (common) and 203 (three-phase meter), whose power follows a profile and
 * whose energy counters integrate it. For tests and the demo; a real meter on Modbus TCP or
 * RTU answers the same registers.
 */
import { ServerSerial, ServerTCP } from 'modbus-serial';
import type { Clock } from '../../chain/clock/index.js';
import {
  COMMON_1,
  END_MODEL_ID,
  encodeAcc32,
  encodeInt16,
  encodeString,
  METER_203,
  SUNS_MARKER,
} from '../sunspec/registers.js';

export interface SunSpecMeterServerParameters {
  host?: string;
  /** An explicit port: modbus-serial's ServerTCP given 0 silently listens on 502. */
  port?: number;
  /** Modbus RTU on this serial port (8 data bits, no parity, 1 stop bit) instead of TCP. */
  serial?: { path: string; baudRate: number };
  unitId?: number;
  /** Where the map starts (40000 by default). */
  base?: number;
  serialNumber?: string;
  /** Power at the connection point at time t (Unix seconds), W; positive = export. */
  profile: (t: number) => number;
  /** The simulation's time; counters integrate the profile between readings. */
  clock: Clock;
  /** Counters at start, Wh (to test the 2^32 wrap). */
  initialImportWh?: bigint;
  initialExportWh?: bigint;
}

export interface SunSpecMeterServer {
  /** Current counters as the meter holds them (before the 32-bit wrap), Wh. */
  counters(): Promise<{ importWh: bigint; exportWh: bigint }>;
  close(): Promise<void>;
}

class ModbusException extends Error {
  readonly modbusErrorCode: number;
  constructor(code: number, message: string) {
    super(message);
    this.modbusErrorCode = code;
  }
}

/** Power is reported with W_SF = 0 (whole watts) and energy with TotWh_SF = 0 (Wh). */
export async function startSunSpecMeterServer(
  parameters: SunSpecMeterServerParameters,
): Promise<SunSpecMeterServer> {
  const { serial, port } = parameters;
  if (serial && port) throw new Error('give a TCP port or a serial port (RTU), not both');
  if (!serial && !port) {
    throw new Error('give an explicit TCP port (ServerTCP given 0 listens on 502) or a serial port (RTU)');
  }
  const base = parameters.base ?? 40000;
  const unitId = parameters.unitId ?? 1;
  const commonStart = base + 2;
  const meterStart = commonStart + 2 + COMMON_1.length;
  const endStart = meterStart + 2 + METER_203.length;
  const mapEnd = endStart + 2;

  // Energy in milli-watt-hours so that short steps are not lost to rounding.
  let importMWh = (parameters.initialImportWh ?? 0n) * 1000n;
  let exportMWh = (parameters.initialExportWh ?? 0n) * 1000n;
  let last = Number(await parameters.clock.now());
  let watts = parameters.profile(last);

  async function advance(): Promise<void> {
    const now = Number(await parameters.clock.now());
    // Integrate with the left-point rule, one step per elapsed second at most.
    for (let t = last; t < now; t++) {
      const w = parameters.profile(t);
      const mWh = BigInt(Math.round((Math.abs(w) * 1000) / 3600));
      if (w >= 0) exportMWh += mWh;
      else importMWh += mWh;
    }
    if (now > last) last = now;
    watts = parameters.profile(now);
  }

  function register(address: number): number {
    if (address === base) return SUNS_MARKER[0];
    if (address === base + 1) return SUNS_MARKER[1];
    if (address === commonStart) return COMMON_1.id;
    if (address === commonStart + 1) return COMMON_1.length;
    if (address > commonStart + 1 && address < meterStart) return common[address - commonStart] ?? 0;
    if (address === meterStart) return METER_203.id;
    if (address === meterStart + 1) return METER_203.length;
    if (address > meterStart + 1 && address < endStart) return meter(address - meterStart);
    if (address === endStart) return END_MODEL_ID;
    if (address === endStart + 1) return 0;
    throw new ModbusException(0x02, `register ${address} is outside the SunSpec map`);
  }

  const common: number[] = [];
  common[COMMON_1.Mn] = 0;
  encodeString('gridcell', 16).forEach((r, i) => {
    common[COMMON_1.Mn + i] = r;
  });
  encodeString('simulated meter', 16).forEach((r, i) => {
    common[COMMON_1.Md + i] = r;
  });
  encodeString(parameters.serialNumber ?? `SIM${parameters.port ?? 'RTU'}`, 16).forEach((r, i) => {
    common[COMMON_1.SN + i] = r;
  });
  common[COMMON_1.DA] = unitId;

  function meter(offset: number): number {
    switch (offset) {
      case METER_203.W:
        return encodeInt16(Math.max(-32767, Math.min(32767, Math.round(watts))));
      case METER_203.W_SF:
      case METER_203.TotWh_SF:
        return 0;
      case METER_203.TotWhExp:
        return encodeAcc32(exportMWh / 1000n)[0];
      case METER_203.TotWhExp + 1:
        return encodeAcc32(exportMWh / 1000n)[1];
      case METER_203.TotWhImp:
        return encodeAcc32(importMWh / 1000n)[0];
      case METER_203.TotWhImp + 1:
        return encodeAcc32(importMWh / 1000n)[1];
      default:
        return 0xffff; // not implemented
    }
  }

  const readOnly = () => {
    throw new ModbusException(0x02, 'the meter map is read-only');
  };
  // The callback forms: modbus-serial's ServerTCP accepts a Promise only per register; a
  // Promise for a whole block fails its length check (servers/servertcp_handler.js). Its
  // ServerSerial answers with the same handlers, so one vector serves both.
  const vector = {
    getMultipleHoldingRegisters: (
      addr: number,
      length: number,
      unit: number,
      cb: (err: Error | null, values: number[]) => void,
    ) => {
      const answer = async () => {
        if (unit !== unitId) throw new ModbusException(0x0b, `no unit ${unit}`);
        if (addr < base || addr + length > mapEnd) {
          throw new ModbusException(0x02, `registers ${addr}..${addr + length - 1} are outside the map`);
        }
        await advance();
        return Array.from({ length }, (_, i) => register(addr + i));
      };
      answer().then(
        (values) => cb(null, values),
        (error: Error) => cb(error, []),
      );
    },
    getHoldingRegister: (addr: number, unit: number, cb: (err: Error | null, value: number) => void) => {
      const answer = async () => {
        if (unit !== unitId) throw new ModbusException(0x0b, `no unit ${unit}`);
        await advance();
        return register(addr);
      };
      answer().then(
        (value) => cb(null, value),
        (error: Error) => cb(error, 0),
      );
    },
    setRegister: readOnly,
    setRegisterArray: readOnly,
  };
  let server: ServerSerial | ServerTCP;
  if (serial) {
    server = await openSerialServer(vector, serial, unitId);
  } else {
    const tcp = new ServerTCP(vector, {
      host: parameters.host ?? '127.0.0.1',
      port: port ?? 0,
      unitID: unitId,
    });
    await new Promise<void>((resolve, reject) => {
      tcp.once('initialized', () => resolve());
      tcp.once('serverError', reject);
    });
    server = tcp;
  }
  return {
    counters: async () => {
      await advance();
      return { importWh: importMWh / 1000n, exportWh: exportMWh / 1000n };
    },
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

/**
 * modbus-serial's ServerSerial on `serial.path`: resolves once the port is open, rejects with
 * the port's error (a missing device, no permission). Note: ServerSerial recomputes the CRC of
 * each request before it parses it (servers/serverserial.js), so it answers a frame whose CRC
 * a line garbled; the client checks the CRC of each answer.
 */
function openSerialServer(
  vector: ConstructorParameters<typeof ServerSerial>[0],
  serial: { path: string; baudRate: number },
  unitId: number,
): Promise<ServerSerial> {
  return new Promise((resolve, reject) => {
    const server: ServerSerial = new ServerSerial(vector, {
      path: serial.path,
      baudRate: serial.baudRate,
      unitID: unitId,
      openCallback: (error) => {
        if (error) reject(new Error(`cannot open ${serial.path} for the simulated meter: ${error.message}`));
        else resolve(server);
      },
    });
  });
}
