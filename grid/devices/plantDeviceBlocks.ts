/**
 * SunSpec register maps of the plant's devices, backed by the plant model:
 * - router, energy hub, energy port, rectiverter: IEEE 1547 DER models 1 + 701 + 704 (+ 713
 *   for the hub's state of charge), the write path of FIELD.md;
 * - meter at a cell's boundary: models 1 + 203, counters that integrate the physics.
 * docs/modbus.md lists every address and what each point means for each device.
 */
import type { Plant, PlantDevice } from '../plant/index.js';
import {
  BALANCE_64900,
  COMMON_1,
  DER_701,
  DER_704,
  encodeAcc32,
  encodeAcc64,
  encodeInt16,
  encodeInt32,
  encodeString,
  encodeUint32,
  int32,
  METER_203,
  STORAGE_713,
  uint32,
} from '../sunspec/registers.js';
import { ModbusException, type SunSpecBlock } from './sunspecDeviceServer.js';

const NOT_IMPLEMENTED = 0xffff;

/** Model 1: manufacturer "gridcell", the device kind as model, its id as serial number. */
export function commonBlock(model: string, serialNumber: string, unitId = 1): SunSpecBlock {
  const registers: number[] = [];
  const put = (offset: number, values: number[]) => {
    values.forEach((v, i) => {
      registers[offset + i] = v;
    });
  };
  put(COMMON_1.Mn, encodeString('gridcell', 16));
  put(COMMON_1.Md, encodeString(model, 16));
  put(COMMON_1.Opt, encodeString('plant simulator', 8));
  put(COMMON_1.Vr, encodeString('1', 8));
  put(COMMON_1.SN, encodeString(serialNumber, 16));
  registers[COMMON_1.DA] = unitId;
  return { id: COMMON_1.id, length: COMMON_1.length, read: (offset) => registers[offset] ?? 0 };
}

/** The smallest scale factor >= 0 that puts `maxAbs` in an int16. */
function scaleFor(maxAbs: number): number {
  let sf = 0;
  while (maxAbs / 10 ** sf > 32767) sf++;
  return sf;
}

/** The device's present power as its 701 W reports it, W. */
function powerOf(plant: Plant, device: PlantDevice): number {
  const state = plant.state();
  switch (device.kind) {
    case 'router':
      return state.routerW;
    case 'hub':
      return state.cells.find((c) => c.name === device.cell)?.hubW ?? 0;
    case 'port':
      return state.cells.find((c) => c.name === device.cell)?.portW ?? 0;
    case 'meter':
      return state.cells.find((c) => c.name === device.cell)?.boundaryW ?? 0;
    case 'link':
      return state.links.find((l) => `link:${l.name}` === device.id)?.flowW ?? 0;
  }
}

/**
 * Models 701 + 704 (+ 713 for a hub) of a controllable device. The router's write path is
 * WMaxLimPct (its exchange limit, % of its rating; 0 opens it); the others' is WSet (W).
 */
