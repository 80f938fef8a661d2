import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { clearingPoolAbi } from '../../chain/abi/contracts.generated.js';
import { useKit } from '../../chain/test/kit.js';
import { CellType, Side } from '../../chain/units/index.js';
import { encodePayload, gridTopics } from '../../grid/controller/messages.js';
import type { ReserveRequest } from '../../grid/controller/planInterval.js';
import { type AgentHarness, createAgentHarness } from '../test/harness.js';
import { waitFor } from '../test/helpers.js';

const kit = useKit();
const zone = 'agent-reserve';
const L = kit.manifest.pool.intervalSeconds;
const lead = kit.manifest.pool.gateClosureLead;
let h: AgentHarness;
let grid: MqttClient;

beforeAll(async () => {
  h = await createAgentHarness(kit, zone);
  grid = await mqtt.connectAsync(h.mqttUrl);
});
afterAll(async () => {
  await grid.endAsync();
  await h.close();
});

/** Publishes as the grid controller does (grid/controller/index.ts): QoS 1, not retained. */
async function raise(request: ReserveRequest) {
  const at = Number(await kit.chainTime());
  await grid.publishAsync(
    gridTopics.reserve(zone),
    encodePayload({ v: 1, type: 'grid-reserve', ...request, at }),
    {
      qos: 1,
      retain: false,
    },
  );
}

/** A fresh interval, 10 s in: the gate of the next one is open for another 590 s. */
async function freshInterval() {
  const start = ((await kit.chainTime()) / L + 2n) * L + 10n;
  await kit.setChainTime(start);
  return start / L;
}

async function positionOf(interval: bigint, cell: bigint) {
  return kit.publicClient.readContract({
    address: kit.manifest.contracts.pool,
    abi: clearingPoolAbi,
    functionName: 'positionOf',
    args: [interval, cell],
  });
}

async function submittedBy(interval: bigint, cell: bigint) {
  const logs = await kit.publicClient.getContractEvents({
    address: kit.manifest.contracts.pool,
    abi: clearingPoolAbi,
    eventName: 'OrderSubmitted',
    args: { interval, cell },
    fromBlock: kit.manifest.deploymentBlock,
  });
  return logs.map((l) => l.args);
}

describe('reserve requests of the grid controller', () => {
  test('the named cell answers once with a pool order for the requested interval, side and energy; repeats and other cells place nothing; the ledger and the gate bound it', async () => {
    const cell = await kit.newCell(CellType.Prosumer);
    const other = await kit.newCell(CellType.Prosumer);
    const c = await freshInterval();
    const T = c + 2n;
    // 1000 Wh of import free per interval; no bidding of its own, so every order is a reserve answer.
    const agent = await h.startAgent(cell, {
      profile: { loadWh: [1000], generationWh: [0] },
      pool: { enabled: false },
      deals: { sell: false },
    });
    const shortfall: ReserveRequest = {
      interval: T,
      code: 'Shortfall',
      side: 'buy',
      energyWh: 400n,
      cell: cell.id,
      forInterval: c,
      reason: `Shortfall: cell ${cell.id} was scheduled to export 400 Wh in interval ${c}, its meter counted 0 Wh`,
    };

    await raise(shortfall);
    const placed = await waitFor('the reserve order on chain', async () =>
      (await h.ordersOf(T)).get(cell.id),
    );
    expect(placed).toMatchObject({
      nonce: 0,
      side: Side.Buy,
      energyWh: 400n,
      limitPrice: 300000n,
      expiry: T * L - lead,
    });
    expect(await positionOf(T, cell.id)).toMatchObject({ orderCount: 1, orderedWh: 400, side: Side.Buy });
    expect(agent.ledger.commitments(T)).toMatchObject([
      { key: `reserve:${T}:${cell.id}:buy:${c}`, service: 'pool', direction: 'import', wh: 400n },
    ]);

    // The same request again (a QoS 1 redelivery, a controller restart) and one for another cell.
    await raise(shortfall);
    await raise({ ...shortfall, cell: other.id });
    await waitFor('the repeat and the other cell counted', () => {
      const m = agent.metrics().reserve;
      return m?.duplicates === 1 && m.otherCell === 1;
    });
    await agent.tick();
    expect(await submittedBy(T, cell.id)).toHaveLength(1);
    expect(await submittedBy(T, other.id)).toHaveLength(0);

    // A second request into T gets what the ledger has left (600 of 1000 Wh), a third nothing.
    await raise({ ...shortfall, forInterval: c - 1n, energyWh: 1000n });
    await waitFor('the second order', async () => (await positionOf(T, cell.id)).orderCount === 2);
    expect((await h.ordersOf(T)).get(cell.id)).toMatchObject({ nonce: 1, energyWh: 600n });
    await raise({ ...shortfall, forInterval: c - 2n });
    await waitFor('the ledger-full decline', () => agent.metrics().reserve?.declined === 1);
    expect(agent.metrics().reserve?.answers.at(-1)?.declined).toBe(
      `ledger full: no import free in interval ${T}`,
    );

    // Into an interval whose gate has closed (c is being delivered): declined, nothing sent.
    await raise({ ...shortfall, interval: c, forInterval: c - 3n });
    await waitFor('the gate-closed decline', () => agent.metrics().reserve?.declined === 2);
    expect(agent.metrics().reserve?.answers.at(-1)?.declined).toMatch(/^gate closed: interval \d+ closed at/);
    expect(await submittedBy(c, cell.id)).toHaveLength(0);
    expect(await submittedBy(T, cell.id)).toHaveLength(2);
    expect(agent.metrics().reserve).toMatchObject({
      received: 6,
      placed: 2,
      declined: 2,
      duplicates: 1,
      otherCell: 1,
    });
  });

  test('error: an invalid payload and, with grid.answerReserve off, a request for the cell place nothing', async () => {
    const on = await kit.newCell(CellType.Prosumer);
    const off = await kit.newCell(CellType.Prosumer);
    const c = await freshInterval();
    const T = c + 2n;
    const profile = { loadWh: [1000], generationWh: [0] };
    const answering = await h.startAgent(on, { profile, pool: { enabled: false }, deals: { sell: false } });
    const silent = await h.startAgent(off, {
      profile,
      pool: { enabled: false },
      deals: { sell: false },
      grid: { answerReserve: false },
    });
    expect(silent.metrics().reserve).toBeUndefined();
    const request: ReserveRequest = {
      interval: T,
      code: 'RouterLimit',
      side: 'buy',
      energyWh: 300n,
      cell: off.id,
      forInterval: T - 1n,
      reason: 'RouterLimit',
    };
    await grid.publishAsync(
      gridTopics.reserve(zone),
      JSON.stringify({
        v: 1,
        type: 'grid-reserve',
        interval: Number(T),
        code: request.code,
        side: request.side,
        energyWh: 300,
        cell: Number(off.id),
        forInterval: Number(T - 1n),
        reason: request.reason,
        at: 0,
      }),
      { qos: 1 },
    );
    await raise(request);
    // Published after the others: once it is answered, the others have been delivered too.
    await raise({ ...request, cell: on.id });
    await waitFor('the answering agent’s order', async () => (await h.ordersOf(T)).get(on.id));
    await silent.tick();
    expect(await submittedBy(T, off.id)).toHaveLength(0);
    expect(answering.metrics().reserve).toMatchObject({ received: 3, invalid: 1, otherCell: 1, placed: 1 });
  });
});
