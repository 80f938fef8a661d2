import { describe, expect, it } from 'vitest';
import { cellWalletsAbi, clearingPoolAbi, devnetTokenAbi } from '../abi/contracts.generated.js';
import { createGridcellClients } from '../client/index.js';
import { useKit } from '../test/kit.js';
import {
  type MeterReading,
  type Order,
  signMeterReading,
  signOrder,
  signPermit,
  toSignedOrderArg,
  toSignedReadingArg,
} from '../typed-data/index.js';
import { CellType, escrowFor, Side } from '../units/index.js';
import { quoteClearing } from './quoteClearing.js';

const kit = useKit();
const { contracts } = kit.manifest;
const L = kit.manifest.pool.intervalSeconds;
const lead = kit.manifest.pool.gateClosureLead;

function relayer() {
  return kit.freshAccount().then((account) => {
    const { walletClient } = createGridcellClients({
      manifest: kit.manifest,
      account,
      pollingIntervalMs: 20,
    });
    if (!walletClient) throw new Error('no wallet client');
    return walletClient;
  });
}

async function balances(cell: bigint) {
  const [available, locked] = await kit.publicClient.readContract({
    address: contracts.wallets,
    abi: cellWalletsAbi,
    functionName: 'balanceOf',
    args: [cell],
  });
  return { available, locked };
}

