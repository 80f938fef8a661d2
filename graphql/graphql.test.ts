import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { debtChannelsAbi } from '../chain/abi/contracts.generated.js';
import { useKit } from '../chain/test/kit.js';
import { type Database, openDatabase } from '../indexer/database/index.js';
import { silentLogger } from '../indexer/logger.js';
import { createIndexer, type Indexer } from '../indexer/sync/index.js';
import {
  clearBook,
  openChannelWithVoucher,
  runInterval,
  settleBook,
  submitBook,
  testClientFor,
  waitFor,
} from '../indexer/test/scenario.js';
import { createGraphqlServer, type GraphqlServer } from './index.js';

const kit = useKit();
const dir = mkdtempSync(join(tmpdir(), 'gridcell-graphql-'));
let writer: Database;
let reader: Database;
let indexer: Indexer;
let server: GraphqlServer;
const cleanup: (() => Promise<void>)[] = [];

interface GraphqlResult {
  data?: Record<string, unknown> | null;
  errors?: { message: string; extensions?: Record<string, unknown> }[];
}

async function gql(
  query: string,
  variables: Record<string, unknown> = {},
  on: GraphqlServer = server,
): Promise<GraphqlResult> {
  const response = await on.fetch(
    new Request('http://gridcell.test/graphql', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query, variables }),
    }),
  );
  return (await response.json()) as GraphqlResult;
}

/**
 * A subscription over server-sent events: `received` fills with each `data` payload's field
 * value as it arrives; `stop` ends the stream.
 */
async function subscribe<T>(query: string, on: GraphqlServer = server) {
  const response = await on.fetch(
    new Request('http://gridcell.test/graphql', {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
      body: JSON.stringify({ query }),
    }),
  );
  expect(response.headers.get('content-type')).toMatch(/text\/event-stream/);
  const stream = response.body?.getReader();
  if (!stream) throw new Error('no body');
  const received: T[] = [];
  const reading = (async () => {
    const decoder = new TextDecoder();
    let buffer = '';
    for (;;) {
      const { value, done } = await stream.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let end = buffer.indexOf('\n\n');
      while (end >= 0) {
        const message = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        for (const line of message.split('\n')) {
          if (!line.startsWith('data:')) continue;
          const payload = JSON.parse(line.slice(5)) as { data?: Record<string, T> };
          const [first] = Object.values(payload.data ?? {});
          if (first !== undefined) received.push(first);
        }
        end = buffer.indexOf('\n\n');
      }
    }
  })();
  return {
    received,
    async stop() {
      await stream.cancel();
      await reading.catch(() => {});
    },
  };
}

async function caughtUp() {
  const head = Number(await kit.publicClient.getBlockNumber({ cacheTime: 0 }));
  await waitFor(`indexing block ${head}`, () => (indexer.status().indexedBlock ?? 0) >= head);
}

beforeAll(async () => {
  await runInterval(kit);
  await runInterval(kit);
  const file = join(dir, 'index.sqlite');
  writer = await openDatabase({ url: file });
  indexer = createIndexer({
    publicClient: kit.publicClient,
    manifest: kit.manifest,
    db: writer,
    logger: silentLogger,
    finalityDepth: 2,
    pollIntervalMs: 20,
  });
  await indexer.start();
  await caughtUp();
  reader = await openDatabase({ url: file, readonly: true });
  server = createGraphqlServer({
    db: reader,
    logger: silentLogger,
    status: async () => indexer.status(),
    maxCost: 1000,
    maxDepth: 5,
    feedPollIntervalMs: 20,
  });
});

afterAll(async () => {
  await server?.close();
  await indexer?.stop();
  await reader?.close();
  await writer?.close();
  for (const c of cleanup) await c();
  rmSync(dir, { recursive: true, force: true });
});

