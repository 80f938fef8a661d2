/**
 * Units and conventions shared by every part of gridcell (docs/units.md):
 * energy in Wh (bigint, unsigned), power in W (signed, positive = export),
 * price in settlement-token base units per kWh, time in Unix seconds.
 */

/** IDEA v2.0 Table 1 cell types; the numbers are the contract's enum values. */
export const CellType = {
  LoadFollowingGenerator: 0,
  StochasticGenerator: 1,
  Prosumer: 2,
  ConsumerWithGeneration: 3,
  ActiveConsumer: 4,
  PassiveConsumer: 5,
} as const;
export type CellType = (typeof CellType)[keyof typeof CellType];

/** Order side; the numbers are the contract's enum values. */
export const Side = { Buy: 0, Sell: 1 } as const;
export type Side = (typeof Side)[keyof typeof Side];

/** Default interval length (IDEA's 15-minute market). A deployment parameter. */
export const DEFAULT_INTERVAL_SECONDS = 900n;

/**
 * The interval a timestamp falls in: t = floor(timestamp / intervalSeconds).
 * @example intervalOf(1_800_000_000n, 900n) // 2_000_000n
 */
export function intervalOf(timestamp: bigint, intervalSeconds: bigint): bigint {
  return timestamp / intervalSeconds;
}

/**
 * Money for energy at a price, rounded down: Wh x (base units per kWh) / 1000.
 * Settlement payments round down (docs/rounding.md).
 */
export function amountFor(energyWh: bigint, pricePerKWh: bigint): bigint {
  return (energyWh * pricePerKWh) / 1000n;
}

/**
 * The escrow a buy order locks: limit x energy / 1000, rounded up, as the pool computes it,
 * so the escrow always covers the order's worst case.
 */
export function escrowFor(energyWh: bigint, limitPricePerKWh: bigint): bigint {
  return (energyWh * limitPricePerKWh + 999n) / 1000n;
}

/** Energy a connection of `watts` can carry in one interval, Wh (rounded down). */
export function energyLimitWh(watts: bigint, intervalSeconds: bigint): bigint {
  return (watts * intervalSeconds) / 3600n;
}
