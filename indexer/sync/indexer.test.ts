import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cellRegistryAbi, cellWalletsAbi, clearingPoolAbi } from '../../chain/abi/contracts.generated.js';
import { useKit } from '../../chain/test/kit.js';
import { CellType } from '../../chain/units/index.js';
import { type Database, openDatabase } from '../database/index.js';
import { silentLogger } from '../logger.js';
import { reportSkippedPostgres, testBackends } from '../test/backends.js';
import {
  chainEventKeys,
  clearBook,
  databaseEventKeys,
  dumpDerived,
  runInterval,
  settleBook,
  submitBook,
  testClientFor,
  waitFor,
} from '../test/scenario.js';
import { createIndexer, type Indexer } from './index.js';

const kit = useKit();
const dir = mkdtempSync(join(tmpdir(), 'gridcell-indexer-'));
const opened: { db: Database; indexer?: Indexer }[] = [];
const backends = testBackends(dir);
reportSkippedPostgres();

afterAll(async () => {
  for (const o of opened) {
    await o.indexer?.stop();
    await o.db.close();
  }
  for (const b of backends) await b.cleanup();
  rmSync(dir, { recursive: true, force: true });
});

let backend = backends[0];

async function startIndexer(name: string, finalityDepth: number) {
  if (!backend) throw new Error('no backend');
  const db = await openDatabase({ url: await backend.url(name) });
  const indexer = createIndexer({
    publicClient: kit.publicClient,
    manifest: kit.manifest,
    db,
    logger: silentLogger,
    finalityDepth,
    pollIntervalMs: 20,
  });
  opened.push({ db, indexer });
  await indexer.start();
  return { db, indexer };
}

/** Waits until the indexer holds the chain's current head block (same hash). */
async function caughtUp(indexer: Indexer, db: Database) {
  const head = await kit.publicClient.getBlock({ blockTag: 'latest' });
  await waitFor(`indexing up to block ${head.number}`, async () => {
    const status = indexer.status();
    if (status.error) throw new Error(`indexer: ${status.error}`);
    if (status.indexedBlock !== Number(head.number)) return false;
    const [row] = await db.all<{ block_hash: string }>('SELECT "block_hash" FROM "checkpoint"');
    return row?.block_hash === head.hash;
  });
  return head.number;
}

/** A database indexed from scratch now: what every other one must equal. */
async function reference(name: string) {
  const fresh = await startIndexer(name, 0);
  await caughtUp(fresh.indexer, fresh.db);
  await fresh.indexer.stop();
  return fresh.db;
}

