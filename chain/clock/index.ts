/**
 * Time for every gridcell service: in a demo, chain time (the devnet clock runs fast); in
 * production, the wall clock. Services take a Clock and never call Date.now() themselves.
 */
import type { Chain, PublicClient, TestClient, Transport } from 'viem';

export interface Clock {
  /** Current time, Unix seconds. */
  now(): Promise<bigint>;
}

/** The wall clock. */
export function wallClock(): Clock {
  return { now: async () => BigInt(Math.floor(Date.now() / 1000)) };
}

/** Chain time: the timestamp of the latest block. */
export function chainClock(publicClient: PublicClient<Transport, Chain>): Clock {
  return { now: async () => (await publicClient.getBlock({ blockTag: 'latest' })).timestamp };
}

export interface DevnetClockParameters {
  publicClient: PublicClient<Transport, Chain>;
  testClient: TestClient<'anvil', Transport, Chain>;
  /** Chain seconds per real second: 60 makes a 15-minute interval pass in 15 s. */
  speed: number;
  /** How often to mine, real milliseconds. */
  tickMs?: number;
  /** Reports a failed tick (the node went away); the clock keeps trying. */
  onError?: (error: unknown) => void;
}

export interface DevnetClock {
  stop(): void;
}

/**
 * Mines a block every tick with a timestamp advanced by `speed` times the real time elapsed,
 * so chain time runs `speed` times faster than the wall clock. Timestamps only move forward.
 */
export function startDevnetClock(parameters: DevnetClockParameters): DevnetClock {
  const tickMs = parameters.tickMs ?? 500;
  let last = Date.now();
  let carryMs = 0;
  let busy = false;
  const timer = setInterval(async () => {
    if (busy) return;
    busy = true;
    try {
      const now = Date.now();
      carryMs += (now - last) * parameters.speed;
      last = now;
      const step = Math.floor(carryMs / 1000);
      if (step >= 1) {
        carryMs -= step * 1000;
        const head = (await parameters.publicClient.getBlock({ blockTag: 'latest' })).timestamp;
        await parameters.testClient.setNextBlockTimestamp({ timestamp: head + BigInt(step) });
        await parameters.testClient.mine({ blocks: 1 });
      }
    } catch (error) {
      parameters.onError?.(error);
    } finally {
      busy = false;
    }
  }, tickMs);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}
