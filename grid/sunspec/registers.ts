/**
 * SunSpec register encoding (SunSpec Information Model Specification): big-endian 16-bit
 * registers, 32-bit points high word first, value = raw x 10^SF, and the not-implemented
 * sentinels int16 0x8000, uint16 0xFFFF, acc32 0, SF -32768, which read as null.
 */

/** "SunS", the marker at the start of a SunSpec register map. */
export const SUNS_MARKER = [0x5375, 0x6e53] as const;
/** The model id that ends the chain of models. */
export const END_MODEL_ID = 0xffff;
/** Where a SunSpec map may start: probe 40000, then 0, then 50000. */
export const SUNSPEC_BASES = [40000, 0, 50000] as const;
/** At most this many registers per Modbus read (Modbus application protocol, FC3). */
export const MAX_READ_REGISTERS = 125;

export function uint16(raw: number): number | null {
  return raw === 0xffff ? null : raw;
}

export function int16(raw: number): number | null {
  if (raw === 0x8000) return null;
  return raw >= 0x8000 ? raw - 0x10000 : raw;
}

/** A scale factor (sunssf): int16, with -32768 meaning "not implemented". */
export function scaleFactor(raw: number): number | null {
  return int16(raw);
}

/** An accumulator (acc32): two registers, high word first; 0 means "not implemented". */
export function acc32(high: number, low: number): bigint | null {
  const value = (BigInt(high) << 16n) | BigInt(low);
  return value === 0n ? null : value;
}

/** Encodes a 32-bit accumulator as two registers, high word first (wrapping at 2^32). */
export function encodeAcc32(value: bigint): [number, number] {
  const v = value % 2n ** 32n;
  return [Number(v >> 16n), Number(v & 0xffffn)];
}

/** Encodes a signed 16-bit value as a register. */
export function encodeInt16(value: number): number {
  if (!Number.isInteger(value) || value < -32768 || value > 32767) {
    throw new RangeError(`${value} does not fit a SunSpec int16`);
  }
  return value < 0 ? value + 0x10000 : value;
}

/** Encodes ASCII text into `registers` registers, two characters each, NUL-padded. */
export function encodeString(text: string, registers: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < registers; i++) {
    const a = text.charCodeAt(2 * i) || 0;
    const b = text.charCodeAt(2 * i + 1) || 0;
    out.push(((a & 0xff) << 8) | (b & 0xff));
  }
  return out;
}

export function decodeString(registers: readonly number[]): string {
  let s = '';
  for (const r of registers) s += String.fromCharCode(r >> 8, r & 0xff);
  return s.replace(/\0+$/, '');
}

/** raw x 10^sf as an exact decimal, in units of 10^-decimals (sf may be negative). */
export function scaled(raw: bigint, sf: number): { value: bigint; decimals: number } {
  return sf >= 0 ? { value: raw * 10n ** BigInt(sf), decimals: 0 } : { value: raw, decimals: -sf };
}

/**
 * Offsets of the points the meter oracle reads in model 203 (three-phase wye meter), from
 * the model's first register (its ID): FIELD.md's absolute addresses minus 40070.
 */
export const METER_203 = {
  id: 203,
  length: 105,
  W: 18, // 40088
  W_SF: 22, // 40092
  TotWhExp: 38, // 40108-40109
  TotWhImp: 46, // 40116-40117
  TotWh_SF: 54, // 40124
} as const;

/** Model 1 (common): 66 registers of identification. */
export const COMMON_1 = { id: 1, length: 66, Mn: 2, Md: 18, Opt: 34, Vr: 42, SN: 50, DA: 66 } as const;

/** Encodes a signed 32-bit value as two registers, high word first. */
export function encodeInt32(value: number): [number, number] {
  if (!Number.isInteger(value) || value < -(2 ** 31) || value > 2 ** 31 - 1) {
    throw new RangeError(`${value} does not fit a SunSpec int32`);
  }
  const u = value < 0 ? value + 2 ** 32 : value;
  return [Math.floor(u / 0x10000), u & 0xffff];
}

/** Decodes a signed 32-bit value (high word first); 0x80000000 means "not implemented". */
export function int32(high: number, low: number): number | null {
  const u = high * 0x10000 + low;
  if (u === 0x80000000) return null;
  return u >= 0x80000000 ? u - 2 ** 32 : u;
}

