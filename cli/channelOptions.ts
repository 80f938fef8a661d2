import type { z } from 'zod';
import type { ChannelParameters } from '../chain/devnet/index.js';
import { arg } from './options.js';

/** The debt channels' deployment parameters, as `devnet` and `deploy` take them. */
export const channelOptions = {
  'challenge-window': { type: 'string' },
  'withdrawal-delay': { type: 'string' },
} as const;

export const channelOptionsHelp = `  --challenge-window N     how long a unilateral channel close waits for newer vouchers, s
                           (default 14400; docs/channels.md: 24 h or more on a rollup)
  --withdrawal-delay N     how long a collateral withdrawal waits, s; longer than the
                           challenge window (default 18000)`;

/** Both below 2^32 - 1: the channels' constructor refuses more. */
const seconds = arg.positiveInt.refine((n) => n < 2n ** 32n - 1n, 'expected below 2^32 - 1');

export const channelOptionsShape = {
  'challenge-window': seconds.default(14_400n),
  'withdrawal-delay': seconds.default(18_000n),
};

type ChannelOptionValues = {
  [K in keyof typeof channelOptionsShape]: z.output<(typeof channelOptionsShape)[K]>;
};

/** The channels' constructor wants the withdrawal delay longer than the challenge window. */
export const withdrawalDelayRule: [(o: ChannelOptionValues) => boolean, { message: string; path: string[] }] =
  [
    (o) => o['withdrawal-delay'] > o['challenge-window'],
    { message: 'expected a withdrawal delay longer than the challenge window', path: ['withdrawal-delay'] },
  ];

export function channelParameters(o: ChannelOptionValues): ChannelParameters {
  return { challengeWindow: o['challenge-window'], withdrawalDelay: o['withdrawal-delay'] };
}
