import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { bytesToHex, domainSeparator, hexToBytes } from 'viem';
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts';
import { afterEach, describe, expect, it } from 'vitest';
import type { Clock } from '../../chain/clock/index.js';
import { silentLogger } from '../../chain/logger/index.js';
import { waitFor } from '../../chain/test/waitFor.js';
import { gridcellDomain, hashMeterReading, recoverMeterReadingSigner } from '../../chain/typed-data/index.js';
import { startSunSpecMeterServer } from '../../grid/devices/sunspecMeterServer.js';
import { parseReadingMessage, type ReadingMessage, topics } from '../messages/index.js';
import { createMetrics, type Metrics } from '../metrics/index.js';
import { readingDigest } from '../signing/readingSigner.js';
import { openOracleStore } from '../store/oracleStore.js';
import { BROKER_KINDS, MOSQUITTO_BINARY, startTestBroker, type TestBroker } from '../test/brokers.js';
import { SOCAT_BINARY, startSerialLine } from '../test/serialLine.js';
import { createOracle, type Oracle, type SourceSpec } from './createOracle.js';

/** Explicit Modbus ports for this file (ServerTCP given 0 would listen on 502). */
const PORT = 15_000 + (process.pid % 400) * 2;
const L = 900n;
const T0 = 2_000_000n * L; // an interval boundary
const poolDomain = gridcellDomain(31337, '0x00000000000000000000000000000000000000aa');
const channelsDomain = gridcellDomain(31337, '0x00000000000000000000000000000000000000bb');

function manualClock(start: bigint) {
  let t = start;
  const clock: Clock = { now: async () => t };
  return { clock, set: (s: bigint) => (t = s), get: () => t };
}

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A subscriber that collects every reading the oracle publishes, keyed by interval. */
async function collector(url: string) {
  const client: MqttClient = await mqtt.connectAsync(url, { reconnectPeriod: 200 });
  const received: ReadingMessage[] = [];
  client.on('message', (_topic, payload) => {
    const parsed = parseReadingMessage(payload);
    if (parsed.ok) received.push(parsed.value);
  });
  await client.subscribeAsync(topics.allReadings('z1'), { qos: 1 });
  cleanups.push(() => client.endAsync(true));
  return { client, received };
}

interface Setup {
  oracle: Oracle;
  metrics: Metrics;
  dbPath: string;
}

function setupOracle(parameters: {
  dir: string;
  broker: { url: string };
  clock: Clock;
  meterKey: `0x${string}`;
  source: SourceSpec;
  limits?: { maxImportW: bigint; maxExportW: bigint };
}): Setup {
  const dbPath = join(parameters.dir, 'oracle.sqlite');
  const metrics = createMetrics('gridcell_oracle');
  const oracle = createOracle({
    id: 'test',
    zone: 'z1',
    meters: [
      {
        name: 'm1',
        account: privateKeyToAccount(parameters.meterKey),
        cell: 7n,
        source: parameters.source,
        limits: parameters.limits ?? { maxImportW: 20_000n, maxExportW: 20_000n },
      },
    ],
    store: openOracleStore(dbPath),
    mqttUrl: parameters.broker.url,
    clock: parameters.clock,
    intervalSeconds: L,
    chainId: 31337,
    poolDomain,
    channelsDomain,
    logger: silentLogger,
    metrics,
    sampleMs: 3_600_000, // the test drives tick() itself
    telemetryMs: 0,
  });
  return { oracle, metrics, dbPath };
}

