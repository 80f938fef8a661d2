import type { z } from 'zod';
import type { PoolParameters } from '../chain/devnet/index.js';
import { arg } from './options.js';

/** The clearing pool's deployment parameters, as `devnet` and `deploy` take them. */
export const poolOptions = {
  'interval-seconds': { type: 'string' },
  'gate-lead': { type: 'string' },
  'settlement-window': { type: 'string' },
  'max-orders': { type: 'string' },
} as const;

export const poolOptionsHelp = `  --interval-seconds N     delivery interval length, s (default 900)
  --gate-lead N            gate closure before delivery, s (default 300)
  --settlement-window N    time to hand in readings after delivery, s (default 3600)
  --max-orders N           orders per interval, bounds clearing gas (default 1200)`;

export const poolOptionsShape = {
  'interval-seconds': arg.positiveInt.default(900n),
  'gate-lead': arg.uint.default(300n),
  'settlement-window': arg.positiveInt.default(3600n),
  'max-orders': arg.positiveInt.refine((n) => n < 2n ** 32n, 'expected below 2^32').default(1200n),
};

type PoolOptionValues = { [K in keyof typeof poolOptionsShape]: z.output<(typeof poolOptionsShape)[K]> };

/** The pool's constructor rejects a gate lead of 96 intervals or more. */
export const gateLeadRule: [(o: PoolOptionValues) => boolean, { message: string; path: string[] }] = [
  (o) => o['gate-lead'] < o['interval-seconds'] * 96n,
  { message: 'expected a gate lead shorter than 96 intervals', path: ['gate-lead'] },
];

export function poolParameters(o: PoolOptionValues): PoolParameters {
  return {
    intervalSeconds: o['interval-seconds'],
    gateClosureLead: o['gate-lead'],
    settlementWindow: o['settlement-window'],
    maxOrdersPerInterval: o['max-orders'],
  };
}
