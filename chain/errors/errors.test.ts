import { describe, expect, it } from 'vitest';
import { clearingPoolAbi } from '../abi/contracts.generated.js';
import { useKit } from '../test/kit.js';
import { signOrder, toSignedOrderArg } from '../typed-data/index.js';
import { CellType, Side } from '../units/index.js';
import { ContractRevertError, decodeContractError, formatCustomError } from './index.js';

const kit = useKit();
const L = kit.manifest.pool.intervalSeconds;

async function submitError(orderFor: (t: bigint) => Promise<Parameters<typeof toSignedOrderArg>[0]>) {
  const account = await kit.freshAccount();
  const t = (await kit.chainTime()) / L;
  try {
    await kit.publicClient.simulateContract({
      account,
      address: kit.manifest.contracts.pool,
      abi: clearingPoolAbi,
      functionName: 'submitOrders',
      args: [[toSignedOrderArg(await orderFor(t))]],
    });
  } catch (error) {
    return decodeContractError(error, 'submitOrders');
  }
  throw new Error('the call did not revert');
}

describe('contract errors for people', () => {
  it('error: an order after gate closure reads PoolGateClosed with its interval and closing time', async () => {
    const cell = await kit.newCell(CellType.Prosumer);
    const error = await submitError((t) =>
      signOrder(cell.agent, kit.poolDomain, {
        cell: cell.id,
        interval: t,
        side: Side.Sell,
        energyWh: 100n,
        limitPrice: 1n,
        nonce: 0,
        expiry: t * L + 10_000n,
      }),
    );
    expect(error).toBeInstanceOf(ContractRevertError);
    const revert = error as ContractRevertError;
    expect(revert.errorName).toBe('PoolGateClosed');
    expect(revert.shortMessage).toMatch(
      /^submitOrders reverted: PoolGateClosed\(interval=\d+, gateClosure=\d+\)$/,
    );
    expect(revert.message).not.toMatch(/0x[0-9a-f]{8}/);
  });

  it('error: a wallet error raised under the pool is decoded too (WalletDailyCapExceeded)', async () => {
    const cell = await kit.newCell(CellType.PassiveConsumer, 0n);
    const error = await submitError((t) =>
      signOrder(cell.agent, kit.poolDomain, {
        cell: cell.id,
        interval: t + 2n,
        side: Side.Buy,
        energyWh: 1000n,
        limitPrice: 250_000n,
        nonce: 0,
        expiry: t * L + 10_000n,
      }),
    );
    expect(error).toBeInstanceOf(ContractRevertError);
    expect((error as ContractRevertError).shortMessage).toBe(
      `submitOrders reverted: WalletDailyCapExceeded(cellId=${cell.id}, cap=0, spentToday=0, amount=250000)`,
    );
  });

  it('formats arguments as name=value', () => {
    expect(formatCustomError('PoolBadNonce', { cell: 3n, interval: 7n, nonce: 2, expected: 1 })).toBe(
      'PoolBadNonce(cell=3, interval=7, nonce=2, expected=1)',
    );
  });
});
