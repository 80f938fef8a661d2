/**
 * The demonstration end to end, on its own devnet: a short grid-connected run (two intervals
 * without trades, two with), with every real part (anvil, aedes, Modbus TCP plant, oracles,
 * relayer, libp2p agents, SQLite index, GraphQL). Then the dashboard in headless Chromium.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../chain/logger/index.js';
import { createDemo, type Demo, type DemoSummary, type IntervalReport } from './index.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
/** Explicit ports for this file (ServerTCP given 0 would listen on 502). */
const BASE = 21_000 + (process.pid % 200) * 30;

let demo: Demo;
let dir: string;
let summary: DemoSummary;
let reports: IntervalReport[];
let dashboard: { first: number; later: number } | string | undefined;

async function graphql<T>(query: string, variables: Record<string, unknown> = {}): Promise<T> {
  const response = await fetch(`${demo.httpUrl}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ query, variables }),
  });
  const body = (await response.json()) as { data?: T; errors?: { message: string }[] };
  if (!body.data) throw new Error(`GraphQL answered ${response.status}: ${JSON.stringify(body.errors)}`);
  return body.data;
}

/**
 * Opens the dashboard while the demo runs and watches it: the first settled interval it shows,
 * then a later one, without reloading. Returns why it did not run when there is no browser.
 */
async function watchDashboard(): Promise<{ first: number; later: number } | string> {
  if (!existsSync(CHROMIUM))
    return `no Chromium at ${CHROMIUM} (apt-get install chromium, or set CHROMIUM_PATH)`;
  const { chromium } = await import('playwright-core');
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox'] });
  try {
    const page = await browser.newPage();
    await page.goto(`${demo.httpUrl}/`);
    await page.waitForSelector('#status[data-refreshes]', { timeout: 20_000 });
    const settled = page.locator('#latest-settled');
    await page.waitForFunction(
      () => document.getElementById('latest-settled')?.dataset.interval !== '',
      null,
      {
        timeout: 120_000,
      },
    );
    const first = Number(await settled.getAttribute('data-interval'));
    await page.waitForFunction(
      (n) => Number(document.getElementById('latest-settled')?.dataset.interval ?? 0) > n,
      first,
      { timeout: 120_000 },
    );
    const later = Number(await settled.getAttribute('data-interval'));
    const errors = await page.locator('#error').textContent();
    if (errors) throw new Error(`the dashboard shows an error: ${errors}`);
    const rows = await page.locator('#settlements tr').count();
    if (rows === 0) throw new Error('the dashboard shows a settled interval but no settlement rows');
    return { first, later };
  } finally {
    await browser.close();
  }
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'gridcell-demo-'));
  const lines: string[] = [];
  demo = await createDemo({
    scenarios: ['grid-connected'],
    intervals: 2,
    speed: 120,
    realTime: false,
    httpPort: 0,
    anvilPort: BASE,
    modbusBasePort: BASE + 1,
    dataDir: dir,
    seed: 7,
    startHour: 8,
    out: (text) => {
      lines.push(text);
      if (process.env.GRIDCELL_TEST_LOG) process.stdout.write(text);
    },
    logger: createLogger({ name: 'demo-test', level: process.env.GRIDCELL_TEST_LOG ? 'info' : 'error' }),
  });
  const watching = watchDashboard().catch((error: unknown) => `failed: ${(error as Error).message}`);
  summary = await demo.run();
  reports = demo.reports();
  dashboard = await watching;
  if (!summary.ok) throw new Error(`the demo's summary failed:\n${lines.join('')}`);
}, 240_000);

