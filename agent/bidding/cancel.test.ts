import { createTestClient, http, parseEther } from 'viem';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createGridcellClients } from '../../chain/client/index.js';
import { useKit } from '../../chain/test/kit.js';
import { CellType, Side } from '../../chain/units/index.js';
import { parseAgentConfig } from '../config/index.js';
import { createDispatchLedger } from '../dispatch/index.js';
import { createTxSender, type TxSender } from '../sender/index.js';
import { type AgentHarness, createAgentHarness } from '../test/harness.js';
import { testLogger, waitFor } from '../test/helpers.js';
import { createForecast, createPoolBidder } from './index.js';

const kit = useKit();
const L = kit.manifest.pool.intervalSeconds;
const lead = kit.manifest.pool.gateClosureLead;
const testClient = createTestClient({ chain: kit.chain, mode: 'anvil', transport: http(kit.rpcUrl) });
let h: AgentHarness;

beforeAll(async () => {
  h = await createAgentHarness(kit, 'agent-pool');
});
afterAll(async () => {
  await h.close();
});

/** A fresh interval, 10 s in: the gate of the next one is open for another 590 s. */
async function freshInterval() {
  const start = ((await kit.chainTime()) / L + 2n) * L + 10n;
  await kit.setChainTime(start);
  return start / L;
}

describe('pool orders the forecast no longer backs', () => {
  test('the bidder cancels an order before gate closure once the forecast falls below it, never after, and not when it rises', async () => {
    const cell = await kit.newCell(CellType.Prosumer);
    await testClient.setBalance({ address: cell.agent.address, value: parseEther('10') });
    const c = await freshInterval();
    const T = c + 1n;
    const config = parseAgentConfig({
      cell: cell.id.toString(),
      zone: 'agent-pool',
      meter: cell.meter.address,
      profile: { loadWh: [200], generationWh: [1200] },
      preferences: { minSellPrice: '100000', maxBuyPrice: '300000' },
    });
    const forecast = createForecast({ profile: config.profile });
    const ledger = createDispatchLedger({
      capacity: (t, d) =>
        d === 'export' ? forecast.at(t).surplusWh : d === 'import' ? forecast.at(t).deficitWh : 0n,
      priorities: config.priorities,
    });
    const { publicClient, walletClient } = createGridcellClients({
      manifest: kit.manifest,
      account: cell.agent,
    });
    if (!walletClient) throw new Error('no wallet client');
    const real = createTxSender({ publicClient, walletClient });
    const calls: string[] = [];
    const tx: TxSender = {
      send: (request) => {
        calls.push(request.functionName);
        return real.send(request);
      },
      sent: () => real.sent(),
    };
    const bidder = createPoolBidder({
      cell: cell.id,
      config,
      account: cell.agent,
      publicClient,
      pool: kit.manifest.contracts.pool,
      poolDomain: kit.poolDomain,
      intervalSeconds: L,
      gateClosureLead: lead,
      forecast,
      ledger,
      tx,
      logger: testLogger('pool-cancel'),
    });
    const first = await bidder.bid(T);
    expect(first.order).toMatchObject({ side: Side.Sell, energyWh: 1000n, nonce: 0 });

    // More generation than expected: the order is still backed.
    forecast.revise(T, { generationWh: 1300n });
    expect(await bidder.review(await kit.chainTime())).toEqual([]);
    expect(calls).toEqual(['submitOrders']);

    // Less: 400 Wh to sell. The order goes, and the interval is bid again with what is left.
    forecast.revise(T, { generationWh: 600n });
    const cancelled = await bidder.review(await kit.chainTime());
    expect(cancelled).toHaveLength(1);
    expect(cancelled[0]?.cancelled?.reason).toBe("the forecast backs 400 of the order's 1000 Wh of export");
    expect(await h.cancellationsOf(T)).toEqual([`${cell.id}:0`]);
    const again = await bidder.bid(T);
    expect(again.order).toMatchObject({ side: Side.Sell, energyWh: 400n, nonce: 1 });
    expect(ledger.commitments(T)).toMatchObject([{ key: `pool:${T}`, wh: 400n }]);

    // After gate closure the order stands, whatever the forecast says: the pool would refuse.
    await kit.setChainTime(T * L - lead);
    forecast.revise(T, { generationWh: 200n });
    expect(ledger.overCommitted(T, 'export')).toBe(400n);
    expect(await bidder.review(await kit.chainTime())).toEqual([]);
    expect(calls).toEqual(['submitOrders', 'cancelOrder', 'submitOrders']);
  });

  test('an agent whose forecast for the open interval falls cancels its order and bids what is left', async () => {
    const cell = await kit.newCell(CellType.Prosumer);
    const c = await freshInterval();
    const T = c + 1n;
    const agent = await h.startAgent(cell, {
      profile: { loadWh: [200], generationWh: [1200] },
      deals: { sell: false },
    });
    await waitFor('the order of interval T', async () => (await h.ordersOf(T)).get(cell.id));
    expect((await h.ordersOf(T)).get(cell.id)).toMatchObject({ nonce: 0, energyWh: 1000n });
    // The dispatch ledger now holds more for the pool than the cell can export.
    agent.reviseForecast(T, { generationWh: 500n });
    await waitFor('the new order', async () => (await h.ordersOf(T)).get(cell.id)?.nonce === 1);
    expect(await h.cancellationsOf(T)).toEqual([`${cell.id}:0`]);
    expect((await h.ordersOf(T)).get(cell.id)).toMatchObject({ nonce: 1, energyWh: 300n });
    const bids = agent.metrics().bids.filter((b) => b.interval === T);
    expect(bids.map((b) => [b.order?.energyWh, b.cancelled !== undefined])).toEqual([
      [1000n, true],
      [300n, false],
    ]);
    expect(agent.ledger.commitments(T)).toMatchObject([{ key: `pool:${T}`, wh: 300n }]);
  });
});