function tempDir() {
  const dir = mkdtempSync(join(tmpdir(), 'gridcell-oracle-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

describe('reading signer', () => {
  it('computes the same EIP-712 digest as viem for any reading', () => {
    const reading = {
      meter: privateKeyToAccount(generatePrivateKey()).address,
      cell: 2n ** 200n + 3n,
      interval: 2n ** 63n + 1n,
      importWh: 123n,
      exportWh: 2n ** 64n - 1n,
      importCumWh: 99n,
      exportCumWh: 2n ** 40n,
      seq: 7n,
    };
    for (const domain of [poolDomain, channelsDomain]) {
      const digest = readingDigest(hexToBytes(domainSeparator({ domain })), reading);
      expect(bytesToHex(digest)).toBe(hashMeterReading(domain, reading));
    }
  });
});

// What a machine without the Debian packages skips, said once (as the indexer's PostgreSQL tests do).
if (!MOSQUITTO_BINARY)
  process.stderr.write(
    'oracle tests: mosquitto is not installed (apt-get install mosquitto): run against aedes only\n',
  );
if (!SOCAT_BINARY)
  process.stderr.write(
    'oracle tests: socat is not installed (apt-get install socat): the Modbus RTU test is skipped\n',
  );

describe('meter oracle over Modbus RTU on a serial line (two ptys joined by socat)', () => {
  it.skipIf(SOCAT_BINARY === undefined)(
    'signs readings of a SunSpec meter on RTU; a meter gone silent is marked stale, and read again when it answers',
    async () => {
      const dir = tempDir();
      const line = await startSerialLine();
      cleanups.push(() => line.close());
      const b = await startTestBroker('aedes');
      cleanups.push(() => b.close());
      const time = manualClock(T0);
      const serial = { path: line.meterEnd, baudRate: 19_200 };
      // 3.6 kW export: 900 Wh per interval.
      let meterServer = await startSunSpecMeterServer({ serial, profile: () => 3600, clock: time.clock });
      const key = generatePrivateKey();
      const { oracle, metrics } = setupOracle({
        dir,
        broker: b,
        clock: time.clock,
        meterKey: key,
        source: { type: 'modbus-rtu', path: line.oracleEnd, baudRate: 19_200, timeoutMs: 500 },
      });
      const sub = await collector(b.url);
      await oracle.start();
      cleanups.push(() => oracle.stop());
      for (let k = 1n; k <= 2n; k++) {
        time.set(T0 + k * L + 5n);
        await oracle.tick();
      }
      await waitFor('two readings', () => sub.received.length >= 2);
      const signer = privateKeyToAccount(key).address;
      for (const message of sub.received) {
        expect(await recoverMeterReadingSigner(poolDomain, message.reading, message.signatures.pool)).toBe(
          signer,
        );
      }
      const sorted = () => sub.received.map((m) => m.reading).sort((x, y) => Number(x.interval - y.interval));
      expect(sorted().map((r) => r.exportWh)).toEqual([905n, 900n]);

      // The meter goes silent (its server closes the port): no answer within the timeout.
      const counters = await meterServer.counters();
      await meterServer.close();
      time.set(T0 + 2n * L + 100n);
      await oracle.tick();
      expect(oracle.status().meters[0]).toMatchObject({ stale: true });
      expect(oracle.status().meters[0]?.reason).toMatch(
        new RegExp(`modbus rtu ${line.oracleEnd} unit 1: .*timed out`, 'i'),
      );
      expect(metrics.get('meter_errors', { meter: 'm1', kind: 'modbus' })).toBe(1);

      // It answers again, its counters where they were: the next interval is read and signed.
      meterServer = await startSunSpecMeterServer({
        serial,
        profile: () => 3600,
        clock: time.clock,
        initialExportWh: counters.exportWh,
      });
      cleanups.push(() => meterServer.close());
      time.set(T0 + 3n * L + 5n);
      await oracle.tick();
      expect(oracle.status().meters[0]?.stale).toBe(false);
      await waitFor('the third reading', () => sub.received.length >= 3);
      const readings = sorted();
      expect(readings.map((r) => r.interval)).toEqual([2_000_000n, 2_000_001n, 2_000_002n]);
      // The simulator integrates from its restart (T0 + 2L + 100): 900 Wh less the silent 95 s.
      expect(readings[2]?.exportWh).toBe(805n);
      expect(readings[2]?.exportCumWh).toBe((readings[1]?.exportCumWh ?? 0n) + 805n);
    },
  );
});

describe.each(BROKER_KINDS)('meter oracle over Modbus TCP and MQTT, %s broker', (kind) => {
  async function broker(port?: number): Promise<TestBroker> {
    const b = await startTestBroker(kind, port);
    cleanups.push(() => b.close());
    return b;
  }

  it('signs one reading per interval from the counters at its boundaries, under both domains, and publishes it', async () => {
    const dir = tempDir();
    const b = await broker();
    const time = manualClock(T0);
    // 3.6 kW export: 900 Wh per interval.
    const meterServer = await startSunSpecMeterServer({ port: PORT, profile: () => 3600, clock: time.clock });
    cleanups.push(() => meterServer.close());
    const key = generatePrivateKey();
    const { oracle, metrics } = setupOracle({
      dir,
      broker: b,
      clock: time.clock,
      meterKey: key,
      source: { type: 'modbus', host: '127.0.0.1', port: PORT },
    });
    const sub = await collector(b.url);
    await oracle.start();
    cleanups.push(() => oracle.stop());
    for (let k = 1n; k <= 3n; k++) {
      time.set(T0 + k * L + 5n);
      await oracle.tick();
    }
    await waitFor('three readings', () => sub.received.length >= 3);
    const readings = sub.received.map((m) => m.reading).sort((a, b) => Number(a.interval - b.interval));
    expect(readings.map((r) => r.interval)).toEqual([2_000_000n, 2_000_001n, 2_000_002n]);
    expect(readings.map((r) => r.seq)).toEqual([1n, 2n, 3n]);
    // The first interval starts at T0 exactly and ends 5 s late; later ones are sampled 5 s late at both ends.
    expect(readings.map((r) => r.exportWh)).toEqual([905n, 900n, 900n]);
    expect(readings.every((r) => r.importWh === 0n)).toBe(true);
    // Consecutive readings share a boundary: cumulative counters chain without gap or overlap.
    for (const [i, cur] of readings.entries()) {
      if (i > 0) expect(cur.exportCumWh - cur.exportWh).toBe(readings[i - 1]?.exportCumWh);
    }
    const account = privateKeyToAccount(key);
    for (const message of sub.received) {
      expect(message.reading.meter).toBe(account.address);
      expect(await recoverMeterReadingSigner(poolDomain, message.reading, message.signatures.pool)).toBe(
        account.address,
      );
      expect(
        await recoverMeterReadingSigner(channelsDomain, message.reading, message.signatures.channels),
      ).toBe(account.address);
      expect(message.signatures.pool).not.toEqual(message.signatures.channels);
    }
    expect(metrics.get('readings_signed', { meter: 'm1' })).toBe(3);
    await waitFor('acknowledged', () => metrics.get('readings_published') === 3);
  });

  it('loses no reading when the broker dies mid-interval and comes back', async () => {
    const dir = tempDir();
    const first = await startTestBroker(kind);
    const port = first.port;
    const time = manualClock(T0);
    const meterServer = await startSunSpecMeterServer({
      port: PORT + 1,
      profile: (t) => (t % 2 === 0 ? 1000 : -400),
      clock: time.clock,
    });
    cleanups.push(() => meterServer.close());
    const { oracle, metrics, dbPath } = setupOracle({
      dir,
      broker: first,
      clock: time.clock,
      meterKey: generatePrivateKey(),
      source: { type: 'modbus', host: '127.0.0.1', port: PORT + 1 },
    });
    await oracle.start();
    cleanups.push(() => oracle.stop());
    time.set(T0 + L + 1n);
    await oracle.tick();
    await waitFor('first reading acknowledged', () => metrics.get('readings_published') === 1);

    time.set(T0 + L + L / 2n); // mid-interval
    await oracle.tick();
    await first.close();
    await waitFor('oracle sees the broker gone', () => !oracle.status().connected);
    for (let k = 2n; k <= 4n; k++) {
      time.set(T0 + k * L + 1n);
      await oracle.tick();
    }
    expect(oracle.status().unpublished).toBe(3);

    const second = await broker(port);
    const sub = await collector(second.url);
    await waitFor('oracle reconnected', () => oracle.status().connected);
    await oracle.flush();
    await waitFor('all three stored readings arrive', () => sub.received.length >= 3);
    expect(sub.received.map((m) => m.reading.interval).sort()).toEqual([2_000_001n, 2_000_002n, 2_000_003n]);
    expect(oracle.status().unpublished).toBe(0);
    const store = openOracleStore(dbPath);
    cleanups.push(() => store.close());
    expect(store.count()).toEqual({ readings: 4, unpublished: 0 });
  });

  it('does not sign or count an interval twice after a restart, and goes on with the next seq', async () => {
    const dir = tempDir();
    const b = await broker();
    const time = manualClock(T0);
    const meterServer = await startSunSpecMeterServer({
      port: PORT + 2,
      profile: () => -2000,
      clock: time.clock,
    });
    cleanups.push(() => meterServer.close());
    const key = generatePrivateKey();
    const source: SourceSpec = { type: 'modbus', host: '127.0.0.1', port: PORT + 2 };
    const sub = await collector(b.url);

    const a = setupOracle({ dir, broker: b, clock: time.clock, meterKey: key, source });
    await a.oracle.start();
    time.set(T0 + L + 2n);
    await a.oracle.tick();
    await a.oracle.flush();
    await a.oracle.stop();

    // Restarted within the same interval: it resumes from the stored boundary.
    const again = setupOracle({ dir, broker: b, clock: time.clock, meterKey: key, source });
    await again.oracle.start();
    cleanups.push(() => again.oracle.stop());
    await again.oracle.tick();
    time.set(T0 + 2n * L + 2n);
    await again.oracle.tick();
    await again.oracle.flush();
    await waitFor('two readings', () => sub.received.length >= 2);
    expect(again.metrics.get('readings_signed', { meter: 'm1' })).toBe(1);
    const byInterval = new Map(sub.received.map((m) => [m.reading.interval, m.reading]));
    expect([...byInterval.keys()].sort()).toEqual([2_000_000n, 2_000_001n]);
    expect(byInterval.get(2_000_001n)?.seq).toBe(2n);
    expect(byInterval.get(2_000_001n)?.importWh).toBe(500n); // 2 kW for 900 s
    expect(sub.received.length).toBe(2);
  });

  it('error: a meter that stops answering is marked stale and counted, and read again when it is back', async () => {
    const dir = tempDir();
    const b = await broker();
    const time = manualClock(T0);
    let meterServer = await startSunSpecMeterServer({
      port: PORT + 3,
      profile: () => 100,
      clock: time.clock,
    });
    const { oracle, metrics } = setupOracle({
      dir,
      broker: b,
      clock: time.clock,
      meterKey: generatePrivateKey(),
      source: { type: 'modbus', host: '127.0.0.1', port: PORT + 3, timeoutMs: 300 },
    });
    await oracle.start();
    cleanups.push(() => oracle.stop());
    expect(oracle.status().meters[0]?.stale).toBe(false);
    await meterServer.close();
    time.set(T0 + 10n);
    await oracle.tick();
    expect(oracle.status().meters[0]).toMatchObject({ stale: true });
    expect(oracle.status().meters[0]?.reason).toMatch(/cannot connect|failed/);
    expect(metrics.get('meter_errors', { meter: 'm1', kind: 'modbus' })).toBe(1);

    meterServer = await startSunSpecMeterServer({
      port: PORT + 3,
      profile: () => 100,
      clock: time.clock,
      initialExportWh: 0n,
    });
    cleanups.push(() => meterServer.close());
    time.set(T0 + 20n);
    await oracle.tick();
    // The simulator restarted at zero: a reset, not negative energy.
    expect(oracle.status().meters[0]?.stale).toBe(false);
    expect(oracle.status().meters[0]?.last?.exportCumWh).toBeGreaterThanOrEqual(0n);
  });

  it('error: malformed and implausible MQTT meter messages are refused, counted, and change nothing', async () => {
    const dir = tempDir();
    const b = await broker();
    const time = manualClock(T0);
    const { oracle, metrics } = setupOracle({
      dir,
      broker: b,
      clock: time.clock,
      meterKey: generatePrivateKey(),
      source: { type: 'mqtt', topic: 'meter-7' },
      limits: { maxImportW: 10_000n, maxExportW: 10_000n },
    });
    const meter = await mqtt.connectAsync(b.url);
    cleanups.push(() => meter.endAsync(true));
    await oracle.start();
    cleanups.push(() => oracle.stop());
    const topic = topics.meterInput('z1', 'meter-7');
    const send = async (payload: unknown) => {
      await meter.publishAsync(topic, typeof payload === 'string' ? payload : JSON.stringify(payload), {
        qos: 1,
      });
    };

    await send({ v: 1, at: Number(T0), importWh: '1000', exportWh: '50' });
    await waitFor('first sample', async () => {
      await oracle.tick();
      return oracle.status().meters[0]?.last !== undefined;
    });
    await send('{not json');
    await send({ v: 1, at: Number(T0) + 1, importWh: '-5', exportWh: '50' });
    await waitFor('two malformed', () => metrics.get('malformed_input', { meter: 'm1' }) === 2);

    // 10 kW for 60 s is at most 167 Wh; 5000 Wh is not physical.
    time.set(T0 + 60n);
    await send({ v: 1, at: Number(T0) + 60, importWh: '6000', exportWh: '50' });
    await waitFor('implausible refused', async () => {
      await oracle.tick();
      return metrics.get('implausible_samples', { meter: 'm1' }) >= 1;
    });
    expect(oracle.status().meters[0]).toMatchObject({ stale: true });
    expect(oracle.status().meters[0]?.reason).toMatch(/more than the connection limit allows/);
    // Counters going backwards without a wrap.
    time.set(T0 + 120n);
    await send({ v: 1, at: Number(T0) + 120, importWh: '900', exportWh: '50' });
    await waitFor('backwards refused', async () => {
      await oracle.tick();
      return /went back/.test(oracle.status().meters[0]?.reason ?? '');
    });
    expect(oracle.status().meters[0]?.last?.importCumWh).toBe(1000n);

    time.set(T0 + 180n);
    await send({ v: 1, at: Number(T0) + 180, importWh: '1100', exportWh: '50' });
    await waitFor('plausible accepted again', async () => {
      await oracle.tick();
      return oracle.status().meters[0]?.stale === false;
    });
    expect(oracle.status().meters[0]?.last?.importCumWh).toBe(1100n);
  });
});
