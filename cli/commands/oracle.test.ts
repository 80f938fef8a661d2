import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { generatePrivateKey } from 'viem/accounts';
import { afterEach, describe, expect, it } from 'vitest';
import { chainClock } from '../../chain/clock/index.js';
import { openKeystore } from '../../chain/keystore/index.js';
import { useKit } from '../../chain/test/kit.js';
import { waitFor } from '../../chain/test/waitFor.js';
import { CellType } from '../../chain/units/index.js';
import { startSunSpecMeterServer } from '../../grid/devices/sunspecMeterServer.js';
import { startMqttBroker } from '../../oracle/broker/index.js';
import { parseReadingMessage, type ReadingMessage, topics } from '../../oracle/messages/index.js';

const kit = useKit();
const L = kit.manifest.pool.intervalSeconds;
const bin = join(import.meta.dirname, '..', '..', 'bin', 'gridcell.js');
/** Explicit Modbus port for this file (ServerTCP given 0 would listen on 502). */
const PORT = 15_800 + (process.pid % 90);
/** A daemon started as its own process may take a while on a loaded machine. */
const PROCESS_MS = 30_000;
const cheapScrypt = { n: 1 << 10, r: 8, p: 1 };

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function runOracle(config: string) {
  const child = spawn(process.execPath, [bin, 'oracle', '--config', config, '--manifest', kit.manifestPath], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, GRIDCELL_PASSWORD: 'pw' },
  });
  let log = '';
  child.stdout.on('data', (c: Buffer) => {
    log += c.toString();
  });
  child.stderr.on('data', (c: Buffer) => {
    log += c.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  cleanups.push(async () => {
    if (child.exitCode === null) {
      child.kill('SIGKILL');
      await exited;
    }
  });
  return { child, exited, log: () => log };
}

describe('gridcell oracle, as a process', () => {
  it('reads a meter from its config, publishes signed readings, and says offline when stopped', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gridcell-oracle-cli-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const cell = await kit.newCell(CellType.Prosumer);
    // The kit's cell has a meter key; this test's key is a keystore file the daemon unlocks.
    const keystore = openKeystore(join(dir, 'keys'));
    const meterKey = generatePrivateKey();
    const stored = await keystore.add('meter', meterKey, 'pw', cheapScrypt);
    const owner = cell.owner;
    await kit.write(owner, {
      address: kit.manifest.contracts.registry,
      abi: (await import('../../chain/abi/contracts.generated.js')).cellRegistryAbi,
      functionName: 'addMeter',
      args: [cell.id, stored.address],
    });
    const clock = chainClock(kit.publicClient);
    const meter = await startSunSpecMeterServer({ port: PORT, profile: () => 1200, clock });
    cleanups.push(() => meter.close());
    const broker = await startMqttBroker({ port: 0 });
    cleanups.push(() => broker.close());
    const sub = await mqtt.connectAsync(broker.url);
    cleanups.push(() => sub.endAsync(true));
    const readings: ReadingMessage[] = [];
    const statuses: string[] = [];
    const telemetry: { at: number; exportCumWh: string }[] = [];
    sub.on('message', (topic, payload) => {
      if (topic.includes('/status/')) statuses.push(JSON.parse(payload.toString()).state);
      if (topic.includes('/telemetry/')) telemetry.push(JSON.parse(payload.toString()));
      const parsed = parseReadingMessage(payload);
      if (parsed.ok) readings.push(parsed.value);
    });
    await sub.subscribeAsync(
      [topics.allReadings('z1'), topics.allTelemetry('z1'), topics.oracleStatus('z1', 'cli')],
      {
        qos: 1,
      },
    );

    const config = join(dir, 'oracle.json');
    writeFileSync(
      config,
      JSON.stringify({
        id: 'cli',
        zone: 'z1',
        mqttUrl: broker.url,
        database: join(dir, 'oracle.sqlite'),
        keystore: join(dir, 'keys'),
        clock: 'chain',
        sampleMs: 100,
        telemetryMs: 100,
        meters: [
          {
            name: 'main',
            key: 'meter',
            cell: cell.id.toString(),
            source: { type: 'modbus', host: '127.0.0.1', port: PORT },
          },
        ],
      }),
    );
    const t = (await kit.chainTime()) / L + 1n;
    await kit.setChainTime(t * L);
    const oracle = runOracle(config);
    await waitFor('the meter configured', () => oracle.log().includes('meter configured'), PROCESS_MS);
    // Live telemetry shows the first sample was taken at the interval's start.
    await waitFor(
      'telemetry of a first sample',
      () => telemetry.find((m) => BigInt(m.at) === t * L),
      PROCESS_MS,
    );
    await kit.setChainTime((t + 1n) * L + 1n);
    const [message] = await waitFor('a reading', () => readings.length > 0 && readings, PROCESS_MS);
    expect(message?.reading).toMatchObject({
      meter: stored.address,
      cell: cell.id,
      interval: t,
      exportWh: 300n,
    });
    oracle.child.kill('SIGTERM');
    expect(await oracle.exited).toBe(0);
    await waitFor('offline status', () => statuses.at(-1) === 'offline', PROCESS_MS);
    expect(oracle.log()).toMatch(/SIGTERM: stopping/);
  });

  it('error: refuses to start when the meter key is not registered to the configured cell', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gridcell-oracle-cli-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const cell = await kit.newCell(CellType.Prosumer);
    await openKeystore(join(dir, 'keys')).add('stranger', generatePrivateKey(), 'pw', cheapScrypt);
    const config = join(dir, 'oracle.json');
    writeFileSync(
      config,
      JSON.stringify({
        id: 'cli2',
        keystore: join(dir, 'keys'),
        database: join(dir, 'oracle.sqlite'),
        meters: [
          {
            name: 'main',
            key: 'stranger',
            cell: cell.id.toString(),
            source: { type: 'modbus', host: '127.0.0.1', port: PORT },
          },
        ],
      }),
    );
    const oracle = runOracle(config);
    expect(await oracle.exited).toBe(1);
    expect(oracle.log()).toMatch(
      /key 0x[0-9a-fA-F]{40} is not registered to any cell, the config says cell \d+/,
    );
    expect(oracle.log()).toMatch(/gridcell cells add-meter/);

    writeFileSync(
      config,
      JSON.stringify({ id: 'x', meters: [{ name: 'm', key: 'k', cell: 'one', source: { type: 'serial' } }] }),
    );
    const bad = runOracle(config);
    expect(await bad.exited).toBe(1);
    expect(bad.log()).toMatch(/the oracle config .* is invalid/);
    expect(bad.log()).toMatch(/meters\.0\.cell/);
  });
});