export function derBlocks(plant: Plant, device: PlantDevice): SunSpecBlock[] {
  const range = device.range;
  if (!range) throw new Error(`${device.id} is not a controllable device`);
  const isRouter = device.kind === 'router';
  const wSf = scaleFor(Math.max(Math.abs(range.min), Math.abs(range.max)));
  const ratedW = range.max; // the router's rating (its range is [0, rating])

  const measurements: SunSpecBlock = {
    id: DER_701.id,
    length: DER_701.length,
    read(offset) {
      if (offset === DER_701.W) return encodeInt16(Math.round(powerOf(plant, device) / 10 ** wSf));
      if (offset === DER_701.W_SF) return encodeInt16(wSf);
      if (offset === DER_701.TotWh_SF) return 0;
      const e = plant.deviceEnergy(device.id);
      if (offset >= DER_701.TotWhInj && offset < DER_701.TotWhInj + 4)
        return encodeAcc64(e.injectedWs / 3600n)[offset - DER_701.TotWhInj] ?? 0;
      if (offset >= DER_701.TotWhAbs && offset < DER_701.TotWhAbs + 4)
        return encodeAcc64(e.absorbedWs / 3600n)[offset - DER_701.TotWhAbs] ?? 0;
      return NOT_IMPLEMENTED;
    },
  };

  const remaining = () => {
    const s = plant.setpoint(device.id);
    if (!s.enabled || s.revertSeconds === 0) return 0;
    return Math.max(0, s.writtenAt + s.revertSeconds - plant.time());
  };
  const controls: SunSpecBlock = {
    id: DER_704.id,
    length: DER_704.length,
    read(offset) {
      const s = plant.setpoint(device.id);
      if (isRouter) {
        switch (offset) {
          case DER_704.WMaxLimPctEna:
            return s.enabled ? 1 : 0;
          case DER_704.WMaxLimPct:
            return Math.round((s.watts * 1000) / ratedW); // 0.1 % (SF -1)
          case DER_704.WMaxLimPctRvrt:
            return 1000;
          case DER_704.WMaxLimPctEnaRvrt:
            return 0;
          case DER_704.WMaxLimPctRvrtTms:
          case DER_704.WMaxLimPctRvrtTms + 1:
            return encodeUint32(s.revertSeconds)[offset - DER_704.WMaxLimPctRvrtTms] ?? 0;
          case DER_704.WMaxLimPctRvrtRem:
          case DER_704.WMaxLimPctRvrtRem + 1:
            return encodeUint32(remaining())[offset - DER_704.WMaxLimPctRvrtRem] ?? 0;
          case DER_704.WMaxLimPct_SF:
            return encodeInt16(-1);
          default:
            return NOT_IMPLEMENTED;
        }
      }
      switch (offset) {
        case DER_704.WSetEna:
          return s.enabled ? 1 : 0;
        case DER_704.WSetMod:
          return 1;
        case DER_704.WSet:
        case DER_704.WSet + 1:
          return encodeInt32(s.watts)[offset - DER_704.WSet] ?? 0;
        case DER_704.WSetRvrt:
        case DER_704.WSetRvrt + 1:
          return encodeInt32(0)[offset - DER_704.WSetRvrt] ?? 0;
        case DER_704.WSetEnaRvrt:
          return 0;
        case DER_704.WSetRvrtTms:
        case DER_704.WSetRvrtTms + 1:
          return encodeUint32(s.revertSeconds)[offset - DER_704.WSetRvrtTms] ?? 0;
        case DER_704.WSetRvrtRem:
        case DER_704.WSetRvrtRem + 1:
          return encodeUint32(remaining())[offset - DER_704.WSetRvrtRem] ?? 0;
        case DER_704.WSet_SF:
          return 0;
        default:
          return NOT_IMPLEMENTED;
      }
    },
    write(offset, values) {
      // Points are written whole; a write may cover several adjacent writable points.
      const points = isRouter
        ? [
            { at: DER_704.WMaxLimPctEna, size: 1 },
            { at: DER_704.WMaxLimPct, size: 1 },
            { at: DER_704.WMaxLimPctRvrtTms, size: 2 },
          ]
        : [
            { at: DER_704.WSetEna, size: 1 },
            { at: DER_704.WSetMod, size: 1 },
            { at: DER_704.WSet, size: 2 },
            { at: DER_704.WSetRvrtTms, size: 2 },
          ];
      const change: { enabled?: boolean; watts?: number; revertSeconds?: number } = {};
      let i = 0;
      while (i < values.length) {
        const point = points.find((p) => p.at === offset + i);
        if (!point || i + point.size > values.length) {
          throw new ModbusException(
            0x02,
            `register ${offset + i} of model 704 of ${device.id} is not the start of a writable point (or the write splits one)`,
          );
        }
        const raw = values.slice(i, i + point.size);
        const v0 = raw[0] ?? 0;
        const v1 = raw[1] ?? 0;
        switch (point.at) {
          case DER_704.WMaxLimPctEna:
          case DER_704.WSetEna:
            if (v0 > 1) throw new ModbusException(0x03, `${device.id}: enable takes 0 or 1, got ${v0}`);
            change.enabled = v0 === 1;
            break;
          case DER_704.WSetMod:
            if (v0 !== 1) throw new ModbusException(0x03, `${device.id}: WSetMod takes 1 (watts), got ${v0}`);
            break;
          case DER_704.WMaxLimPct: {
            if (v0 > 1000)
              throw new ModbusException(0x03, `${device.id}: WMaxLimPct ${v0 / 10} % is above 100 %`);
            change.watts = Math.round((v0 * ratedW) / 1000);
            break;
          }
          case DER_704.WSet: {
            const w = int32(v0, v1);
            if (w === null || w < range.min || w > range.max) {
              throw new ModbusException(
                0x03,
                `${device.id}: WSet ${w} W is outside the device's limits [${range.min}, ${range.max}]`,
              );
            }
            change.watts = w;
            break;
          }
          case DER_704.WMaxLimPctRvrtTms:
          case DER_704.WSetRvrtTms: {
            const s = uint32(v0, v1);
            if (s === null)
              throw new ModbusException(0x03, `${device.id}: revert time 0xFFFFFFFF is not a time`);
            change.revertSeconds = s;
            break;
          }
        }
        i += point.size;
      }
      plant.write(device.id, change);
    },
  };
  if (device.kind !== 'hub') return [measurements, controls];

  const cell = plant.topology.cells.find((c) => c.name === device.cell);
  const capacityWh = cell?.hub.capacityWh ?? 0;
  const whSf = scaleFor(capacityWh);
  const storage: SunSpecBlock = {
    id: STORAGE_713.id,
    length: STORAGE_713.length,
    read(offset) {
      const state = plant.state().cells.find((c) => c.name === device.cell);
      switch (offset) {
        case STORAGE_713.WHRtg:
          return Math.round(capacityWh / 10 ** whSf);
        case STORAGE_713.WHAvail:
          return Number((state?.storedWs ?? 0n) / 3600n / 10n ** BigInt(whSf));
        case STORAGE_713.SoC:
          return state?.socPermille ?? 0; // 0.1 % (Pct_SF -1)
        case STORAGE_713.SoH:
          return 1000;
        case STORAGE_713.Sta:
          return 1; // OK
        case STORAGE_713.WH_SF:
          return encodeInt16(whSf);
        case STORAGE_713.Pct_SF:
          return encodeInt16(-1);
        default:
          return NOT_IMPLEMENTED;
      }
    },
  };
  return [measurements, controls, storage];
}