describe.each(backends)('indexer on a real anvil ($name)', (b) => {
  beforeAll(() => {
    backend = b;
  });
  // Without a PostgreSQL server its tests show as skipped (the reason is printed above).
  const test = b.available ? it : it.skip;

  test('backfills the past, follows the head, and derives cells, orders, intervals and settlements', async () => {
    const before = await runInterval(kit);
    const { db, indexer } = await startIndexer('follow', 3);
    await caughtUp(indexer, db);
    expect(indexer.status().ready).toBe(true);

    const after = await runInterval(kit);
    const head = await caughtUp(indexer, db);
    expect(await databaseEventKeys(db)).toEqual(await chainEventKeys(kit, head));

    for (const run of [before, after]) {
      const onChain = await kit.publicClient.readContract({
        address: kit.manifest.contracts.pool,
        abi: clearingPoolAbi,
        functionName: 'intervalOf',
        args: [run.interval],
      });
      const [row] = await db.all('SELECT * FROM "intervals" WHERE "interval" = ?', [Number(run.interval)]);
      expect(row).toMatchObject({
        status: 'settled',
        price: onChain.price.toString(),
        volume_wh: Number(onChain.volumeWh),
        orders_submitted: 4,
        positions_settled: 4,
      });
      const settlements = await db.all('SELECT * FROM "settlements" WHERE "interval" = ?', [
        Number(run.interval),
      ]);
      expect(settlements).toHaveLength(4);
      const cell = run.buyers[0];
      if (!cell) throw new Error('no buyer');
      const [c] = await db.all('SELECT * FROM "cells" WHERE "id" = ?', [Number(cell.id)]);
      expect(c).toMatchObject({
        owner: cell.owner.address,
        agent: cell.agent.address,
        cell_type: CellType.PassiveConsumer,
        status: 'connected',
      });
      const [m] = await db.all('SELECT * FROM "meters" WHERE "meter" = ?', [cell.meter.address]);
      expect(m).toMatchObject({ cell_id: Number(cell.id) });
      const [w] = await db.all('SELECT * FROM "wallets" WHERE "cell_id" = ?', [Number(cell.id)]);
      expect(w).toMatchObject({ deposited: '10000000000', daily_cap: (2n ** 96n - 1n).toString() });
      expect(BigInt(String(w?.pool_paid))).toBeGreaterThan(0n);
    }
    expect(await dumpDerived(db)).toEqual(await dumpDerived(await reference('follow-reference')));
  });

  test("holds each wallet's locked escrow as the chain does, from the bids to their settlement", async () => {
    const { db, indexer } = await startIndexer('locked', 3);
    const run = await submitBook(kit);
    const compare = async (label: string) => {
      await caughtUp(indexer, db);
      for (const cell of [...run.buyers, ...run.sellers]) {
        const [, locked] = await kit.publicClient.readContract({
          address: kit.manifest.contracts.wallets,
          abi: cellWalletsAbi,
          functionName: 'balanceOf',
          args: [cell.id],
        });
        const [w] = await db.all<{ locked: string }>('SELECT "locked" FROM "wallets" WHERE "cell_id" = ?', [
          Number(cell.id),
        ]);
        expect(w?.locked ?? '0', `${label}: cell ${cell.id}`).toBe(locked.toString());
      }
    };
    await compare('bids submitted');
    for (const buyer of run.buyers) {
      const [w] = await db.all<{ locked: string }>('SELECT "locked" FROM "wallets" WHERE "cell_id" = ?', [
        Number(buyer.id),
      ]);
      expect(BigInt(w?.locked ?? '0'), 'a bid locks its escrow').toBeGreaterThan(0n);
    }
    await clearBook(kit, run);
    await compare('cleared');
    await settleBook(kit, run);
    await compare('settled');
  });

  test('refuses a database of another schema version, saying to index into a new one', async () => {
    const url = await b.url('versions');
    const db = await openDatabase({ url });
    await db.run('UPDATE "schema_info" SET "version" = 1 WHERE "id" = 1');
    await db.close();
    await expect(openDatabase({ url })).rejects.toThrow(
      /has schema version 1; this gridcell reads and writes version 2[\s\S]*index into a new database/,
    );
    // Indexed before versions were kept: a checkpoint and no version row.
    const unversioned = await b.url('unversioned');
    const old = await openDatabase({ url: unversioned });
    await old.run('DELETE FROM "schema_info"');
    await old.run(
      'INSERT INTO "checkpoint" ("id", "chain_id", "block_number", "block_hash") VALUES (1, 31337, 5, \'0x00\')',
    );
    await old.close();
    await expect(openDatabase({ url: unversioned })).rejects.toThrow(/has schema version 1/);
  });

  test('rolls back and replays when the chain reorganises (anvil snapshot and revert)', async () => {
    const { db, indexer } = await startIndexer('reorg', 64);
    await caughtUp(indexer, db);
    const testClient = testClientFor(kit);
    const snapshot = await testClient.snapshot();

    // The branch that will vanish: a cell and its orders.
    const orphan = await submitBook(kit);
    await caughtUp(indexer, db);
    const orphanCell = Number(orphan.sellers[0]?.id);
    expect(await db.all('SELECT * FROM "cells" WHERE "id" = ?', [orphanCell])).toHaveLength(1);
    expect(
      await db.all('SELECT * FROM "orders" WHERE "interval" = ?', [Number(orphan.interval)]),
    ).toHaveLength(4);

    // The chain goes back and takes another way: other cells at the same heights, then more.
    await testClient.revert({ id: snapshot });
    const owner = await kit.freshAccount();
    await kit.write(owner, {
      address: kit.manifest.contracts.registry,
      abi: cellRegistryAbi,
      functionName: 'connect',
      args: [owner.address, CellType.ActiveConsumer, 0n, 5_000, 0, owner.address, []],
    });
    const replacement = await runInterval(kit);
    const head = await caughtUp(indexer, db);
    expect(indexer.status().reorgs).toBeGreaterThanOrEqual(1);

    expect(await databaseEventKeys(db)).toEqual(await chainEventKeys(kit, head));
    const [cell] = await db.all('SELECT * FROM "cells" WHERE "id" = ?', [orphanCell]);
    // The orphan's id was given again on the new branch, to another owner.
    expect(cell?.owner).not.toBe(orphan.sellers[0]?.owner.address);
    const [interval] = await db.all('SELECT * FROM "intervals" WHERE "interval" = ?', [
      Number(replacement.interval),
    ]);
    expect(interval?.status).toBe('settled');
    expect(await dumpDerived(db)).toEqual(await dumpDerived(await reference('reorg-reference')));
    const [undo] = await db.all<{ n: number }>('SELECT COUNT(*) AS "n" FROM "undo_log"');
    expect(Number(undo?.n)).toBeGreaterThan(0);
  });

  test('resumes from its checkpoint after a stop, with nothing missing or doubled', async () => {
    const first = await startIndexer('resume', 2);
    await caughtUp(first.indexer, first.db);
    await first.indexer.stop();
    await runInterval(kit);
    const again = createIndexer({
      publicClient: kit.publicClient,
      manifest: kit.manifest,
      db: first.db,
      logger: silentLogger,
      finalityDepth: 2,
      pollIntervalMs: 20,
    });
    opened.push({ db: first.db, indexer: again });
    await again.start();
    const head = await caughtUp(again, first.db);
    expect(await databaseEventKeys(first.db)).toEqual(await chainEventKeys(kit, head));
    expect(await dumpDerived(first.db)).toEqual(await dumpDerived(await reference('resume-reference')));
  });
});
