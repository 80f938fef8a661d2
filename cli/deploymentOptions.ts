import type { z } from 'zod';
import {
  type ChannelParameters,
  defaultChannelParameters,
  defaultPoolParameters,
  type PoolParameters,
} from '../chain/devnet/index.js';
import { arg } from './options.js';

/** The deployment's parameters (clearing pool and debt channels), as `devnet` and `deploy` take them. */
export const deploymentOptions = {
  'interval-seconds': { type: 'string' },
  'gate-lead': { type: 'string' },
  'settlement-window': { type: 'string' },
  'max-orders': { type: 'string' },
  'challenge-window': { type: 'string' },
  'withdrawal-delay': { type: 'string' },
} as const;

const pool = defaultPoolParameters;
const channels = defaultChannelParameters;

export const deploymentOptionsHelp = `  --interval-seconds N     delivery interval length, s (default ${pool.intervalSeconds})
  --gate-lead N            gate closure before delivery, s (default ${pool.gateClosureLead})
  --settlement-window N    time to hand in readings after delivery, s (default ${pool.settlementWindow})
  --max-orders N           orders per interval, bounds clearing gas (default ${pool.maxOrdersPerInterval})
  --challenge-window N     how long a unilateral channel close waits for newer vouchers, s
                           (default ${channels.challengeWindow}; docs/channels.md: 24 h or more on a rollup)
  --withdrawal-delay N     how long a collateral withdrawal waits, s; longer than the
                           challenge window (default ${channels.withdrawalDelay})`;

/** Both below 2^32 - 1: the channels' constructor refuses more. */
const seconds = arg.positiveInt.refine((n) => n < 2n ** 32n - 1n, 'expected below 2^32 - 1');

export const deploymentOptionsShape = {
  'interval-seconds': arg.positiveInt.default(pool.intervalSeconds),
  'gate-lead': arg.uint.default(pool.gateClosureLead),
  'settlement-window': arg.positiveInt.default(pool.settlementWindow),
  'max-orders': arg.positiveInt
    .refine((n) => n < 2n ** 32n, 'expected below 2^32')
    .default(pool.maxOrdersPerInterval),
  'challenge-window': seconds.default(channels.challengeWindow),
  'withdrawal-delay': seconds.default(channels.withdrawalDelay),
};

type DeploymentOptionValues = {
  [K in keyof typeof deploymentOptionsShape]: z.output<(typeof deploymentOptionsShape)[K]>;
};

/**
 * What the constructors refuse, checked before anything is deployed: the pool rejects a gate
 * lead of 96 intervals or more, the channels a withdrawal delay not longer than the window.
 * Apply with `schema.superRefine(checkDeploymentOptions)`.
 */
export function checkDeploymentOptions(o: DeploymentOptionValues, ctx: z.RefinementCtx): void {
  if (o['gate-lead'] >= o['interval-seconds'] * 96n) {
    ctx.addIssue({
      code: 'custom',
      message: 'expected a gate lead shorter than 96 intervals',
      path: ['gate-lead'],
    });
  }
  if (o['withdrawal-delay'] <= o['challenge-window']) {
    ctx.addIssue({
      code: 'custom',
      message: 'expected a withdrawal delay longer than the challenge window',
      path: ['withdrawal-delay'],
    });
  }
}

/** The parsed options as `deployCore`/`startDevnet` take them. */
export function deploymentParameters(o: DeploymentOptionValues): {
  pool: PoolParameters;
  channels: ChannelParameters;
} {
  return {
    pool: {
      intervalSeconds: o['interval-seconds'],
      gateClosureLead: o['gate-lead'],
      settlementWindow: o['settlement-window'],
      maxOrdersPerInterval: o['max-orders'],
    },
    channels: { challengeWindow: o['challenge-window'], withdrawalDelay: o['withdrawal-delay'] },
  };
}
