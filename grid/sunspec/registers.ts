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
