import { domainSeparator, type Hex, parseEventLogs, toHex } from 'viem';
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts';
import { describe, expect, it } from 'vitest';
import { cellWalletsAbi, clearingPoolAbi, debtChannelsAbi } from '../abi/contracts.generated.js';
import { ContractRevertError, decodeContractError } from '../errors/index.js';
import { type TestCell, useKit } from '../test/kit.js';
import { dealFor, field, readingFor, typeHash, voucherFor } from '../test/typedSamples.js';
import { CellType } from '../units/index.js';
import {
  type CloseChannel,
  channelId,
  closeChannelTypes,
  type Deal,
  dealTypes,
  hashCloseChannel,
  hashMeterReading,
  hashVoucher,
  type MeterReading,
  meterReadingTypes,
  parseChannelSignature,
  recoverCloseChannelSigner,
  recoverDealSigner,
  recoverVoucherSigner,
  signCloseChannel,
  signDeal,
  signMeterReading,
  signVoucher,
  toChannelSignature,
  toSignedReadingArg,
  toSignedVoucherArg,
  type Voucher,
  voucherTypes,
} from './index.js';

const kit = useKit();
const channels = { address: kit.manifest.contracts.channels, abi: debtChannelsAbi } as const;
const wallets = { address: kit.manifest.contracts.wallets, abi: cellWalletsAbi } as const;
const L = kit.manifest.pool.intervalSeconds;

describe('EIP-712 typed data of the debt channels', () => {
  it('the domain separator and the type strings are the ones the channels contract hashes', async () => {
    const read = <const name extends 'DEAL_TYPEHASH' | 'VOUCHER_TYPEHASH' | 'CLOSE_TYPEHASH'>(
      functionName: name,
    ) => kit.publicClient.readContract({ ...channels, functionName });
    expect(domainSeparator({ domain: kit.channelsDomain })).toBe(
      await kit.publicClient.readContract({ ...channels, functionName: 'domainSeparator' }),
    );
    expect(typeHash('Deal', dealTypes.Deal)).toBe(await read('DEAL_TYPEHASH'));
    expect(typeHash('Voucher', voucherTypes.Voucher)).toBe(await read('VOUCHER_TYPEHASH'));
    expect(typeHash('CloseChannel', closeChannelTypes.CloseChannel)).toBe(await read('CLOSE_TYPEHASH'));
    expect(typeHash('MeterReading', meterReadingTypes.MeterReading)).toBe(
      await kit.publicClient.readContract({ ...channels, functionName: 'METER_READING_TYPEHASH' }),
    );
  });

  it('every channel id (the Deal digest) computed in TypeScript equals the contract', async () => {
    for (let seed = 0; seed < 20; seed++) {
      const deal = dealFor(seed * 10);
      const onChain = await kit.publicClient.readContract({
        ...channels,
        functionName: 'channelId',
        args: [deal],
      });
      expect(channelId(kit.channelsDomain, deal), `seed ${seed}`).toBe(onChain);
    }
  });

  it('every Voucher digest computed in TypeScript equals the contract', async () => {
    for (let seed = 0; seed < 20; seed++) {
      const voucher = voucherFor(seed * 10);
      const onChain = await kit.publicClient.readContract({
        ...channels,
        functionName: 'hashVoucher',
        args: [voucher],
      });
      expect(hashVoucher(kit.channelsDomain, voucher), `seed ${seed}`).toBe(onChain);
    }
  });

  it('every CloseChannel digest computed in TypeScript equals the contract', async () => {
    for (let seed = 0; seed < 20; seed++) {
      const close: CloseChannel = {
        channel: toHex(field(seed * 10, 256), { size: 32 }),
        finalAmount: field(seed * 10 + 1, 96),
      };
      const onChain = await kit.publicClient.readContract({
        ...channels,
        functionName: 'hashClose',
        args: [close.channel, close.finalAmount],
      });
      expect(hashCloseChannel(kit.channelsDomain, close), `seed ${seed}`).toBe(onChain);
    }
  });

  it("every MeterReading digest under the channels' domain equals the channels contract and differs from the pool's", async () => {
    for (let seed = 0; seed < 20; seed++) {
      const reading = readingFor(seed * 10);
      const [inChannels, inPool] = await Promise.all([
        kit.publicClient.readContract({ ...channels, functionName: 'hashReading', args: [reading] }),
        kit.publicClient.readContract({
          address: kit.manifest.contracts.pool,
          abi: clearingPoolAbi,
          functionName: 'hashReading',
          args: [reading],
        }),
      ]);
      expect(hashMeterReading(kit.channelsDomain, reading), `seed ${seed}`).toBe(inChannels);
      expect(hashMeterReading(kit.poolDomain, reading), `seed ${seed}`).toBe(inPool);
      // Same type, same chain, another verifyingContract: a reading signed for one is not
      // a reading for the other.
      expect(inChannels, `seed ${seed}`).not.toBe(inPool);
    }
  });

  it('deals, vouchers and closes recover to their signer, and not after a field changes', async () => {
    const agent = privateKeyToAccount(generatePrivateKey());
    const domain = kit.channelsDomain;
    const deal = dealFor(1);
    const signedDeal = await signDeal(agent, domain, deal);
    expect(await recoverDealSigner(domain, deal, signedDeal.signature)).toBe(agent.address);
    expect(await recoverDealSigner(domain, { ...deal, salt: deal.salt ^ 1n }, signedDeal.signature)).not.toBe(
      agent.address,
    );

    const voucher = voucherFor(2);
    const signedVoucher = await signVoucher(agent, domain, voucher);
    expect(await recoverVoucherSigner(domain, voucher, signedVoucher.signature)).toBe(agent.address);
    const more = { ...voucher, cumulativeAmount: voucher.cumulativeAmount ^ 1n };
    expect(await recoverVoucherSigner(domain, more, signedVoucher.signature)).not.toBe(agent.address);

    const close = { channel: voucher.channel, finalAmount: 5n };
    const signedClose = await signCloseChannel(agent, domain, close);
    expect(await recoverCloseChannelSigner(domain, close, signedClose.signature)).toBe(agent.address);
    expect(
      await recoverCloseChannelSigner(domain, { ...close, finalAmount: 6n }, signedClose.signature),
    ).not.toBe(agent.address);
  });

  it('a channel signature is 64 bytes (EIP-2098) and reads back from 64 or 65 bytes', async () => {
    const agent = privateKeyToAccount(generatePrivateKey());
    const deal = dealFor(3);
    const signed = await signDeal(agent, kit.channelsDomain, deal);
    const bytes = toChannelSignature(signed.signature);
    expect(bytes).toMatch(/^0x[0-9a-f]{128}$/);
    expect(parseChannelSignature(bytes)).toEqual(signed.signature);
    const long = await agent.signTypedData({
      domain: kit.channelsDomain,
      types: dealTypes,
      primaryType: 'Deal',
      message: deal,
    });
    expect(parseChannelSignature(long)).toEqual(signed.signature);
  });

  it('error: a channel signature of another length is refused with its length', () => {
    expect(() => parseChannelSignature(`0x${'ab'.repeat(63)}`)).toThrow(
      'expected a 64-byte (EIP-2098) or 65-byte signature, received 63 bytes',
    );
    expect(() => parseChannelSignature('0xzz' as Hex)).toThrow(/received no hex/);
  });
});

