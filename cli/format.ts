import { formatUnits } from 'viem';
import { z } from 'zod';
import { CellType, Side } from '../chain/units/index.js';

/** Command-line names of the IDEA cell types. */
export const cellTypeNames: Record<string, CellType> = {
  'load-following-generator': CellType.LoadFollowingGenerator,
  'stochastic-generator': CellType.StochasticGenerator,
  prosumer: CellType.Prosumer,
  'consumer-with-generation': CellType.ConsumerWithGeneration,
  'active-consumer': CellType.ActiveConsumer,
  'passive-consumer': CellType.PassiveConsumer,
};

export const cellTypeArg = z
  .string()
  .refine((s) => s in cellTypeNames, {
    message: `expected one of ${Object.keys(cellTypeNames).join(', ')}`,
  })
  .transform((s) => cellTypeNames[s] as CellType);

export function cellTypeName(type: number): string {
  return Object.entries(cellTypeNames).find(([, v]) => v === type)?.[0] ?? `type ${type}`;
}

export function sideName(side: number): 'buy' | 'sell' {
  return side === Side.Buy ? 'buy' : 'sell';
}

export const cellStatusNames = ['none', 'connected', 'disconnected'] as const;

/** "12.5 dEUR" from base units. */
export function formatAmount(amount: bigint, decimals: number, symbol: string): string {
  return `${formatUnits(amount, decimals)} ${symbol}`;
}
