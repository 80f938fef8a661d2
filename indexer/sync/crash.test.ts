import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { useKit } from '../../chain/test/kit.js';
import { type Database, openDatabase } from '../database/index.js';
import { silentLogger } from '../logger.js';
import { reportSkippedPostgres, testBackends } from '../test/backends.js';
import {
  chainEventKeys,
  databaseEventKeys,
  dumpDerived,
  submitBook,
  testClientFor,
  waitFor,
} from '../test/scenario.js';
import { createIndexer } from './index.js';

const kit = useKit();
const dir = mkdtempSync(join(tmpdir(), 'gridcell-crash-'));
const children: ChildProcess[] = [];
const toClose: Database[] = [];
const backends = testBackends(dir);
reportSkippedPostgres();

afterAll(async () => {
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
  for (const db of toClose) await db.close();
  for (const b of backends) await b.cleanup();
  rmSync(dir, { recursive: true, force: true });
});

function startChild(file: string) {
  const child = spawn(
    process.execPath,
    [
      'bin/gridcell.js',
      'indexer',
      '--manifest',
      kit.manifestPath,
      '--database',
      file,
      '--finality-depth',
      '0',
      '--max-block-range',
      '2',
      '--poll-interval',
      '20',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, DATABASE_URL: '' } },
  );
  children.push(child);
  let output = '';
  child.stdout?.on('data', (c: Buffer) => {
    output += c.toString();
  });
  child.stderr?.on('data', (c: Buffer) => {
    output += c.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, exited, output: () => output };
}

async function checkpointOf(db: Database): Promise<number | undefined> {
  const [row] = await db.all<{ block_number: number }>('SELECT "block_number" FROM "checkpoint"');
  return row ? Number(row.block_number) : undefined;
}

describe.each(backends)('gridcell indexer after kill -9 ($name)', (backend) => {
  const test = backend.available ? it : it.skip;
  test('resumes exactly at its checkpoint: no event missing, none twice', async () => {
    const testClient = testClientFor(kit);
    // A long chain with events spread along it, so the kill lands mid-backfill.
    for (let i = 0; i < 3; i++) {
      await submitBook(kit);
      await testClient.mine({ blocks: 300 });
    }
    const head = Number(await kit.publicClient.getBlockNumber({ cacheTime: 0 }));
    const start = Number(kit.manifest.deploymentBlock);
    const file = await backend.url('crash');

    const first = startChild(file);
    const reader = await waitFor('the database', async () => {
      if (backend.name === 'sqlite' && !existsSync(file)) return undefined;
      const db = await openDatabase({ url: file, readonly: true });
      const tables = await db.all(
        backend.name === 'sqlite'
          ? `SELECT name FROM sqlite_master WHERE name = 'checkpoint'`
          : `SELECT tablename FROM pg_tables WHERE tablename = 'checkpoint'`,
      );
      if (tables.length === 0) {
        await db.close();
        return undefined;
      }
      return db;
    });
    toClose.push(reader);
    const killedAt = await waitFor(
      'a quarter of the backfill',
      async () => {
        const cp = await checkpointOf(reader);
        return cp !== undefined && cp >= start + (head - start) / 4 ? cp : undefined;
      },
      60_000,
    );
    first.child.kill('SIGKILL');
    expect(await first.exited).toBeNull();
    const afterKill = await checkpointOf(reader);
    expect(afterKill).toBeGreaterThanOrEqual(killedAt);
    expect(afterKill, 'killed before the backfill finished').toBeLessThan(head);

    const second = startChild(file);
    await waitFor(
      'the restart to reach the head',
      async () => ((await checkpointOf(reader)) ?? 0) >= head,
      60_000,
    );
    second.child.kill('SIGTERM');
    expect(await second.exited).toBe(0);
    expect(second.output()).toMatch(
      new RegExp(`indexing chain \\d+ into .* from block ${(afterKill ?? 0) + 1}`),
    );
    expect(second.output()).toMatch(/SIGTERM: finishing the current step/);

    const indexedHead = (await checkpointOf(reader)) ?? 0;
    expect(await databaseEventKeys(reader)).toEqual(await chainEventKeys(kit, BigInt(indexedHead)));

    // The same derived state as one uninterrupted run.
    const reference = await openDatabase({ url: await backend.url('reference') });
    toClose.push(reference);
    const indexer = createIndexer({
      publicClient: kit.publicClient,
      manifest: kit.manifest,
      db: reference,
      logger: silentLogger,
      finalityDepth: 0,
      pollIntervalMs: 20,
    });
    await indexer.start();
    await waitFor('the reference index', () => (indexer.status().indexedBlock ?? 0) >= indexedHead);
    await indexer.stop();
    expect(await dumpDerived(reader)).toEqual(await dumpDerived(reference));
  }, 180_000); // its own waits allow 60 s for each of the two backfills; a loaded CI machine needs them
});