/** A prosumer selling to a passive consumer: 2000 Wh per interval at 0.20/kWh, four intervals. */
async function standardDeal(): Promise<{ deal: Deal; buyer: TestCell; seller: TestCell }> {
  const [seller, buyer] = await Promise.all([
    kit.newCell(CellType.Prosumer),
    kit.newCell(CellType.PassiveConsumer),
  ]);
  const now = await kit.chainTime();
  const first = now / L + 2n;
  const deal: Deal = {
    buyerCell: buyer.id,
    sellerCell: seller.id,
    sellerMeter: seller.meter.address,
    pricePerKWh: 200_000n,
    maxWhPerInterval: 2000n,
    firstInterval: first,
    lastInterval: first + 3n,
    collateral: 1_600_000n,
    expiry: now + 3600n,
    salt: 1n,
  };
  return { deal, buyer, seller };
}

async function open(deal: Deal, buyer: TestCell, seller: TestCell) {
  const [b, s] = await Promise.all([
    signDeal(buyer.agent, kit.channelsDomain, deal),
    signDeal(seller.agent, kit.channelsDomain, deal),
  ]);
  return kit.write(await kit.freshAccount(), {
    ...channels,
    functionName: 'open',
    args: [deal, toChannelSignature(b.signature), toChannelSignature(s.signature)],
  });
}

/** The deal meter's reading for interval t: `exportWh` during it, the counter at its end. */
function reading(seller: TestCell, t: bigint, exportWh: bigint, exportCumWh: bigint): MeterReading {
  return {
    meter: seller.meter.address,
    cell: seller.id,
    interval: t,
    importWh: 0n,
    exportWh,
    importCumWh: 0n,
    exportCumWh,
    seq: t,
  };
}