afterAll(async () => {
  await demo?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('gridcell demo, scenario 1 (grid-connected, without then with trades)', () => {
  it('reports every planned interval and trades in the trading phase', () => {
    expect(reports.map((r) => r.scenario)).toEqual([
      '1 grid-connected, no trades',
      '1 grid-connected, no trades',
      '1 grid-connected, trading',
      '1 grid-connected, trading',
    ]);
    expect(reports.slice(0, 2).every((r) => r.orders === 0)).toBe(true);
    const traded = reports.slice(2).filter((r) => r.volumeWh > 0n);
    expect(traded.length, 'intervals of the trading phase with a clearing volume').toBeGreaterThan(0);
  });

  it('cleared every interval that had orders before its delivery started', () => {
    for (const r of reports.filter((x) => x.orders > 0)) {
      expect(r.cleared, `interval ${r.interval} cleared`).toBe(true);
      expect(r.clearedBeforeDelivery, `interval ${r.interval}: seconds before delivery`).toBeGreaterThan(0n);
    }
  });

  it('settled every delivered Wh: each scheduled cell at min(metered, scheduled)', () => {
    for (const r of reports) {
      expect(r.positionsSettled, `interval ${r.interval}: settled positions`).toBe(r.scheduledCells);
      for (const c of r.cells.filter((x) => x.scheduledWh !== 0n)) {
        const metered = c.meteredWh ?? 0n;
        const delivered = c.scheduledWh > 0n ? metered : -metered;
        const scheduled = c.scheduledWh > 0n ? c.scheduledWh : -c.scheduledWh;
        const expected = delivered <= 0n ? 0n : delivered < scheduled ? delivered : scheduled;
        expect(c.settledWh, `interval ${r.interval}, ${c.name}: settled Wh (metered ${metered})`).toBe(
          expected,
        );
      }
    }
    expect(summary.energySettledWh).toBeGreaterThan(0n);
  });

  it('conserved money to the token unit and energy to the watt-second', () => {
    for (const r of reports) expect(r.buyersPaid, `interval ${r.interval}`).toBe(r.sellersReceived);
    for (const check of summary.checks) expect(check.ok, `${check.name}: ${check.detail}`).toBe(true);
    expect(summary.moneyMoved).toBeGreaterThan(0n);
  });

  it('reports over GraphQL the same prices, volumes and payments as the chain', async () => {
    const traded = reports.filter((r) => r.orders > 0);
    const gte = Number(traded[0]?.interval ?? 0n);
    const lte = Number(traded.at(-1)?.interval ?? 0n);
    type Answer = {
      intervals: { nodes: { interval: number; price: string; volumeWh: string; status: string }[] };
      settlements: { nodes: { interval: number; side: 'BUY' | 'SELL'; amount: string; meteredWh: string }[] };
    };
    const query = `query ($gte: Int!, $lte: Int!) {
      intervals(first: 100, where: { intervalGte: $gte, intervalLte: $lte }, orderBy: { field: INTERVAL, direction: ASC }) {
        nodes { interval price volumeWh status }
      }
      settlements(first: 100, where: { intervalGte: $gte, intervalLte: $lte }) { nodes { interval side amount meteredWh } }
    }`;
    const expected = traded.map((r) => ({
      interval: Number(r.interval),
      price: r.price.toString(),
      volumeWh: r.volumeWh.toString(),
      status: 'settled',
      paid: r.buyersPaid.toString(),
      received: r.sellersReceived.toString(),
    }));
    let received: typeof expected = [];
    const deadline = Date.now() + 30_000;
    for (;;) {
      const answer = await graphql<Answer>(query, { gte, lte });
      received = answer.intervals.nodes.map((i) => {
        const of = (side: 'BUY' | 'SELL') =>
          answer.settlements.nodes
            .filter((s) => s.interval === i.interval && s.side === side)
            .reduce((a, s) => a + BigInt(s.amount), 0n)
            .toString();
        return { ...i, paid: of('BUY'), received: of('SELL') };
      });
      if (JSON.stringify(received) === JSON.stringify(expected) || Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 500));
    }
    expect(received).toEqual(expected);
  });

  it('shows the dashboard in headless Chromium: a settled interval, then a later one, live', (context) => {
    if (typeof dashboard === 'string' && dashboard.startsWith('no Chromium')) {
      console.warn(`dashboard test skipped: ${dashboard}`);
      context.skip();
      return;
    }
    expect(typeof dashboard, `dashboard watch: ${String(dashboard)}`).toBe('object');
    const seen = dashboard as { first: number; later: number };
    expect(seen.later).toBeGreaterThan(seen.first);
  });
});
