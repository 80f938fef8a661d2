import { parseEventLogs } from 'viem';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { debtChannelsAbi } from '../../chain/abi/contracts.generated.js';
import { useKit } from '../../chain/test/kit.js';
import { CellType } from '../../chain/units/index.js';
import type { AgentConfigInput } from '../config/index.js';
import type { Agent } from '../index.js';
import { type AgentHarness, createAgentHarness } from '../test/harness.js';
import { waitFor } from '../test/helpers.js';

const kit = useKit();
const L = kit.manifest.pool.intervalSeconds;
const channels = { address: kit.manifest.contracts.channels, abi: debtChannelsAbi } as const;
let h: AgentHarness;

beforeAll(async () => {
  h = await createAgentHarness(kit, 'agent-close');
});
afterAll(async () => {
  await h.close();
});

const channelOf = (channel: `0x${string}`, meter: `0x${string}`) =>
  kit.publicClient.readContract({ ...channels, functionName: 'channelOf', args: [channel, meter] });

async function closedEvent(channel: `0x${string}`) {
  const [event] = await kit.publicClient.getContractEvents({
    ...channels,
    eventName: 'ChannelClosed',
    args: { channel },
    fromBlock: kit.manifest.deploymentBlock,
  });
  return event?.args;
}

/**
 * Two fresh cells negotiate a deal of 500 Wh in each of intervals c+2 and c+3 at 0.15 per kWh
 * (collateral 150,000 base units) and open its channel. Neither bids in the pool, so their
 * wallets move only through the channel.
 */
async function openDeal(
  sellerDeals: Partial<AgentConfigInput['deals']> = {},
  buyerDeals: Partial<AgentConfigInput['deals']> = {},
) {
  const [seller, buyer] = await Promise.all([kit.newCell(CellType.Prosumer), kit.newCell(CellType.Prosumer)]);
  const start = ((await kit.chainTime()) / L + 2n) * L + 10n;
  await kit.setChainTime(start);
  const c = start / L;
  const before = { seller: await h.available(seller), buyer: await h.available(buyer) };
  const sellerAgent = await h.startAgent(seller, {
    profile: { loadWh: [200], generationWh: [1200] },
    preferences: { minSellPrice: '100000', maxBuyPrice: '300000', dealPrice: '150000' },
    pool: { enabled: false },
    deals: { closeAnswerSeconds: 30, finalVoucherWaitSeconds: 60, ...sellerDeals },
  });
  const buyerAgent = await h.startAgent(
    buyer,
    {
      profile: { loadWh: [600], generationWh: [0] },
      pool: { enabled: false },
      deals: {
        buy: { maxWhPerInterval: '500', intervals: 2, leadIntervals: 2 },
        cfpWindowSeconds: 30,
        ...buyerDeals,
      },
    },
    sellerAgent.multiaddrs(),
  );
  const conversation = await waitFor('a proposal', () =>
    buyerAgent.conversations().find((x) => x.role === 'initiator' && x.proposals.size === 1),
  );
  // Up to the call's deadline in two steps, so that neither agent's clock lags the other's by more
  // than the 30 s a message may be stamped ahead: the buyer accepts in the round that passes it.
  await h.setTime(BigInt(conversation.deadline) - 10n, [sellerAgent, buyerAgent]);
  await h.setTime(BigInt(conversation.deadline) + 1n, [sellerAgent, buyerAgent]);
  const channel = await waitFor('the deal to open on both sides', () => {
    const b = buyerAgent.conversations().find((x) => x.id === conversation.id);
    const s = sellerAgent.conversations().find((x) => x.id === conversation.id);
    return b?.state === 'open' && s?.state === 'open' ? b.channel : undefined;
  });
  await waitFor('the buyer to follow the seller meter', () => buyerAgent.deals().find((d) => d.subscribed));
  expect((await channelOf(channel, seller.meter.address)).collateral).toBe(150_000n);
  expect(before.buyer - (await h.available(buyer))).toBe(150_000n);
  return { seller, buyer, sellerAgent, buyerAgent, c, channel, before };
}