describe('one interval on a real chain, driven from TypeScript', () => {
  it('orders signed in TypeScript clear at the quoted price and settle from signed readings', async () => {
    const sellerA = await kit.newCell(CellType.Prosumer);
    const sellerB = await kit.newCell(CellType.StochasticGenerator);
    const buyerA = await kit.newCell(CellType.PassiveConsumer);
    const buyerB = await kit.newCell(CellType.ActiveConsumer);
    const t = (await kit.chainTime()) / L + 2n;
    const expiry = t * L;
    const book: { cell: typeof sellerA; order: Order }[] = [
      {
        cell: sellerA,
        order: {
          cell: sellerA.id,
          interval: t,
          side: Side.Sell,
          energyWh: 3000n,
          limitPrice: 180_000n,
          nonce: 0,
          expiry,
        },
      },
      {
        cell: buyerA,
        order: {
          cell: buyerA.id,
          interval: t,
          side: Side.Buy,
          energyWh: 2000n,
          limitPrice: 260_000n,
          nonce: 0,
          expiry,
        },
      },
      {
        cell: sellerB,
        order: {
          cell: sellerB.id,
          interval: t,
          side: Side.Sell,
          energyWh: 2000n,
          limitPrice: 220_000n,
          nonce: 0,
          expiry,
        },
      },
      {
        cell: buyerB,
        order: {
          cell: buyerB.id,
          interval: t,
          side: Side.Buy,
          energyWh: 2500n,
          limitPrice: 220_000n,
          nonce: 0,
          expiry,
        },
      },
    ];
    const signed = await Promise.all(
      book.map(({ cell, order }) => signOrder(cell.agent, kit.poolDomain, order)),
    );
    const relay = await relayer();
    const submitted = await relay.writeContract({
      address: contracts.pool,
      abi: clearingPoolAbi,
      functionName: 'submitOrders',
      args: [signed.map(toSignedOrderArg)],
    });
    expect((await kit.publicClient.waitForTransactionReceipt({ hash: submitted })).status).toBe('success');
    expect((await balances(buyerA.id)).locked).toBe(escrowFor(2000n, 260_000n));

    // Gate closure: clear at the bounds the TypeScript quote names.
    await kit.setChainTime(t * L - lead);
    const quote = quoteClearing(book.map((b) => b.order));
    // Demand 4500 Wh at <= 220000; supply 3000 below and 2000 at 220000: the price is the
    // marginal ask and buyer B's bid, both 220000; 4500 Wh trade.
    expect(quote.price).toBe(220_000n);
    expect(quote.volumeWh).toBe(4500n);
    const cleared = await relay.writeContract({
      address: contracts.pool,
      abi: clearingPoolAbi,
      functionName: 'clear',
      args: [t, quote.priceLow, quote.priceHigh, book.map((b) => b.order)],
    });
    await kit.publicClient.waitForTransactionReceipt({ hash: cleared });
    const interval = await kit.publicClient.readContract({
      address: contracts.pool,
      abi: clearingPoolAbi,
      functionName: 'intervalOf',
      args: [t],
    });
    expect(interval.price).toBe(quote.price);
    expect(BigInt(interval.volumeWh)).toBe(quote.volumeWh);
    for (const [i, b] of book.entries()) {
      const p = await kit.publicClient.readContract({
        address: contracts.pool,
        abi: clearingPoolAbi,
        functionName: 'positionOf',
        args: [t, b.cell.id],
      });
      expect(BigInt(p.filledWh), `fill of order ${i}`).toBe(quote.fills[i]);
    }

    // Delivery ends; every meter delivered its schedule except seller B, 500 Wh short.
    await kit.setChainTime((t + 1n) * L);
    const delivered = [3000n, 2000n, 1000n, 2500n]; // sellerA, buyerA, sellerB, buyerB
    const readings = await Promise.all(
      book.map(({ cell, order }, i) => {
        const energy = delivered[i] ?? 0n;
        const reading: MeterReading = {
          meter: cell.meter.address,
          cell: cell.id,
          interval: t,
          importWh: order.side === Side.Buy ? energy : 0n,
          exportWh: order.side === Side.Sell ? energy : 0n,
          importCumWh: order.side === Side.Buy ? energy : 0n,
          exportCumWh: order.side === Side.Sell ? energy : 0n,
          seq: 1n,
        };
        return signMeterReading(cell.meter, kit.poolDomain, reading);
      }),
    );
    await kit.publicClient.waitForTransactionReceipt({
      hash: await relay.writeContract({
        address: contracts.pool,
        abi: clearingPoolAbi,
        functionName: 'settle',
        args: [readings.map(toSignedReadingArg)],
      }),
    });
    const before = await Promise.all(book.map((b) => balances(b.cell.id)));
    await kit.publicClient.waitForTransactionReceipt({
      hash: await relay.writeContract({
        address: contracts.pool,
        abi: clearingPoolAbi,
        functionName: 'claim',
        args: [t, [buyerA.id, buyerB.id, sellerA.id, sellerB.id]],
      }),
    });
    const after = await Promise.all(book.map((b) => balances(b.cell.id)));
    const change = after.map(
      (a, i) => a.available + a.locked - ((before[i]?.available ?? 0n) + (before[i]?.locked ?? 0n)),
    );
    // Sellers delivered 4000 of 4500 Wh; buyers took 4500: E = 4000, buyers pay pro rata
    // 4000/4500 of their metered energy at 220000/kWh, sellers share what buyers paid.
    const paidA = (220_000n * 2000n * 4000n) / (4500n * 1000n);
    const paidB = (220_000n * 2500n * 4000n) / (4500n * 1000n);
    expect(change[1]).toBe(-paidA);
    expect(change[3]).toBe(-paidB);
    expect((change[0] ?? 0n) + (change[2] ?? 0n)).toBe(paidA + paidB);
    expect(change.reduce((a, b) => a + b, 0n)).toBe(0n);
    expect((await balances(buyerA.id)).locked).toBe(0n);
  });

  it('an owner deposits with an ERC-2612 permit in one call', async () => {
    const cell = await kit.newCell(CellType.Prosumer, 0n);
    const { walletClient } = createGridcellClients({
      manifest: kit.manifest,
      account: cell.owner,
      pollingIntervalMs: 20,
    });
    if (!walletClient) throw new Error('no wallet client');
    const amount = 5_000_000n;
    await kit.publicClient.waitForTransactionReceipt({
      hash: await walletClient.writeContract({
        address: contracts.token,
        abi: devnetTokenAbi,
        functionName: 'faucet',
        args: [cell.owner.address, amount],
      }),
    });
    const nonce = await kit.publicClient.readContract({
      address: contracts.token,
      abi: devnetTokenAbi,
      functionName: 'nonces',
      args: [cell.owner.address],
    });
    const deadline = (await kit.chainTime()) + 3600n;
    const { v, r, s } = await signPermit(
      cell.owner,
      {
        name: 'gridcell devnet euro',
        version: '1',
        chainId: kit.manifest.chainId,
        verifyingContract: contracts.token,
      },
      { owner: cell.owner.address, spender: contracts.wallets, value: amount, nonce, deadline },
    );
    await kit.publicClient.waitForTransactionReceipt({
      hash: await walletClient.writeContract({
        address: contracts.wallets,
        abi: cellWalletsAbi,
        functionName: 'depositWithPermit',
        args: [cell.id, amount, deadline, v, r, s],
      }),
    });
    expect(await balances(cell.id)).toEqual({ available: amount, locked: 0n });
  });
});