describe('GraphQL over the index', () => {
  it('serves intervals with price, volume, status, their settlements and cells', async () => {
    const [row] = await reader.all<{ interval: number; price: string; volume_wh: number }>(
      `SELECT * FROM "intervals" WHERE "status" = 'settled' ORDER BY "interval" DESC LIMIT 1`,
    );
    if (!row) throw new Error('no settled interval indexed');
    const result = await gql(
      `query ($t: Int!) {
        interval(interval: $t) {
          interval status price volumeWh ordersSubmitted positionsSettled
          settlements { cellId side amount refund meteredWh cell { id owner wallet { deposited } } }
          schedules { cellId side energyWh }
        }
      }`,
      { t: Number(row.interval) },
    );
    expect(result.errors).toBeUndefined();
    const interval = result.data?.interval as Record<string, unknown> & {
      settlements: { side: string; cell: { id: number; wallet: { deposited: string } } }[];
    };
    expect(interval).toMatchObject({
      interval: Number(row.interval),
      status: 'settled',
      price: row.price,
      volumeWh: String(row.volume_wh),
      ordersSubmitted: 4,
      positionsSettled: 4,
    });
    expect(interval.settlements).toHaveLength(4);
    expect(interval.settlements.map((s) => s.side).sort()).toEqual(['BUY', 'BUY', 'SELL', 'SELL']);
    for (const s of interval.settlements) expect(s.cell.wallet.deposited).toBe('10000000000');
  });

  it('serves a debt channel, its parties and the voucher it redeemed', async () => {
    const { id, buyer, seller } = await openChannelWithVoucher(kit);
    await caughtUp();
    const result = await gql(
      `query ($id: String!) {
        channel(id: $id) {
          id status collateral voucherSeq deliveredWh owedAmount paidAmount pricePerKWh
          buyer { id owner } seller { id }
          vouchers { seq cumulativeWh cumulativeAmount paidNow }
        }
        vouchers(where: { channelId: $id }) { nodes { seq } }
      }`,
      { id },
    );
    expect(result.errors).toBeUndefined();
    expect(result.data?.channel).toMatchObject({
      id,
      status: 'open',
      voucherSeq: 1,
      deliveredWh: '1500',
      owedAmount: '300000',
      pricePerKWh: '200000',
      buyer: { id: Number(buyer.id), owner: buyer.owner.address },
      seller: { id: Number(seller.id) },
      vouchers: [{ seq: 1, cumulativeWh: '1500', cumulativeAmount: '300000' }],
    });
    const channel = result.data?.channel as { collateral: string; paidAmount: string };
    // What the voucher paid came out of the collateral, as on chain.
    const onChain = await kit.publicClient.readContract({
      address: kit.manifest.contracts.channels,
      abi: debtChannelsAbi,
      functionName: 'channelOf',
      args: [id, seller.meter.address],
    });
    expect(channel.collateral).toBe(onChain.collateral.toString());
    expect(BigInt(channel.collateral) + BigInt(channel.paidAmount)).toBe(1_600_000n);
    expect(result.data?.vouchers).toEqual({ nodes: [{ seq: 1 }] });
  });

  it('pages through every cell with cursors, in both directions, within the maximum page size', async () => {
    const all = (await reader.all<{ id: number }>('SELECT "id" FROM "cells" ORDER BY "id"')).map((r) =>
      Number(r.id),
    );
    expect(all.length).toBeGreaterThan(5);
    for (const direction of ['ASC', 'DESC']) {
      const seen: number[] = [];
      let after: string | null = null;
      for (let page = 0; page < 100; page++) {
        const result = await gql(
          `query ($after: String, $direction: OrderDirection) {
            cells(first: 3, after: $after, orderBy: { field: ID, direction: $direction }) {
              nodes { id } pageInfo { hasNextPage endCursor }
            }
          }`,
          { after, direction },
        );
        expect(result.errors).toBeUndefined();
        const cells = result.data?.cells as {
          nodes: { id: number }[];
          pageInfo: { hasNextPage: boolean; endCursor: string | null };
        };
        seen.push(...cells.nodes.map((n) => n.id));
        if (!cells.pageInfo.hasNextPage) break;
        after = cells.pageInfo.endCursor;
      }
      expect(seen).toEqual(direction === 'ASC' ? all : [...all].reverse());
    }
    const filtered = await gql(`{ settlements(first: 100, where: { side: SELL }) { nodes { side } } }`);
    const sides =
      (filtered.data?.settlements as { nodes: { side: string }[] } | undefined)?.nodes.map((n) => n.side) ??
      [];
    expect(sides.length).toBeGreaterThan(0);
    expect(new Set(sides)).toEqual(new Set(['SELL']));

    const tooMany = await gql('{ cells(first: 101) { nodes { id } } }');
    expect(tooMany.errors?.[0]?.message).toBe('first: 101 is out of range: expected 1 to 100');
    const badCursor = await gql('{ cells(first: 2, after: "bm9wZQ") { nodes { id } } }');
    expect(badCursor.errors?.[0]?.message).toMatch(/^invalid cursor "bm9wZQ"/);
  });

  it('loads relations in batches: one query per level, however many rows', async () => {
    const before = reader.statementCount();
    const result = await gql(
      '{ orders(first: 100) { nodes { cellId cell { id wallet { cellId } meters } } } }',
    );
    expect(result.errors).toBeUndefined();
    const nodes =
      (result.data?.orders as { nodes: { cellId: number; cell: { id: number } }[] } | undefined)?.nodes ?? [];
    expect(nodes.length).toBeGreaterThanOrEqual(8);
    for (const n of nodes) expect(n.cell.id).toBe(n.cellId);
    // orders, cells, wallets, meters: four queries for every row of the page.
    expect(reader.statementCount() - before).toBe(4);
  });

  it('refuses queries that are too deep or too costly, before running them', async () => {
    const before = reader.statementCount();
    const deep = await gql('{ cells { nodes { wallet { cell { wallet { cell { id } } } } } } }');
    expect(deep.errors?.[0]?.message).toBe('query depth 6 exceeds the maximum 5');
    const costly = await gql('{ intervals(first: 100) { nodes { settlements { cell { id } } } } }');
    expect(costly.errors?.[0]?.message).toMatch(/^query cost \d+ exceeds the maximum 1000/);
    expect(reader.statementCount()).toBe(before);
  });

  it('delivers a settlement to a subscriber (server-sent events)', async () => {
    const run = await submitBook(kit);
    await clearBook(kit, run);
    const settled = await subscribe<{ interval: number; cellId: number; side: string; amount: string }>(
      'subscription { positionSettled { interval cellId side amount cell { id } } }',
    );
    await settleBook(kit, run);
    await waitFor('four settlements on the subscription', () => settled.received.length >= 4);
    await settled.stop();
    const received = settled.received;
    expect(received.every((s) => s.interval === Number(run.interval))).toBe(true);
    expect(received.map((s) => s.cellId).sort()).toEqual(
      [...run.buyers, ...run.sellers].map((c) => Number(c.id)).sort(),
    );
    expect(received.filter((s) => s.side === 'BUY').every((s) => BigInt(s.amount) > 0n)).toBe(true);
  });

  it('reports health, readiness and the indexing lag', async () => {
    await caughtUp();
    const health = await server.fetch(new Request('http://gridcell.test/health'));
    expect(health.status).toBe(200);
    const ready = await server.fetch(new Request('http://gridcell.test/ready'));
    expect(ready.status).toBe(200);
    expect(await ready.json()).toMatchObject({ ready: true });
    const status = await gql('{ indexerStatus { indexedBlock headBlock lagBlocks ready } }');
    expect(status.data?.indexerStatus).toMatchObject({ ready: true });
    const s = status.data?.indexerStatus as { indexedBlock: number; headBlock: number; lagBlocks: number };
    expect(s.lagBlocks).toBe(s.headBlock - s.indexedBlock);

    const lagging = createGraphqlServer({
      db: reader,
      logger: silentLogger,
      status: async () => ({
        indexedBlock: 10,
        headBlock: 50,
        finalizedBlock: 38,
        lagBlocks: 40,
        ready: false,
      }),
    });
    cleanup.push(() => lagging.close());
    const notReady = await lagging.fetch(new Request('http://gridcell.test/ready'));
    expect(notReady.status).toBe(503);
    expect(await notReady.json()).toMatchObject({ lagBlocks: 40, ready: false });
  });

  it('masks unexpected errors in production and shows them in development', async () => {
    const broken = await openDatabase({ url: join(dir, 'broken.sqlite') });
    cleanup.push(() => broken.close());
    await broken.run('DROP TABLE "cells"');
    const status = async () => ({
      indexedBlock: 0,
      headBlock: 0,
      finalizedBlock: 0,
      lagBlocks: 0,
      ready: true,
    });
    const production = createGraphqlServer({ db: broken, logger: silentLogger, status });
    const development = createGraphqlServer({ db: broken, logger: silentLogger, status, production: false });
    cleanup.push(
      () => production.close(),
      () => development.close(),
    );
    const masked = await gql('{ cells { nodes { id } } }', {}, production);
    expect(masked.errors?.[0]?.message).toBe('Unexpected error.');
    expect(JSON.stringify(masked)).not.toMatch(/no such table/);
    const shown = await gql('{ cells { nodes { id } } }', {}, development);
    expect(JSON.stringify(shown)).toMatch(/no such table: cells/);
  });
  it('tells subscribers of a reorg: chainReorganized names the fork, then the new branch is delivered', async () => {
    // The shared indexer keeps 2 blocks and stops at this deeper reorg (DeepReorgError), so this
    // test comes last and runs its own indexer, which keeps 64.
    const file = join(dir, 'reorg.sqlite');
    const db = await openDatabase({ url: file });
    const own = createIndexer({
      publicClient: kit.publicClient,
      manifest: kit.manifest,
      db,
      logger: silentLogger,
      finalityDepth: 64,
      pollIntervalMs: 20,
    });
    await own.start();
    const indexedTo = async (label: string) => {
      const head = Number(await kit.publicClient.getBlockNumber({ cacheTime: 0 }));
      await waitFor(label, () => (own.status().indexedBlock ?? 0) >= head);
      return head;
    };
    const fork = await indexedTo('the reorg indexer at the head');
    const view = await openDatabase({ url: file, readonly: true });
    const graphql = createGraphqlServer({
      db: view,
      logger: silentLogger,
      status: async () => own.status(),
      maxCost: 1000,
      maxDepth: 5,
      feedPollIntervalMs: 20,
    });
    cleanup.push(async () => {
      await graphql.close();
      await own.stop();
      await view.close();
      await db.close();
    });
    type Delivered = { blockNumber: number; cell: { owner: string } };
    const settled = await subscribe<Delivered>(
      'subscription { positionSettled { blockNumber cell { owner } } }',
      graphql,
    );
    const reorgs = await subscribe<{ forkBlock: number; droppedThroughBlock: number }>(
      'subscription { chainReorganized { forkBlock droppedThroughBlock } }',
      graphql,
    );
    const testClient = testClientFor(kit);
    const snapshot = await testClient.snapshot();

    // A branch that will vanish: an interval settled for four fresh cells.
    const orphan = await runInterval(kit);
    await waitFor('the orphan branch on the subscription', () => settled.received.length >= 4);
    const orphanHead = await indexedTo('the orphan branch indexed');
    expect(reorgs.received).toEqual([]);

    // The chain goes back and takes another way, longer than the dropped one.
    await testClient.revert({ id: snapshot });
    const replacement = await runInterval(kit);
    await testClient.mine({ blocks: 5 });
    await indexedTo('the new branch indexed');
    await waitFor('the reorg notice', () => reorgs.received.length >= 1);
    const owners = (run: typeof orphan) => [...run.sellers, ...run.buyers].map((c) => c.owner.address).sort();
    await waitFor('the new branch on the subscription', () => settled.received.length >= 8);
    await Promise.all([settled.stop(), reorgs.stop()]);

    const [notice] = reorgs.received;
    expect(reorgs.received).toHaveLength(1);
    // The fork is where the branches part: at the snapshot or after it, below every orphan settlement.
    expect(notice?.forkBlock).toBeGreaterThanOrEqual(fork);
    const orphanSettled = settled.received.slice(0, 4);
    expect(orphanSettled.map((s) => s.cell.owner).sort()).toEqual(owners(orphan));
    expect(orphanSettled.every((s) => s.blockNumber > (notice?.forkBlock ?? 0))).toBe(true);
    expect(notice?.droppedThroughBlock).toBe(orphanHead);
    // What follows is the new branch: the replacement's cells, above the fork.
    const replayed = settled.received.slice(4);
    expect(replayed.map((s) => s.cell.owner).sort()).toEqual(owners(replacement));
    expect(replayed.every((s) => s.blockNumber > (notice?.forkBlock ?? 0))).toBe(true);
  });
});