const sellerDeal = (agent: Agent, channel: `0x${string}`) => agent.deals().find((d) => d.channel === channel);

describe('closing a deal channel', () => {
  test('after the last voucher is redeemed the agents close cooperatively: the seller keeps what was delivered, the buyer gets its unused collateral back', async () => {
    const { seller, buyer, sellerAgent, buyerAgent, c, channel, before } = await openDeal();
    // Delivery is over; the meter signs 450 Wh in c+2 and 300 Wh in c+3: 750 of the 1000 Wh.
    await h.setTime((c + 4n) * L + 10n, [sellerAgent, buyerAgent]);
    await h.publishReading(seller, {
      interval: c + 2n,
      importWh: 0n,
      exportWh: 450n,
      importCumWh: 0n,
      exportCumWh: 10_450n,
      seq: 1n,
    });
    await waitFor('the first redemption', () => sellerAgent.metrics().deals.redemptions >= 1);
    // Not the deal's last voucher yet: no close.
    expect(sellerDeal(sellerAgent, channel)?.close).toBeUndefined();
    await h.publishReading(seller, {
      interval: c + 3n,
      importWh: 0n,
      exportWh: 300n,
      importCumWh: 0n,
      exportCumWh: 10_750n,
      seq: 2n,
    });
    const close = await waitFor('the cooperative close', () => {
      const x = sellerDeal(sellerAgent, channel)?.close;
      return x?.state === 'closed' ? x : undefined;
    });
    expect(close.path).toBe('cooperative');
    expect(close.finalAmount).toBe(112_500n);
    const state = await channelOf(channel, seller.meter.address);
    expect(state.status).toBe(3);
    expect(await closedEvent(channel)).toMatchObject({
      owed: 112_500n,
      paid: 112_500n,
      refunded: 37_500n,
      debt: 0n,
    });
    // 750 Wh at 0.15 per kWh went to the seller; the buyer paid exactly that.
    expect((await h.available(seller)) - before.seller).toBe(112_500n);
    expect(before.buyer - (await h.available(buyer))).toBe(112_500n);
    await waitFor(
      'the buyer to see the channel closed',
      () => buyerAgent.deals()[0]?.close?.state === 'closed',
    );
    expect(buyerAgent.metrics().deals.closesAgreed).toBe(1);
    expect(sellerAgent.metrics().deals.closedUnilaterally).toBe(0);
  });

  test('error: the buyer agent is gone, so the seller closes with its latest voucher and settles after the challenge window', async () => {
    // The seller redeems only at the deal's end: it still holds the buyer's voucher when the buyer goes.
    const { seller, buyer, sellerAgent, buyerAgent, c, channel, before } = await openDeal({
      redeemThreshold: '1000000',
    });
    await h.setTime((c + 3n) * L + 10n, [sellerAgent, buyerAgent]);
    await h.publishReading(seller, {
      interval: c + 2n,
      importWh: 0n,
      exportWh: 450n,
      importCumWh: 0n,
      exportCumWh: 20_450n,
      seq: 1n,
    });
    await waitFor('the voucher of c+2', () => sellerAgent.metrics().deals.vouchersReceived === 1);
    expect(sellerAgent.metrics().deals.redemptions).toBe(0);
    await buyerAgent.stop();

    // Delivery ended at (c+4)L; the last voucher does not come within the 60 s wait.
    await kit.setChainTime((c + 4n) * L + 30n);
    await sellerAgent.tick();
    expect(sellerDeal(sellerAgent, channel)?.close).toBeUndefined();
    await kit.setChainTime((c + 4n) * L + 61n);
    const proposed = await waitFor('the close proposal', () => sellerDeal(sellerAgent, channel)?.close);
    expect(proposed.state).toBe('proposed');
    expect(proposed.finalAmount).toBe(67_500n);
    // Nobody answers by the deadline: the seller closes with the voucher (it was never on chain).
    await kit.setChainTime(BigInt(proposed.deadline) + 1n);
    const closing = await waitFor('the unilateral close', () => {
      const x = sellerDeal(sellerAgent, channel)?.close;
      return x?.state === 'closing' ? x : undefined;
    });
    const state = await channelOf(channel, seller.meter.address);
    expect(state.status).toBe(2);
    expect(state.seq).toBe(1);
    expect(state.owed).toBe(67_500n);
    expect(closing.closeDeadline).toBe(state.closeDeadline);
    const closedBefore = await closedEvent(channel);
    expect(closedBefore).toBeUndefined();
    // The window runs out: the seller settles.
    await kit.setChainTime(BigInt(state.closeDeadline));
    const closed = await waitFor('the settlement', () => {
      const x = sellerDeal(sellerAgent, channel)?.close;
      return x?.state === 'closed' ? x : undefined;
    });
    expect(closed.path).toBe('unilateral');
    const settleReceipt = await kit.publicClient.getTransactionReceipt({ hash: closed.transaction ?? '0x' });
    const [event] = parseEventLogs({
      abi: debtChannelsAbi,
      eventName: 'ChannelClosed',
      logs: settleReceipt.logs,
    });
    expect(event?.args).toMatchObject({ owed: 67_500n, paid: 67_500n, refunded: 82_500n, debt: 0n });
    expect((await h.available(seller)) - before.seller).toBe(67_500n);
    expect(before.buyer - (await h.available(buyer))).toBe(67_500n);
    expect(sellerAgent.metrics().deals.closedUnilaterally).toBe(1);
  });

  test('error: the seller agent is gone after delivery, so the buyer closes alone with its own voucher and settles after the window', async () => {
    // The seller would redeem only at the deal's end; it goes before it can.
    const { seller, buyer, sellerAgent, buyerAgent, c, channel, before } = await openDeal(
      { redeemThreshold: '1000000' },
      { buyerCloseWaitSeconds: 120 },
    );
    await h.setTime((c + 3n) * L + 10n, [sellerAgent, buyerAgent]);
    await h.publishReading(seller, {
      interval: c + 2n,
      importWh: 0n,
      exportWh: 450n,
      importCumWh: 0n,
      exportCumWh: 30_450n,
      seq: 1n,
    });
    await waitFor('the voucher of c+2', () => buyerAgent.metrics().deals.vouchersSigned === 1);
    await sellerAgent.stop();
    const buyerDeal = () => buyerAgent.deals().find((d) => d.channel === channel);

    // Delivery ended at (c+4)L; the buyer waits 120 s for the seller's close.
    await kit.setChainTime((c + 4n) * L + 60n);
    await buyerAgent.tick();
    expect(buyerDeal()?.close).toBeUndefined();
    await kit.setChainTime((c + 4n) * L + 121n);
    const closing = await waitFor('the buyer closing alone', () => {
      const x = buyerDeal()?.close;
      return x?.state === 'closing' ? x : undefined;
    });
    expect(closing.path).toBe('unilateral');
    expect(closing.reason).toMatch(/no close from the seller/);
    const state = await channelOf(channel, seller.meter.address);
    // It closed with its own voucher: 450 Wh at 0.15 per kWh are owed to the seller.
    expect(state.status).toBe(2);
    expect(state.seq).toBe(1);
    expect(state.owed).toBe(67_500n);
    expect(closing.closeDeadline).toBe(state.closeDeadline);

    // The window runs out: the buyer settles; its unused collateral comes back.
    await kit.setChainTime(BigInt(state.closeDeadline));
    const closed = await waitFor('the settlement', () => {
      const x = buyerDeal()?.close;
      return x?.state === 'closed' ? x : undefined;
    });
    expect(closed.outcome).toMatchObject({ owed: 67_500n, paid: 67_500n, refunded: 82_500n, debt: 0n });
    expect((await h.available(seller)) - before.seller).toBe(67_500n);
    expect(before.buyer - (await h.available(buyer))).toBe(67_500n);
    expect(buyerAgent.metrics().deals.closedUnilaterally).toBe(1);
  });
});
