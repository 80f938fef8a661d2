/**
 * Follows the schedule on chain: the pool's IntervalCleared and CellScheduled events and the
 * channels' ChannelOpened and ChannelClosing, read from confirmed blocks only (head minus the
 * confirmation depth), so a reorganisation shallower than that depth never reaches the
 * devices. State is rebuilt from `fromBlock` on every start: a restart re-reads the schedule.
 */
import type { Address, Chain, PublicClient, Transport } from 'viem';
import { clearingPoolAbi, debtChannelsAbi } from '../../chain/abi/contracts.generated.js';
import { Side } from '../../chain/units/index.js';
import type { OpenDeal, ScheduledPosition } from './planInterval.js';

export interface ScheduleFollowerParameters {
  publicClient: PublicClient<Transport, Chain>;
  pool: Address;
  channels: Address;
  /** The first block to read (the deployment block). */
  fromBlock: bigint;
  /** Blocks behind the head that count as final. */
  confirmations: number;
  /** Blocks per eth_getLogs request. */
  chunkBlocks?: bigint;
}

export interface ScheduleFollower {
  /** Reads new confirmed blocks; returns the last block read. */
  sync(): Promise<bigint>;
  cleared(interval: bigint): boolean;
  schedule(interval: bigint): ScheduledPosition[];
  deals(): OpenDeal[];
  /** The last confirmed block read so far (fromBlock - 1 before the first sync). */
  confirmedBlock(): bigint;
}

/** Creates a follower; call `sync()` before reading. */
export function createScheduleFollower(parameters: ScheduleFollowerParameters): ScheduleFollower {
  const { publicClient } = parameters;
  const chunk = parameters.chunkBlocks ?? 2000n;
  let next = parameters.fromBlock;
  const cleared = new Set<bigint>();
  const schedules = new Map<bigint, Map<bigint, ScheduledPosition>>();
  const deals = new Map<string, OpenDeal>();

  async function read(from: bigint, to: bigint) {
    const [clearedLogs, scheduledLogs, openedLogs, closingLogs] = await Promise.all([
      publicClient.getContractEvents({
        address: parameters.pool,
        abi: clearingPoolAbi,
        eventName: 'IntervalCleared',
        fromBlock: from,
        toBlock: to,
        strict: true,
      }),
      publicClient.getContractEvents({
        address: parameters.pool,
        abi: clearingPoolAbi,
        eventName: 'CellScheduled',
        fromBlock: from,
        toBlock: to,
        strict: true,
      }),
      publicClient.getContractEvents({
        address: parameters.channels,
        abi: debtChannelsAbi,
        eventName: 'ChannelOpened',
        fromBlock: from,
        toBlock: to,
        strict: true,
      }),
      publicClient.getContractEvents({
        address: parameters.channels,
        abi: debtChannelsAbi,
        eventName: 'ChannelClosing',
        fromBlock: from,
        toBlock: to,
        strict: true,
      }),
    ]);
    for (const log of clearedLogs) cleared.add(log.args.interval);
    for (const log of scheduledLogs) {
      const { interval, cell, side, energyWh } = log.args;
      const byCell = schedules.get(interval) ?? new Map<bigint, ScheduledPosition>();
      byCell.set(cell, { cell, side: side === Side.Sell ? 'sell' : 'buy', energyWh });
      schedules.set(interval, byCell);
    }
    for (const log of openedLogs) {
      const a = log.args;
      deals.set(a.channel, {
        channel: a.channel,
        buyerCell: a.buyerCell,
        sellerCell: a.sellerCell,
        maxWhPerInterval: a.maxWhPerInterval,
        firstInterval: a.firstInterval,
        lastInterval: a.lastInterval,
      });
    }
    for (const log of closingLogs) {
      const deal = deals.get(log.args.channel);
      if (deal && log.args.endInterval < deal.lastInterval) deal.lastInterval = log.args.endInterval;
    }
  }

  return {
    async sync() {
      // viem caches the block number for the client's polling interval: ask the node, or a
      // block mined a moment ago is not seen yet.
      const head = await publicClient.getBlockNumber({ cacheTime: 0 });
      const safe = head - BigInt(parameters.confirmations);
      while (next <= safe) {
        const to = next + chunk - 1n < safe ? next + chunk - 1n : safe;
        await read(next, to);
        next = to + 1n;
      }
      return next - 1n;
    },
    cleared: (interval) => cleared.has(interval),
    schedule: (interval) => [...(schedules.get(interval)?.values() ?? [])],
    deals: () => [...deals.values()].map((d) => ({ ...d })),
    confirmedBlock: () => next - 1n,
  };
}