describe('a debt channel on chain with TypeScript signatures', () => {
  it("opens with both agents' signatures, pays a voucher backed by a meter reading and closes on both signatures", async () => {
    const { deal, buyer, seller } = await standardDeal();
    const id = channelId(kit.channelsDomain, deal);
    const available = async (cell: TestCell) =>
      (await kit.publicClient.readContract({ ...wallets, functionName: 'balanceOf', args: [cell.id] }))[0];
    const opened = await open(deal, buyer, seller);
    const [openedEvent] = parseEventLogs({
      abi: debtChannelsAbi,
      eventName: 'ChannelOpened',
      logs: opened.logs,
    });
    expect(openedEvent?.args).toMatchObject({ channel: id, buyerCell: buyer.id, sellerCell: seller.id });
    expect(await available(buyer)).toBe(10_000_000_000n - 1_600_000n);

    // Interval `first`: the meter counted 1500 Wh out (10,000 before); the buyer owes
    // 1500 Wh x 0.20/kWh = 0.3 tokens and signs for it.
    const signedReading = await signMeterReading(
      seller.meter,
      kit.channelsDomain,
      reading(seller, deal.firstInterval, 1500n, 11_500n),
    );
    const voucher = await signVoucher(buyer.agent, kit.channelsDomain, {
      channel: id,
      seq: 1,
      cumulativeWh: 1500n,
      cumulativeAmount: 300_000n,
    });
    const redeemed = await kit.write(await kit.freshAccount(), {
      ...channels,
      functionName: 'redeem',
      args: [deal, toSignedVoucherArg(voucher), toSignedReadingArg(signedReading)],
    });
    const [accepted] = parseEventLogs({
      abi: debtChannelsAbi,
      eventName: 'VoucherAccepted',
      logs: redeemed.logs,
    });
    expect(accepted?.args).toMatchObject({
      channel: id,
      seq: 1,
      cumulativeWh: 1500n,
      cumulativeAmount: 300_000n,
    });
    expect(
      await kit.publicClient.readContract({
        ...channels,
        functionName: 'channelOf',
        args: [id, deal.sellerMeter],
      }),
    ).toMatchObject({
      status: 1,
      collateral: 1_300_000n,
      paid: 300_000n,
      owed: 300_000n,
      seq: 1,
      baselineCumWh: 10_000n,
    });
    expect(await available(seller)).toBe(10_000_000_000n + 300_000n);

    // Both agents sign the final amount: the channel closes at once, the rest goes back.
    const close = { channel: id, finalAmount: 300_000n };
    const [b, s] = await Promise.all([
      signCloseChannel(buyer.agent, kit.channelsDomain, close),
      signCloseChannel(seller.agent, kit.channelsDomain, close),
    ]);
    const closed = await kit.write(await kit.freshAccount(), {
      ...channels,
      functionName: 'closeCooperative',
      args: [deal, close.finalAmount, toChannelSignature(b.signature), toChannelSignature(s.signature)],
    });
    const [closedEvent] = parseEventLogs({
      abi: debtChannelsAbi,
      eventName: 'ChannelClosed',
      logs: closed.logs,
    });
    expect(closedEvent?.args).toMatchObject({
      owed: 300_000n,
      paid: 300_000n,
      refunded: 1_300_000n,
      debt: 0n,
    });
    expect(await available(buyer)).toBe(10_000_000_000n - 300_000n);
    expect(await available(seller)).toBe(10_000_000_000n + 300_000n);
  });

  it("error: a voucher the seller's agent signed reads ChannelNotAgent, a reading signed for the pool ChannelReadingInvalid", async () => {
    const { deal, buyer, seller } = await standardDeal();
    const id = channelId(kit.channelsDomain, deal);
    await open(deal, buyer, seller);
    const terms = { channel: id, seq: 1, cumulativeWh: 1000n, cumulativeAmount: 200_000n };
    const good = reading(seller, deal.firstInterval, 1000n, 1000n);

    async function redeemError(
      voucher: Voucher,
      signer: TestCell['agent'],
      readingDomain: typeof kit.poolDomain,
    ) {
      const signed = await signVoucher(signer, kit.channelsDomain, voucher);
      const signedReading = await signMeterReading(seller.meter, readingDomain, good);
      try {
        await kit.publicClient.simulateContract({
          account: await kit.freshAccount(),
          ...channels,
          functionName: 'redeem',
          args: [deal, toSignedVoucherArg(signed), toSignedReadingArg(signedReading)],
        });
      } catch (error) {
        return decodeContractError(error, 'redeem');
      }
      throw new Error('the call did not revert');
    }

    const notAgent = await redeemError(terms, seller.agent, kit.channelsDomain);
    expect(notAgent).toBeInstanceOf(ContractRevertError);
    expect((notAgent as ContractRevertError).shortMessage).toBe(
      `redeem reverted: ChannelNotAgent(cell=${buyer.id}, signer=${seller.agent.address})`,
    );
    const poolReading = await redeemError(terms, buyer.agent, kit.poolDomain);
    expect((poolReading as ContractRevertError).shortMessage).toBe(
      'redeem reverted: ChannelReadingInvalid(index=0)',
    );
  });
});