/** Encodes an unsigned 32-bit value as two registers, high word first. */
export function encodeUint32(value: number): [number, number] {
  if (!Number.isInteger(value) || value < 0 || value > 2 ** 32 - 1) {
    throw new RangeError(`${value} does not fit a SunSpec uint32`);
  }
  return [Math.floor(value / 0x10000), value & 0xffff];
}

/** Decodes an unsigned 32-bit value (high word first); 0xFFFFFFFF means "not implemented". */
export function uint32(high: number, low: number): number | null {
  const u = high * 0x10000 + low;
  return u === 0xffffffff ? null : u;
}

/** Encodes a 64-bit accumulator (acc64) as four registers, high word first. */
export function encodeAcc64(value: bigint): [number, number, number, number] {
  const v = value % 2n ** 64n;
  return [
    Number((v >> 48n) & 0xffffn),
    Number((v >> 32n) & 0xffffn),
    Number((v >> 16n) & 0xffffn),
    Number(v & 0xffffn),
  ];
}

/** Decodes a 64-bit accumulator; 0 means "not implemented". */
export function acc64(registers: readonly number[]): bigint | null {
  let v = 0n;
  for (const r of registers.slice(0, 4)) v = (v << 16n) | BigInt(r);
  return v === 0n ? null : v;
}

/**
 * IEEE 1547 DER model 701 (AC measurements), offsets from the model's ID register:
 * FIELD.md's absolute addresses minus 40070.
 */
export const DER_701 = {
  id: 701,
  length: 153,
  W: 10, // 40080, int16, W_SF
  TotWhInj: 19, // 40089-40092, acc64, TotWh_SF
  TotWhAbs: 23, // 40093-40096, acc64, TotWh_SF
  W_SF: 116, // 40186
  TotWh_SF: 120, // 40190
} as const;

/**
 * IEEE 1547 DER model 704 (AC controls), offsets from the model's ID register (40225 when
 * 701 starts at 40070). The WSet points are FIELD.md's; the WMaxLimPct points precede them.
 */
export const DER_704 = {
  id: 704,
  length: 65,
  WMaxLimPctEna: 14, // 40239
  WMaxLimPct: 15, // 40240, uint16, WMaxLimPct_SF
  WMaxLimPctRvrt: 16,
  WMaxLimPctEnaRvrt: 17,
  WMaxLimPctRvrtTms: 18, // 40243-40244, uint32, s
  WMaxLimPctRvrtRem: 20, // 40245-40246, uint32, s
  WSetEna: 22, // 40247
  WSetMod: 23, // 40248, 1 = watts
  WSet: 24, // 40249-40250, int32, WSet_SF
  WSetRvrt: 26, // 40251-40252
  WSetEnaRvrt: 30, // 40255
  WSetRvrtTms: 31, // 40256-40257, uint32, s
  WSetRvrtRem: 33, // 40258-40259, uint32, s
  WMaxLimPct_SF: 54, // 40279
  WSet_SF: 55, // 40280
} as const;

/** DER model 713 (storage capacity), offsets from its ID register (40292 after 701 + 704). */
export const STORAGE_713 = {
  id: 713,
  length: 7,
  WHRtg: 2, // uint16, WH_SF
  WHAvail: 3, // uint16, WH_SF
  SoC: 4, // 40296, uint16, Pct_SF
  SoH: 5,
  Sta: 6,
  WH_SF: 7,
  Pct_SF: 8, // 40300
} as const;

/**
 * gridcell's vendor model 64900 (SunSpec reserves 64000-65535 for vendor extensions): the
 * energy a cell (on its energy port) or the complex (on its router) could not serve or take,
 * read-only. SunSpec has no standard point for shed load; this model carries it so a
 * controller can report unserved energy from the device, not from the simulation's memory.
 * The counters are whole Wh since the device started (acc64, Wh_SF 0, never reset); with
 * Wh_SF implemented, a counter reading 0 is zero, not "not implemented" (as for model 203).
 * docs/modbus.md has the absolute addresses.
 */
export const BALANCE_64900 = {
  id: 64900,
  length: 12,
  ShedWh: 2, // acc64, Wh_SF: load shed (unserved energy)
  CurtWh: 6, // acc64, Wh_SF: generation curtailed
  ShedW: 10, // int16, W_SF: load shed now
  CurtW: 11, // int16, W_SF: generation curtailed now
  W_SF: 12,
  Wh_SF: 13,
} as const;
