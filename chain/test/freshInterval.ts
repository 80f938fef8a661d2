import { clearingPoolAbi } from '../abi/contracts.generated.js';
import type { Kit } from './kit.js';

/**
 * The first interval from two ahead of chain time on that has no order yet: test files share
 * one anvil, earlier ones may have left orders in the next intervals, and clearing takes every
 * order of an interval.
 */
export async function freshInterval(kit: Kit): Promise<bigint> {
  let interval = (await kit.chainTime()) / kit.manifest.pool.intervalSeconds + 2n;
  for (;;) {
    const existing = await kit.publicClient.readContract({
      address: kit.manifest.contracts.pool,
      abi: clearingPoolAbi,
      functionName: 'intervalOf',
      args: [interval],
    });
    if (existing.orderCount === 0) return interval;
    interval++;
  }
}
