/**
 * gridcell's indexer beside Ponder on one anvil chain with many pool events: time until
 * ready, then the latency of the same GraphQL question asked of both.
 *
 *   npx tsx bench/indexer/run.ts [--orders 100000] [--queries 500] [--skip-ponder]
 *                                [--postgres postgres://...] [--out FILE] [--state FILE]
 *
 * --state FILE keeps the generated chain (anvil's state, with the manifest and a summary
 * beside it) and reuses it on the next run with the same FILE: generating 100,000 signed
 * orders takes minutes.
 *
 * Both run as their own processes, started after the chain is complete: `gridcell serve
 * --index` (SQLite file, or --postgres) and `ponder start` (PGlite, or --postgres), with
 * Ponder's telemetry off. "Ready" is each one's readiness endpoint answering 200 (gridcell:
 * indexed up to the head; Ponder: historical indexing done). Results go to stdout as a
 * Markdown table and, with --out, as JSON.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { abiHash, cellRegistryAbi, clearingPoolAbi } from '../../chain/abi/contracts.generated.js';
import { defaultChannelParameters, defaultPoolParameters, startDevnet } from '../../chain/devnet/index.js';
import { readManifest } from '../../chain/manifest/index.js';
import { openDatabase } from '../../indexer/database/index.js';
import { type GeneratedChain, generateChain } from './generateChain.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const ponderApp = join(root, 'bench/ponder-app');

const options = z
  .object({
    orders: z.coerce.number().int().positive().default(100_000),
    queries: z.coerce.number().int().positive().default(500),
    'skip-ponder': z.boolean().default(false),
    postgres: z.string().url().optional(),
    out: z.string().optional(),
    port: z.coerce.number().int().default(18_950),
    state: z.string().optional(),
  })
  .parse(
    parseArgs({
      options: {
        orders: { type: 'string' },
        queries: { type: 'string' },
        'skip-ponder': { type: 'boolean' },
        postgres: { type: 'string' },
        out: { type: 'string' },
        port: { type: 'string' },
        state: { type: 'string' },
      },
    }).values,
  );

const log = (line: string) => process.stderr.write(`bench: ${line}\n`);
const children: ChildProcess[] = [];
const work = mkdtempSync(join(tmpdir(), 'gridcell-bench-'));

function start(name: string, command: string, args: string[], cwd: string, env: NodeJS.ProcessEnv) {
  const child = spawn(command, args, {
    cwd,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let output = '';
  const keep = (c: Buffer) => {
    output = (output + c.toString()).slice(-20_000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  child.once('exit', (code) => {
    if (code !== 0 && code !== null) log(`${name} exited with ${code}:\n${output.slice(-3000)}`);
  });
  return { child, output: () => output };
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}

/** Polls `url` until it answers 200 and `accept(body)` holds; returns the seconds since `since`. */
async function readyAfter(
  url: string,
  since: number,
  child: ChildProcess,
  accept: (body: string) => boolean,
  timeoutMs = 1_800_000,
): Promise<number> {
  const deadline = since + timeoutMs;
  while (performance.now() < deadline) {
    if (child.exitCode !== null)
      throw new Error(`the process exited (${child.exitCode}) before ${url} was ready`);
    try {
      const response = await fetch(url);
      const body = await response.text();
      if (response.status === 200 && accept(body)) return (performance.now() - since) / 1000;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${url} not ready after ${timeoutMs} ms`);
}

async function post(url: string, query: string, variables: Record<string, unknown>) {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ query, variables }),
  });
  const body = (await response.json()) as { data?: unknown; errors?: { message: string }[] };
  if (body.errors) throw new Error(`${url}: ${body.errors[0]?.message}`);
  return body.data;
}

function quantile(sorted: number[], q: number): number {
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[i] ?? Number.NaN;
}

interface Latency {
  p50: number;
  p95: number;
  mean: number;
}

interface Asker {
  url: string;
  query: string;
  variables: (i: number) => Record<string, unknown>;
  check: (data: unknown) => void;
}

/** Asks every server the same sequence of questions, one after the other in turn. */
async function latency(askers: Record<string, Asker>): Promise<Record<string, Latency>> {
  const entries = Object.entries(askers);
  const times = new Map<string, number[]>(entries.map(([name]) => [name, []]));
  for (let i = 0; i < 50 + options.queries; i++) {
    for (const [name, a] of entries) {
      const t = performance.now();
      const data = await post(a.url, a.query, a.variables(i));
      const elapsed = performance.now() - t;
      a.check(data);
      if (i >= 50) times.get(name)?.push(elapsed);
    }
  }
  const out: Record<string, Latency> = {};
  for (const [name, list] of times) {
    list.sort((a, b) => a - b);
    out[name] = {
      p50: quantile(list, 0.5),
      p95: quantile(list, 0.95),
      mean: list.reduce((a, b) => a + b, 0) / list.length,
    };
  }
  return out;
}

function preparePonderApp(): string {
  if (!existsSync(join(ponderApp, 'node_modules/ponder'))) {
    log('installing Ponder into bench/ponder-app (npm ci)');
    execFileSync('npm', ['ci', '--no-audit', '--no-fund'], { cwd: ponderApp, stdio: 'inherit' });
  }
  const dir = join(work, 'ponder');
  mkdirSync(join(dir, 'src/api'), { recursive: true });
  cpSync(join(ponderApp, 'ponder.config.js'), join(dir, 'ponder.config.js'));
  cpSync(join(ponderApp, 'ponder.schema.js'), join(dir, 'ponder.schema.ts'));
  cpSync(join(ponderApp, 'src/index.js'), join(dir, 'src/index.js'));
  cpSync(join(ponderApp, 'src/api/index.js'), join(dir, 'src/api/index.ts'));
  cpSync(join(ponderApp, 'package.json'), join(dir, 'package.json'));
  symlinkSync(join(ponderApp, 'node_modules'), join(dir, 'node_modules'));
  // gridcell's generated ABIs, written as a module for the Ponder config (not copied by hand).
  writeFileSync(
    join(dir, 'abis.js'),
    `export const cellRegistryAbi = ${JSON.stringify(cellRegistryAbi)};\nexport const clearingPoolAbi = ${JSON.stringify(clearingPoolAbi)};\n`,
  );
  return dir;
}

interface ChainSummary {
  orders: number;
  intervals: string[];
  firstBlock: string;
  lastBlock: string;
}

/** Generates the chain, or reloads the one kept in --state. */
async function prepareChain(manifestPath: string): Promise<GeneratedChain> {
  const summaryPath = options.state ? `${options.state}.summary.json` : undefined;
  if (options.state && summaryPath && existsSync(options.state) && existsSync(summaryPath)) {
    const summary = JSON.parse(readFileSync(summaryPath, 'utf8')) as ChainSummary;
    // With other contracts than the kept chain's, the devnet would deploy them again beside it
    // and the indexers would index an empty pool (and the kept manifest would name it).
    const kept = existsSync(manifestPath) ? readManifest(manifestPath) : undefined;
    if (kept?.abiHash !== abiHash) {
      throw new Error(
        `the chain kept in ${options.state} was made with other contracts (ABI hash ${kept?.abiHash ?? 'unknown: no manifest'}, these are ${abiHash}): delete ${options.state} and its .manifest.json and .summary.json to generate it again`,
      );
    }
    log(`reloading the chain kept in ${options.state} (${summary.orders} orders)`);
    const devnet = await startDevnet({
      port: options.port,
      stateFile: options.state,
      pool: { ...defaultPoolParameters, maxOrdersPerInterval: 1200n },
      channels: defaultChannelParameters,
      manifestPath,
    });
    if (devnet.manifest.contracts.pool !== kept.contracts.pool) {
      await devnet.stop();
      throw new Error(
        `the chain kept in ${options.state} did not bring back its pool ${kept.contracts.pool} (the devnet deployed ${devnet.manifest.contracts.pool}): delete the kept files to generate it again`,
      );
    }
    return {
      devnet,
      orders: summary.orders,
      intervals: summary.intervals.map(BigInt),
      firstBlock: BigInt(summary.firstBlock),
      lastBlock: BigInt(summary.lastBlock),
    };
  }
  log(`generating ${options.orders} pool events on anvil (port ${options.port})`);
  const chain = await generateChain({
    port: options.port,
    manifestPath,
    orders: options.orders,
    log,
    ...(options.state ? { stateFile: options.state } : {}),
  });
  if (summaryPath) {
    const summary: ChainSummary = {
      orders: chain.orders,
      intervals: chain.intervals.map(String),
      firstBlock: String(chain.firstBlock),
      lastBlock: String(chain.lastBlock),
    };
    writeFileSync(summaryPath, `${JSON.stringify(summary)}\n`);
  }
  return chain;
}

async function main() {
  const manifestPath = options.state
    ? resolve(`${options.state}.manifest.json`)
    : join(work, 'deployment.json');
  const t0 = performance.now();
  const chain = await prepareChain(manifestPath);
  log(
    `chain ready in ${((performance.now() - t0) / 1000).toFixed(0)} s: blocks ${chain.firstBlock}-${chain.lastBlock}, ${chain.intervals.length} intervals`,
  );
  const head = Number(chain.lastBlock);
  const intervals = chain.intervals.map(Number);
  const pick = (i: number) => intervals[(i * 7919) % intervals.length] as number;
  const results: Record<string, unknown> = {
    machine: {
      cpu: cpus()[0]?.model,
      cores: cpus().length,
      memoryGiB: Math.round(totalmem() / 2 ** 30),
      node: process.version,
    },
    orders: chain.orders,
    blocks: head - Number(chain.firstBlock),
    database: options.postgres ? 'postgresql' : 'gridcell: SQLite file, Ponder: PGlite',
  };

  try {
    // ---- gridcell
    const gridcellPort = options.port + 1;
    const database = options.postgres ?? join(work, 'gridcell.sqlite');
    const since = performance.now();
    const gridcell = start(
      'gridcell',
      process.execPath,
      [
        join(root, 'bin/gridcell.js'),
        'serve',
        '--index',
        '--manifest',
        manifestPath,
        '--database',
        database,
        '--finality-depth',
        '0',
        '--port',
        String(gridcellPort),
      ],
      root,
      {},
    );
    const gridcellReady = await readyAfter(
      `http://127.0.0.1:${gridcellPort}/ready`,
      since,
      gridcell.child,
      (body) => (JSON.parse(body) as { indexedBlock: number }).indexedBlock >= head,
    );
    log(`gridcell ready in ${gridcellReady.toFixed(2)} s`);
    const reader = await openDatabase({ url: database, readonly: !options.postgres });
    const [count] = await reader.all<{ n: number }>('SELECT COUNT(*) AS "n" FROM "orders"');
    await reader.close();
    if (Number(count?.n) !== chain.orders)
      throw new Error(`gridcell indexed ${count?.n} orders of ${chain.orders}`);
    const gridcellQuery = `query ($t: Int!) {
      orders(first: 100, where: { interval: $t }) { nodes { cellId nonce side energyWh limitPrice } }
    }`;
    const askGridcell: Asker = {
      url: `http://127.0.0.1:${gridcellPort}/graphql`,
      query: gridcellQuery,
      variables: (i) => ({ t: pick(i) }),
      check: (data) => {
        const n = (data as { orders: { nodes: unknown[] } }).orders.nodes.length;
        if (n !== 100) throw new Error(`gridcell answered ${n} orders, expected 100`);
      },
    };
    results.gridcell = {
      readySeconds: gridcellReady,
      query: gridcellQuery,
    };
    const askers: Record<string, Asker> = { gridcell: askGridcell };

    // ---- Ponder
    if (!options['skip-ponder']) {
      const dir = preparePonderApp();
      const ponderPort = options.port + 2;
      const ponderSince = performance.now();
      const ponder = start(
        'ponder',
        process.execPath,
        [
          join(ponderApp, 'node_modules/ponder/dist/esm/bin/ponder.js'),
          'start',
          '--config',
          'ponder.config.js',
          '--port',
          String(ponderPort),
          '--schema',
          'bench',
        ],
        dir,
        {
          PONDER_TELEMETRY_DISABLED: 'true',
          BENCH_MANIFEST: manifestPath,
          DATABASE_URL: options.postgres ?? '',
        },
      );
      try {
        const ponderReady = await readyAfter(
          `http://127.0.0.1:${ponderPort}/ready`,
          ponderSince,
          ponder.child,
          () => true,
        );
        log(`ponder ready in ${ponderReady.toFixed(2)} s`);
        const ponderQuery = `query ($t: BigInt!) {
          orderss(where: { interval: $t }, limit: 100, orderBy: "cellId") { items { cellId nonce side energyWh limitPrice } }
        }`;
        const total = (await post(
          `http://127.0.0.1:${ponderPort}/graphql`,
          '{ orderss(limit: 1) { totalCount } }',
          {},
        )) as {
          orderss: { totalCount: number };
        };
        if (total.orderss.totalCount !== chain.orders) {
          throw new Error(`ponder indexed ${total.orderss.totalCount} orders of ${chain.orders}`);
        }
        askers.ponder = {
          url: `http://127.0.0.1:${ponderPort}/graphql`,
          query: ponderQuery,
          variables: (i) => ({ t: String(pick(i)) }),
          check: (data) => {
            const n = (data as { orderss: { items: unknown[] } }).orderss.items.length;
            if (n !== 100) throw new Error(`ponder answered ${n} orders, expected 100`);
          },
        };
        results.ponder = {
          readySeconds: ponderReady,
          log: ponder.output().match(/Completed backfill indexing.*/)?.[0],
          query: ponderQuery,
        };
      } catch (error) {
        results.ponder = { error: (error as Error).message, output: ponder.output().slice(-4000) };
        log(`ponder failed: ${(error as Error).message}\n${ponder.output().slice(-4000)}`);
      }
    }
    // Both servers up: the same questions, alternating, so that load on the machine hits both alike.
    const measured = await latency(askers);
    (results.gridcell as Record<string, unknown>).log = gridcell.output().match(/backfill done: .*/)?.[0];
    for (const [name, l] of Object.entries(measured)) {
      (results[name] as Record<string, unknown>).latencyMs = l;
      log(`${name} p50 ${l.p50.toFixed(2)} ms, p95 ${l.p95.toFixed(2)} ms`);
    }
  } finally {
    for (const child of children) await stop(child);
    await chain.devnet.stop();
  }

  const row = (name: string, r: unknown) => {
    const v = r as { readySeconds?: number; latencyMs?: Latency; error?: string } | undefined;
    if (!v) return `| ${name} | not run | | |`;
    if (v.error) return `| ${name} | failed: ${v.error} | | |`;
    return `| ${name} | ${v.readySeconds?.toFixed(2)} s | ${v.latencyMs?.p50.toFixed(2)} ms | ${v.latencyMs?.p95.toFixed(2)} ms |`;
  };
  process.stdout.write(
    [
      `${chain.orders} OrderSubmitted events in ${results.blocks} blocks; ${results.database}`,
      '',
      '| indexer | time until ready | query p50 | query p95 |',
      '|---|---|---|---|',
      row('gridcell', results.gridcell),
      row('Ponder 0.16', results.ponder),
      '',
    ].join('\n'),
  );
  if (options.out) writeFileSync(options.out, `${JSON.stringify(results, null, 2)}\n`);
  rmSync(work, { recursive: true, force: true });
}

main().catch(async (error) => {
  log(`failed: ${(error as Error).stack ?? error}`);
  for (const child of children) await stop(child).catch(() => {});
  process.exitCode = 1;
});
