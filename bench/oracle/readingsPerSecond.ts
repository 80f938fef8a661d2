/**
 * Benchmark: signed readings per second, end to end on one core — read the meter over Modbus
 * TCP, sign under both domains, store in SQLite (synchronous = FULL), publish with QoS 1 and
 * wait for the broker's acknowledgement — beside the raw signing rate of the same library
 * (viem's signTypedData, noble secp256k1) measured in the same run.
 *
 * The oracle runs in this process (one thread); the broker (`gridcell broker`) and the
 * simulated meters (meterSimulators.ts) run in child processes, as they are separate devices
 * in production. Rates are given per wall second and per second of the oracle's own CPU
 * time: on a shared machine the second is the one that does not depend on other load.
 *
 * Run: npx tsx bench/oracle/readingsPerSecond.ts [--meters 20] [--rounds 100] [--out docs/bench-oracle.json]
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import mqtt from 'mqtt';
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts';
import type { Clock } from '../../chain/clock/index.js';
import { silentLogger } from '../../chain/logger/index.js';
import { gridcellDomain, type MeterReading, meterReadingTypes } from '../../chain/typed-data/index.js';
import { createOracle } from '../../oracle/daemon/createOracle.js';
import { topics } from '../../oracle/messages/index.js';
import { createMetrics } from '../../oracle/metrics/index.js';
import { openOracleStore } from '../../oracle/store/oracleStore.js';

const { values } = parseArgs({
  options: {
    meters: { type: 'string', default: '20' },
    rounds: { type: 'string', default: '100' },
    out: { type: 'string' },
    'broker-port': { type: 'string', default: '18830' },
    'modbus-port': { type: 'string', default: '17100' },
  },
});
const METERS = Number(values.meters);
const ROUNDS = Number(values.rounds);
const L = 900n;
const poolDomain = gridcellDomain(31337, '0x00000000000000000000000000000000000000aa');
const channelsDomain = gridcellDomain(31337, '0x00000000000000000000000000000000000000bb');
const log = (line: string) => process.stderr.write(`bench: ${line}\n`);

async function rawSigningRate(seconds: number) {
  const account = privateKeyToAccount(generatePrivateKey());
  const reading: MeterReading = {
    meter: account.address,
    cell: 1n,
    interval: 2_000_000n,
    importWh: 100n,
    exportWh: 0n,
    importCumWh: 12_345n,
    exportCumWh: 0n,
    seq: 1n,
  };
  let n = 0;
  const cpu = process.cpuUsage();
  const start = performance.now();
  while (performance.now() - start < seconds * 1000) {
    await account.signTypedData({
      domain: n % 2 === 0 ? poolDomain : channelsDomain,
      types: meterReadingTypes,
      primaryType: 'MeterReading',
      message: { ...reading, seq: BigInt(n) },
    });
    n++;
  }
  return rates(n, start, cpu);
}

/** Per wall second, and per second of this process's CPU time (robust to other load). */
function rates(n: number, start: number, cpu: NodeJS.CpuUsage) {
  const used = process.cpuUsage(cpu);
  return { wall: (n * 1000) / (performance.now() - start), cpu: (n * 1e6) / (used.user + used.system) };
}

/** The library's bare signature over a 32-byte digest (noble secp256k1 through viem). */
async function rawDigestSigningRate(seconds: number) {
  const account = privateKeyToAccount(generatePrivateKey());
  let n = 0;
  const cpu = process.cpuUsage();
  const start = performance.now();
  while (performance.now() - start < seconds * 1000) {
    await account.sign({ hash: `0x${n.toString(16).padStart(64, '0')}` });
    n++;
  }
  return rates(n, start, cpu);
}

