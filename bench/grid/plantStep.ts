/**
 * Benchmark: how fast the plant simulates, and how long the controller takes per interval.
 *
 * - Plant: simulated seconds per wall second for the four-prosumer complex (grid/topology/
 *   fourProsumers.json) over a simulated day, at a 1 s step (the default) and at 5 s, with
 *   trading setpoints on two ports and a rectiverter.
 * - Controller, pure: planInterval (arbitration + setpoints) and assessDelivery per interval.
 * - Controller, over Modbus TCP: writing one interval's setpoints (router + 4 ports + 6 links,
 *   value, revert time, enable) and reading every device back, as one pass does, against the
 *   plant's own servers in this process (so the servers' work counts too: conservative).
 *
 * Run: npx tsx bench/grid/plantStep.ts [--days 1] [--plans 20000] [--passes 50] [--out docs/bench-grid.json]
 */
import { writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { parseArgs } from 'node:util';
import { assessDelivery, type BoundarySample } from '../../grid/controller/assessDelivery.js';
import { planInterval } from '../../grid/controller/planInterval.js';
import { startPlantServers } from '../../grid/devices/startPlantServers.js';
import { createPlant } from '../../grid/plant/index.js';
import { createDerClient } from '../../grid/sunspec/derClient.js';
import { loadTopology } from '../../grid/topology/index.js';

const { values } = parseArgs({
  options: {
    days: { type: 'string', default: '1' },
    plans: { type: 'string', default: '20000' },
    passes: { type: 'string', default: '50' },
    'modbus-port': { type: 'string', default: '16460' },
    out: { type: 'string' },
  },
});
const DAYS = Number(values.days);
const PLANS = Number(values.plans);
const PASSES = Number(values.passes);
const MIDNIGHT = 1_800_000_000 - (1_800_000_000 % 86_400);
const log = (line: string) => process.stderr.write(`bench: ${line}\n`);
const topology = structuredClone(loadTopology());
topology.cells.forEach((c, i) => {
  c.cellId = String(101 + i);
});

const percentile = (sorted: number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;

async function plantRate(stepSeconds: number) {
  const plant = await createPlant({ topology, seed: 42, startTime: MIDNIGHT, stepSeconds });
  plant.write('port:prosumer-1', { enabled: true, watts: 2000 });
  plant.write('port:prosumer-2', { enabled: true, watts: -2000 });
  plant.write('link:rv-3-4', { enabled: true, watts: 1500 });
  const simulated = DAYS * 86_400;
  const start = process.hrtime.bigint();
  for (let s = 0; s < simulated; s += 900) plant.step(900); // one call per interval, as the servers do
  const wallSeconds = Number(process.hrtime.bigint() - start) / 1e9;
  return {
    stepSeconds,
    simulatedSeconds: simulated,
    wallSeconds: Number(wallSeconds.toFixed(3)),
    simulatedPerWallSecond: Math.round(simulated / wallSeconds),
    physicsStepsPerSecond: Math.round(simulated / stepSeconds / wallSeconds),
  };
}

function planTimes() {
  const t = 2_000_000n;
  const schedule = topology.cells.map((c, i) => ({
    cell: BigInt(c.cellId ?? 0),
    side: i % 2 === 0 ? ('sell' as const) : ('buy' as const),
    energyWh: 500n + BigInt(i) * 250n,
  }));
  const deals = [
    {
      channel: `0x${'11'.repeat(32)}` as const,
      buyerCell: 102n,
      sellerCell: 101n,
      maxWhPerInterval: 400n,
      firstInterval: t - 10n,
      lastInterval: t + 10n,
    },
    {
      channel: `0x${'22'.repeat(32)}` as const,
      buyerCell: 104n,
      sellerCell: 103n,
      maxWhPerInterval: 300n,
      firstInterval: t - 10n,
      lastInterval: t + 10n,
    },
  ];
  const cellSample = { shedWh: 0n, curtailedWh: 0n, importWh: 0n, exportWh: 0n };
  const sample = (interval: bigint): BoundarySample => ({
    interval,
    at: interval * 900n,
    cells: new Map(topology.cells.map((c) => [c.name, { ...cellSample, exportWh: interval % 7n }])),
    complex: { shedWh: 0n, curtailedWh: 0n },
  });
  const plan: number[] = [];
  const assess: number[] = [];
  for (let i = 0; i < PLANS; i++) {
    const a = process.hrtime.bigint();
    const p = planInterval({ topology, intervalSeconds: 900n, interval: t, schedule, deals });
    const b = process.hrtime.bigint();
    assessDelivery({
      topology,
      from: sample(t),
      to: sample(t + 1n),
      plan: p,
      requestInterval: t + 2n,
      tolerance: { wh: 10n, percent: 2 },
    });
    const c = process.hrtime.bigint();
    plan.push(Number(b - a) / 1e3);
    assess.push(Number(c - b) / 1e3);
  }
  plan.sort((x, y) => x - y);
  assess.sort((x, y) => x - y);
  return {
    intervals: PLANS,
    planMicros: { p50: percentile(plan, 50), p99: percentile(plan, 99) },
    assessMicros: { p50: percentile(assess, 50), p99: percentile(assess, 99) },
  };
}

async function modbusPass() {
  let now = MIDNIGHT + 12 * 3600;
  const plant = await createPlant({ topology, clock: { now: async () => BigInt(now) }, seed: 1 });
  const servers = await startPlantServers({ plant, basePort: Number(values['modbus-port']) });
  const plan = planInterval({
    topology,
    intervalSeconds: 900n,
    interval: 1n,
    schedule: [
      { cell: 101n, side: 'sell', energyWh: 1000n },
      { cell: 102n, side: 'buy', energyWh: 1000n },
    ],
    deals: [],
  });
  const controllable = servers.devices.filter((d) => d.kind !== 'meter');
  const clients = new Map(controllable.map((d) => [d.id, createDerClient({ host: d.host, port: d.port })]));
  const times: number[] = [];
  try {
    for (let i = 0; i < PASSES; i++) {
      now += 20; // a heartbeat's worth of physics between passes
      const a = process.hrtime.bigint();
      await Promise.all([
        clients.get('router')?.writeLimit(plan.router.percent, 60),
        ...plan.ports.map((p) => clients.get(`port:${p.name}`)?.writeSetpoint(p.watts, 60)),
        ...plan.links.map((l) => clients.get(`link:${l.name}`)?.writeSetpoint(l.watts, 60)),
      ]);
      await Promise.all([...clients.values()].map((c) => c.read()));
      times.push(Number(process.hrtime.bigint() - a) / 1e6);
    }
  } finally {
    await Promise.all([...clients.values()].map((c) => c.close()));
    await servers.close();
  }
  const warm = times.slice(1).sort((x, y) => x - y); // the first pass discovers the maps
  return {
    devices: controllable.length,
    passes: PASSES,
    firstPassMs: Number((times[0] ?? 0).toFixed(1)),
    passMs: { p50: Number(percentile(warm, 50).toFixed(1)), p99: Number(percentile(warm, 99).toFixed(1)) },
  };
}

const result = {
  machine: { cpu: cpus()[0]?.model ?? 'unknown', cores: cpus().length, node: process.version },
  topology: topology.name,
  plant: [await plantRate(1), await plantRate(5)],
  controller: planTimes(),
  modbusPass: await modbusPass(),
};
for (const p of result.plant)
  log(
    `plant, ${p.stepSeconds} s step: ${p.simulatedPerWallSecond} simulated s per wall s (${p.physicsStepsPerSecond} steps/s)`,
  );
log(
  `planInterval p50 ${result.controller.planMicros.p50} µs, p99 ${result.controller.planMicros.p99} µs; assessDelivery p50 ${result.controller.assessMicros.p50} µs`,
);
log(
  `write + read back ${result.modbusPass.devices} devices over Modbus TCP: p50 ${result.modbusPass.passMs.p50} ms, p99 ${result.modbusPass.passMs.p99} ms (first pass ${result.modbusPass.firstPassMs} ms)`,
);
const json = `${JSON.stringify(result, null, 2)}\n`;
if (values.out) writeFileSync(values.out, json);
else process.stdout.write(json);
