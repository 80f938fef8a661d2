import { createTestClient, http } from 'viem';
import { describe, expect, it } from 'vitest';
import { useKit } from '../test/kit.js';
import { chainClock, startDevnetClock, wallClock } from './index.js';

const kit = useKit();

describe('clocks', () => {
  it('the chain clock reads the latest block time, which the devnet clock moves fast', async () => {
    const clock = chainClock(kit.publicClient);
    const testClient = createTestClient({ chain: kit.chain, mode: 'anvil', transport: http(kit.rpcUrl) });
    const before = await clock.now();
    const devnet = startDevnetClock({ publicClient: kit.publicClient, testClient, speed: 600, tickMs: 50 });
    try {
      // Wait on the event (a block 60 chain seconds later), with a deadline.
      const deadline = Date.now() + 10_000;
      while ((await clock.now()) < before + 60n) {
        if (Date.now() > deadline) throw new Error('the devnet clock did not advance 60 s in 10 s');
        await new Promise((r) => setTimeout(r, 20));
      }
    } finally {
      devnet.stop();
    }
    expect(await clock.now()).toBeGreaterThanOrEqual(before + 60n);
  });

  it('the wall clock is Unix seconds', async () => {
    const now = await wallClock().now();
    expect(Number(now)).toBeGreaterThan(1_700_000_000);
    expect(Math.abs(Number(now) - Date.now() / 1000)).toBeLessThan(2);
  });
});
