import type { Address } from 'viem';
import { debtChannelsAbi } from '../../chain/abi/contracts.generated.js';
import { toSignedReadingArg } from '../../chain/typed-data/index.js';
import type { TxSender } from '../sender/index.js';
import type { OpenDeal } from './index.js';

/**
 * Hands in the deal's first-interval reading (`redeemWithReadings`) when the channel has no
 * baseline yet and the voucher about to go on chain carries a later reading. The channel
 * counts from the lowest counter its readings have shown (docs/channels.md), so without this
 * a voucher backed by a later reading alone would be refused as over-metered. A voucher whose
 * own reading is the first interval's sets the baseline by itself: no extra transaction.
 * @returns whether a transaction was sent.
 */
export async function handInFirstReading(parameters: {
  entry: OpenDeal;
  baselineCumWh: bigint;
  channels: Address;
  tx: TxSender;
}): Promise<boolean> {
  const { entry, baselineCumWh, tx } = parameters;
  const { firstReading, latestReading, deal } = entry;
  if (baselineCumWh !== 0n || !firstReading || !latestReading) return false;
  if (firstReading.reading.interval !== deal.firstInterval) return false;
  if (latestReading.reading.interval === firstReading.reading.interval) return false;
  await tx.send({
    address: parameters.channels,
    abi: debtChannelsAbi,
    functionName: 'redeemWithReadings',
    args: [deal, [toSignedReadingArg({ message: firstReading.reading, signature: firstReading.signature })]],
  });
  return true;
}