async function main() {
  const dir = mkdtempSync(join(tmpdir(), 'gridcell-bench-oracle-'));
  const brokerPort = Number(values['broker-port']);
  const broker = spawn(process.execPath, ['bin/gridcell.js', 'broker', '--port', String(brokerPort)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  await new Promise<void>((resolve, reject) => {
    broker.stdout.on('data', (c: Buffer) => c.toString().includes('listening') && resolve());
    broker.once('exit', (code) => reject(new Error(`broker exited with ${code}`)));
  });
  const url = `mqtt://127.0.0.1:${brokerPort}`;
  let t = 2_000_000n * L;
  const clock: Clock = { now: async () => t };
  const basePort = Number(values['modbus-port']);
  const sims = spawn(
    process.execPath,
    ['--import', 'tsx', 'bench/oracle/meterSimulators.ts', String(METERS), String(basePort)],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  await new Promise<void>((resolve, reject) => {
    sims.stdout.on('data', (c: Buffer) => c.toString().includes('ready') && resolve());
    sims.once('exit', (code) => reject(new Error(`meter simulators exited with ${code}`)));
  });
  const metrics = createMetrics('bench');
  const oracle = createOracle({
    id: 'bench',
    zone: 'bench',
    meters: Array.from({ length: METERS }, (_, i) => ({
      name: `m${i}`,
      account: privateKeyToAccount(generatePrivateKey()),
      cell: BigInt(i + 1),
      source: { type: 'modbus', host: '127.0.0.1', port: basePort + i },
      limits: { maxImportW: 100_000n, maxExportW: 100_000n },
    })),
    store: openOracleStore(join(dir, 'oracle.sqlite')),
    mqttUrl: url,
    clock,
    intervalSeconds: L,
    chainId: 31337,
    poolDomain,
    channelsDomain,
    logger: silentLogger,
    metrics,
    sampleMs: 3_600_000,
    telemetryMs: 0,
    statusMs: 3_600_000,
  });
  // A subscriber in the broker's path, so QoS 1 delivery has somewhere to go.
  const sub = await mqtt.connectAsync(url);
  let delivered = 0;
  sub.on('message', () => delivered++);
  await sub.subscribeAsync(topics.allReadings('bench'), { qos: 1 });
  await oracle.start();

  log(`raw signing rate (viem signTypedData), 5 s ...`);
  const rawPerSecond = await rawSigningRate(5);
  log(`${rawPerSecond.wall.toFixed(0)} signatures/s (${rawPerSecond.cpu.toFixed(0)} per CPU second)`);
  log('raw digest signing rate (viem account.sign on a 32-byte hash), 5 s ...');
  const rawDigestPerSecond = await rawDigestSigningRate(5);
  log(
    `${rawDigestPerSecond.wall.toFixed(0)} signatures/s (${rawDigestPerSecond.cpu.toFixed(0)} per CPU second)`,
  );

  log(`end to end: ${METERS} meters x ${ROUNDS} intervals ...`);
  const cpuStart = process.cpuUsage();
  const start = performance.now();
  for (let round = 0; round < ROUNDS; round++) {
    t += L;
    await oracle.tick();
    await oracle.flush();
    if ((round + 1) % 20 === 0)
      log(`${round + 1}/${ROUNDS} intervals, ${metrics.get('readings_published')} readings acknowledged`);
  }
  const seconds = (performance.now() - start) / 1000;
  const cpu = process.cpuUsage(cpuStart);
  const readings = metrics.get('readings_published');
  const endToEnd = readings / seconds;
  // The subscriber's copies trail the acknowledgements a little: wait for them (at most 5 s).
  for (const until = Date.now() + 5000; delivered < readings && Date.now() < until; ) {
    await new Promise((r) => setTimeout(r, 20));
  }
  const cpuSeconds = (cpu.user + cpu.system) / 1e6;
  const endToEndCpu = readings / cpuSeconds;
  const ratio = (x: number, y: number) => Number((x / y).toFixed(2));
  const result = {
    machine: { cpu: cpus()[0]?.model ?? 'unknown', cores: cpus().length, node: process.version },
    meters: METERS,
    intervals: ROUNDS,
    readings,
    seconds: Number(seconds.toFixed(2)),
    oracleCpuSeconds: Number(cpuSeconds.toFixed(2)),
    deliveredToSubscriber: delivered,
    perWallSecond: {
      endToEndReadings: Math.round(endToEnd),
      rawTypedDataSignatures: Math.round(rawPerSecond.wall),
      rawDigestSignatures: Math.round(rawDigestPerSecond.wall),
    },
    perCpuSecond: {
      endToEndReadings: Math.round(endToEndCpu),
      rawTypedDataSignatures: Math.round(rawPerSecond.cpu),
      rawDigestSignatures: Math.round(rawDigestPerSecond.cpu),
    },
    /** A signed reading is two signatures (pool and channels domains). */
    ratios: {
      wallVsRawTypedDataReadings: ratio(endToEnd, rawPerSecond.wall / 2),
      cpuVsRawTypedDataReadings: ratio(endToEndCpu, rawPerSecond.cpu / 2),
      cpuVsRawTypedDataSignatures: ratio(endToEndCpu, rawPerSecond.cpu),
      cpuVsRawDigestReadings: ratio(endToEndCpu, rawDigestPerSecond.cpu / 2),
    },
  };
  console.log(JSON.stringify(result, null, 2));
  if (values.out) writeFileSync(values.out, `${JSON.stringify(result, null, 2)}\n`);
  await oracle.stop();
  await sub.endAsync(true);
  sims.kill('SIGTERM');
  broker.kill('SIGTERM');
  rmSync(dir, { recursive: true, force: true });
}

await main();