/**
 * Model 203 of the meter at a cell's boundary (its port and its DC links): W and the
 * cumulative TotWhImp/TotWhExp the physics integrates, whole watts and Wh (SF 0). Read-only.
 */
export function plantMeterBlock(plant: Plant, cell: string): SunSpecBlock {
  return {
    id: METER_203.id,
    length: METER_203.length,
    read(offset) {
      switch (offset) {
        case METER_203.W: {
          const w = plant.state().cells.find((c) => c.name === cell)?.boundaryW ?? 0;
          return encodeInt16(Math.max(-32767, Math.min(32767, w)));
        }
        case METER_203.W_SF:
        case METER_203.TotWh_SF:
          return 0;
        case METER_203.TotWhExp:
        case METER_203.TotWhExp + 1:
          return encodeAcc32(plant.cellCounters(cell).exportWh)[offset - METER_203.TotWhExp] ?? 0;
        case METER_203.TotWhImp:
        case METER_203.TotWhImp + 1:
          return encodeAcc32(plant.cellCounters(cell).importWh)[offset - METER_203.TotWhImp] ?? 0;
        default:
          return NOT_IMPLEMENTED;
      }
    },
  };
}

/**
 * Vendor model 64900 (read-only) of an energy port (its cell) or of the router (the whole
 * complex): load shed and PV curtailed by the plant, cumulative whole Wh (rounded down) and
 * present W. The cell's figures are the plant's own per-cell counters; the complex's are its
 * totals, so the router's counter may exceed the sum of the ports' by up to one Wh per cell.
 */
export function balanceBlock(plant: Plant, device: PlantDevice): SunSpecBlock {
  const cell = device.kind === 'router' ? undefined : device.cell;
  const range = device.range ?? { min: 0, max: 0 };
  const wSf = scaleFor(Math.max(Math.abs(range.min), Math.abs(range.max), 1));
  const figures = () => {
    const state = plant.state();
    if (cell === undefined) {
      const totals = plant.totals();
      return {
        shedWs: totals.shedWs,
        curtailedWs: totals.curtailedWs,
        shedW: state.cells.reduce((s, c) => s + c.shedW, 0),
        curtailedW: state.cells.reduce((s, c) => s + c.curtailedW, 0),
      };
    }
    const c = state.cells.find((x) => x.name === cell);
    return {
      shedWs: c?.shedWs ?? 0n,
      curtailedWs: c?.curtailedWs ?? 0n,
      shedW: c?.shedW ?? 0,
      curtailedW: c?.curtailedW ?? 0,
    };
  };
  const int16W = (w: number) => encodeInt16(Math.max(-32767, Math.min(32767, Math.round(w / 10 ** wSf))));
  return {
    id: BALANCE_64900.id,
    length: BALANCE_64900.length,
    read(offset) {
      const f = figures();
      if (offset >= BALANCE_64900.ShedWh && offset < BALANCE_64900.ShedWh + 4)
        return encodeAcc64(f.shedWs / 3600n)[offset - BALANCE_64900.ShedWh] ?? 0;
      if (offset >= BALANCE_64900.CurtWh && offset < BALANCE_64900.CurtWh + 4)
        return encodeAcc64(f.curtailedWs / 3600n)[offset - BALANCE_64900.CurtWh] ?? 0;
      switch (offset) {
        case BALANCE_64900.ShedW:
          return int16W(f.shedW);
        case BALANCE_64900.CurtW:
          return int16W(f.curtailedW);
        case BALANCE_64900.W_SF:
          return encodeInt16(wSf);
        case BALANCE_64900.Wh_SF:
          return 0;
        default:
          return NOT_IMPLEMENTED;
      }
    },
  };
}
