import type { AbiParameter } from 'abitype';
import { encodeErrorResult, zeroAddress, zeroHash } from 'viem';
import { describe, expect, it } from 'vitest';
import { clearingPoolAbi, debtChannelsAbi } from '../abi/contracts.generated.js';
import { useKit } from '../test/kit.js';
import { type Deal, signDeal, signOrder, toChannelSignature, toSignedOrderArg } from '../typed-data/index.js';
import { CellType, Side } from '../units/index.js';
import { ContractRevertError, decodeContractError, decodeRevertData, formatCustomError } from './index.js';

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

  it('error: a wallet error raised under the channels is decoded too (WalletDailyCapExceeded)', async () => {
    const seller = await kit.newCell(CellType.Prosumer);
    const buyer = await kit.newCell(CellType.PassiveConsumer, 0n);
    const now = await kit.chainTime();
    const deal: Deal = {
      buyerCell: buyer.id,
      sellerCell: seller.id,
      sellerMeter: seller.meter.address,
      pricePerKWh: 200_000n,
      maxWhPerInterval: 1000n,
      firstInterval: now / L + 2n,
      lastInterval: now / L + 2n,
      collateral: 200_000n,
      expiry: now + 3600n,
      salt: 0n,
    };
    const [b, s] = await Promise.all([
      signDeal(buyer.agent, kit.channelsDomain, deal),
      signDeal(seller.agent, kit.channelsDomain, deal),
    ]);
    let error: unknown;
    try {
      await kit.publicClient.simulateContract({
        account: await kit.freshAccount(),
        address: kit.manifest.contracts.channels,
        abi: debtChannelsAbi,
        functionName: 'open',
        args: [deal, toChannelSignature(b.signature), toChannelSignature(s.signature)],
      });
    } catch (e) {
      error = decodeContractError(e, 'open');
    }
    expect(error).toBeInstanceOf(ContractRevertError);
    expect((error as ContractRevertError).shortMessage).toBe(
      `open reverted: WalletDailyCapExceeded(cellId=${buyer.id}, cap=0, spentToday=0, amount=200000)`,
    );
  });

  it('every DebtChannels error decodes from its revert data, whatever ABI the caller had', () => {
    const sample = (p: AbiParameter): unknown =>
      p.type === 'address'
        ? zeroAddress
        : p.type === 'bytes32'
          ? zeroHash
          : p.type === 'string'
            ? 'why'
            : p.type.startsWith('uint')
              ? 3n
              : undefined;
    const errors = debtChannelsAbi.filter((item) => item.type === 'error');
    expect(errors.length).toBeGreaterThan(25);
    for (const item of errors) {
      const data = encodeErrorResult({
        abi: [item],
        errorName: item.name,
        args: item.inputs.map(sample),
      } as Parameters<typeof encodeErrorResult>[0]);
      const decoded = decodeRevertData(data);
      expect(decoded?.errorName, item.name).toBe(item.name);
      expect(Object.keys(decoded?.args ?? {}), item.name).toEqual(item.inputs.map((i) => i.name));
    }
  });

  it('formats arguments as name=value', () => {
    expect(formatCustomError('PoolBadNonce', { cell: 3n, interval: 7n, nonce: 2, expected: 1 })).toBe(
      'PoolBadNonce(cell=3, interval=7, nonce=2, expected=1)',
    );
  });
});
