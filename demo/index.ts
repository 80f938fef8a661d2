/**
 * The IDEA demonstration complex, end to end, in one process: a devnet with an accelerated
 * clock and the TE contracts, the embedded MQTT broker, the plant of the four-prosumer complex
 * on Modbus TCP, the grid controller, one meter oracle per cell, the settlement relayer, a
 * market operator that clears each interval, the cells' agents over gossipsub, the indexer and
 * the GraphQL API with the dashboard beside it. It runs the scenarios of the demonstration in
 * turn, prints one block per interval and a summary that checks conservation. docs/demo.md.
 */
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { createPublicClient, createTestClient, http, type LocalAccount, zeroAddress } from 'viem';
import { type Agent, createAgent, parseAgentConfig } from '../agent/index.js';
import { abiHash, clearingPoolAbi } from '../chain/abi/contracts.generated.js';
import { createGridcellClients, type GridcellClients } from '../chain/client/index.js';
import {
  type Clock,
  chainClock,
  type DevnetClock,
  startDevnetClock,
  wallClock,
} from '../chain/clock/index.js';
import {
  type CoreDeployment,
  type Devnet,
  defaultChannelParameters,
  defaultPoolParameters,
  deployCore,
  devnetAccount,
  startDevnet,
} from '../chain/devnet/index.js';
import { BaseError } from '../chain/errors/index.js';
import type { Logger } from '../chain/logger/index.js';
import { type Manifest, writeManifest } from '../chain/manifest/index.js';
import { Side } from '../chain/units/index.js';
import { createGraphqlServer, type GraphqlServer } from '../graphql/index.js';
import { createGridController, type GridController } from '../grid/controller/index.js';
import { type PlantServers, startPlantServers } from '../grid/devices/startPlantServers.js';
import { type SunSpecMeterServer, startSunSpecMeterServer } from '../grid/devices/sunspecMeterServer.js';
import { createPlant } from '../grid/plant/index.js';
import { loadTopology, type Topology } from '../grid/topology/index.js';
import {
  createIndexer,
  type Database,
  type Indexer,
  isPostgresUrl,
  openDatabase,
  silentLogger as silentIndexerLogger,
} from '../indexer/index.js';
import { type MqttBroker, startMqttBroker } from '../oracle/broker/index.js';
import { createOracle, type Oracle } from '../oracle/daemon/createOracle.js';
import { parseReadingMessage, topics } from '../oracle/messages/index.js';
import { createMetrics } from '../oracle/metrics/index.js';
import { createRelayer, type Relayer } from '../oracle/relayer/createRelayer.js';
import { openRelayerStore } from '../oracle/relayer/relayerStore.js';
import { openOracleStore } from '../oracle/store/oracleStore.js';
import { connectCell, type DemoCell } from './cells.js';
import { type ClearingOperator, createClearingOperator } from './clearingOperator.js';
import { type PlantTap, tapPlant } from './plantTap.js';
import { cellProfile, type HubPlan } from './profiles.js';
import {
  collectIntervalReport,
  type DemoSummary,
  formatIntervalReport,
  formatSummary,
  type IntervalReport,
  type MeteredEnergy,
  summarize,
} from './report.js';
import { type DemoServer, startDemoServer } from './server.js';

export type { DemoSummary, IntervalReport } from './report.js';

/** The three test scenarios of the IDEA demonstration complex. */
export const scenarioNames = ['grid-connected', 'islanded', 'plug-and-play'] as const;
export type ScenarioName = (typeof scenarioNames)[number];

/** One stretch of intervals under one set of conditions. */
interface Phase {
  label: string;
  intervals: number;
  trading: boolean;
  islanded: boolean;
  /** The fifth prosumer joins so that it trades from this phase's first interval. */
  join: boolean;
}

function phasesOf(scenarios: readonly ScenarioName[], n: number): Phase[] {
  const out: Phase[] = [];
  for (const s of scenarios) {
    if (s === 'grid-connected') {
      out.push({
        label: '1 grid-connected, no trades',
        intervals: n,
        trading: false,
        islanded: false,
        join: false,
      });
      out.push({
        label: '1 grid-connected, trading',
        intervals: n,
        trading: true,
        islanded: false,
        join: false,
      });
    } else if (s === 'islanded') {
      out.push({ label: '2 islanded', intervals: n, trading: true, islanded: true, join: false });
    } else {
      out.push({ label: '3 plug & play', intervals: n, trading: true, islanded: false, join: true });
    }
  }
  return out;
}

export interface DemoParameters {
  scenarios: readonly ScenarioName[];
  /** Intervals per phase (scenario 1 has two phases). */
  intervals: number;
  /** Chain seconds per real second (ignored with realTime). */
  speed: number;
  /** 900-second intervals on the wall clock. */
  realTime: boolean;
  /** A node to use instead of the embedded anvil (anvil's development accounts must be funded there). */
  rpcUrl?: string | undefined;
  /** A broker to use instead of the embedded one. */
  mqttUrl?: string | undefined;
  /** SQLite path or postgres:// URL for the index (default a SQLite file in dataDir). */
  databaseUrl?: string | undefined;
  /** HTTP port of the dashboard and GraphQL (0 = any). */
  httpPort: number;
  /** Port of the embedded anvil. */
  anvilPort: number;
  /** First Modbus TCP port of the plant's devices (they take consecutive ports). */
  modbusBasePort: number;
  /** Where the stores and the manifest go. */
  dataDir: string;
  /** Seeds the plant's weather and loads. */
  seed: number;
  /** The accelerated clock starts at this hour (UTC) of the day. */
  startHour: number;
  /** Where interval blocks and the summary are printed. */
  out: (text: string) => void;
  logger: Logger;
}

export interface Demo {
  manifest: Manifest;
  /** The dashboard; GraphQL at `${httpUrl}/graphql`. */
  httpUrl: string;
  mqttUrl: string;
  rpcUrl: string;
  /** Runs the scenarios; resolves with the summary once the last interval is settled. */
  run(): Promise<DemoSummary>;
  reports(): IntervalReport[];
  /** The one shutdown path: stops everything that was started, in reverse order. */
  stop(): Promise<void>;
}

export class DemoError extends BaseError {
  override name = 'DemoError' as const;
}

/** Prices of the demo's owners, token base units per kWh (dEUR has 6 decimals). */
const PRICES = [
  { minSellPrice: 100_000n, maxBuyPrice: 260_000n },
  { minSellPrice: 110_000n, maxBuyPrice: 250_000n },
  { minSellPrice: 120_000n, maxBuyPrice: 280_000n },
  { minSellPrice: 130_000n, maxBuyPrice: 270_000n },
  { minSellPrice: 90_000n, maxBuyPrice: 200_000n },
];
/** The owners of prosumers 3 and 4 fill their hubs from their neighbours' midday surplus. */
const HUB_PLANS: (HubPlan | undefined)[] = [
  undefined,
  undefined,
  { chargeW: 4000, fromHour: 7, toHour: 16 },
  { chargeW: 4000, fromHour: 7, toHour: 16 },
];
/**
 * Prosumer 4's owner also buys bilaterally: its agent calls for proposals (contract net over
 * gossipsub) for 150 Wh per interval over two intervals, two intervals ahead; a deal opens a
 * debt channel, and the seller redeems the buyer's vouchers.
 */
const DEAL_BUYERS: ({ maxWhPerInterval: string; intervals: number; leadIntervals: number } | undefined)[] = [
  undefined,
  undefined,
  undefined,
  { maxWhPerInterval: '150', intervals: 2, leadIntervals: 2 },
];
/** Hubs' state of charge when the demo starts, per cent, by cell. */
const INITIAL_SOC_PCT = [30, 30, 15, 15];
/** anvil's i-th development account, with its key (devnets only). */
const developmentAccount = (i: number) => devnetAccount(i) as LocalAccount;
const DEPOSIT = 1_000_000_000n;
/** Modbus request timeout: generous, the demo shares its CPU with everything it runs. */
const MODBUS_TIMEOUT_MS = 5000; // 1,000 dEUR per cell
/** The fifth prosumer: outside the complex, on the same feeder (its trades cross the router). */
const FIFTH = {
  name: 'prosumer-5',
  maxImportW: 10_000,
  maxExportW: 10_000,
  generationWh: 1500n,
  loadWh: 300n,
};

/**
 * Brings up every part of the demonstration; `run()` then plays the scenarios.
 * @example
 * const demo = await createDemo({ scenarios: ['grid-connected'], intervals: 3, speed: 120, ... });
 * const summary = await demo.run();
 * await demo.stop();
 */
export async function createDemo(parameters: DemoParameters): Promise<Demo> {
  const { logger, out } = parameters;
  const stops: { name: string; stop: () => Promise<void> | void; rank: number }[] = [];
  /**
   * Registers how to stop a part. Rank 0 (the clock and what polls the chain or the meters)
   * stops first, then rank 1 (agents), then the rest: on Ctrl-C the terminal signals anvil
   * too, and a poller left running would only log errors about it.
   */
  const onStop = (name: string, stop: () => Promise<void> | void, rank = 2) =>
    stops.push({ name, stop, rank });
  let stopped = false;
  async function stop() {
    if (stopped) return;
    stopped = true;
    // Reverse order of start within each rank.
    const ordered = stops
      .splice(0)
      .reverse()
      .sort((a, b) => a.rank - b.rank);
    for (const { name, stop: s } of ordered) {
      try {
        await s();
        logger.debug('stopped', { part: name });
      } catch (error) {
        logger.warn('stopping failed', { part: name, error });
      }
    }
  }
  try {
    return await bringUp();
  } catch (error) {
    await stop();
    throw error;
  }

  async function bringUp(): Promise<Demo> {
    const dataDir = resolve(parameters.dataDir);
    mkdirSync(dataDir, { recursive: true });
    const pool = defaultPoolParameters;
    const L = pool.intervalSeconds;
    const lead = pool.gateClosureLead;

    // 1. The chain: embedded anvil with the contracts, or a node by URL.
    let manifest: Manifest;
    let rpcUrl: string;
    if (parameters.rpcUrl) {
      rpcUrl = parameters.rpcUrl;
      manifest = await deployOn(rpcUrl, join(dataDir, 'deployment.json'));
    } else {
      const devnet: Devnet = await startDevnet({
        port: parameters.anvilPort,
        pool,
        channels: defaultChannelParameters,
        manifestPath: join(dataDir, 'deployment.json'),
        fundedAccounts: 0,
        onStep: (s) => logger.info(s),
      });
      onStop('anvil', () => devnet.stop());
      manifest = devnet.manifest;
      rpcUrl = devnet.anvil.rpcUrl;
    }
    const clients = createGridcellClients({ manifest, rpcUrl, pollingIntervalMs: 100 });
    const { publicClient } = clients;
    const testClient = createTestClient({ chain: clients.chain, mode: 'anvil', transport: http(rpcUrl) });

    // 2. Time: the accelerated devnet clock from a daytime hour, or the wall clock.
    let clock: Clock;
    if (parameters.realTime) {
      clock = wallClock();
    } else {
      try {
        const head = (await publicClient.getBlock()).timestamp;
        const day = (head / 86_400n) * 86_400n;
        let start = day + BigInt(parameters.startHour * 3600) + 60n;
        if (start <= head) start += 86_400n;
        await testClient.setNextBlockTimestamp({ timestamp: start });
        await testClient.mine({ blocks: 1 });
      } catch (cause) {
        throw new DemoError('the accelerated clock needs an anvil-compatible node', {
          details: `${rpcUrl} refused anvil_mine / evm_setNextBlockTimestamp; use --real-time with this node`,
          cause,
        });
      }
      const devnetClock: DevnetClock = startDevnetClock({
        publicClient,
        testClient,
        speed: parameters.speed,
        tickMs: 250,
        onError: (error) => logger.warn('the devnet clock could not mine', { error }),
      });
      onStop('clock', () => devnetClock.stop(), 0);
      clock = chainClock(publicClient);
    }
    logger.info('chain ready', { rpc: rpcUrl, chainId: manifest.chainId });

    // 3. MQTT.
    let mqttUrl = parameters.mqttUrl;
    if (!mqttUrl) {
      const broker: MqttBroker = await startMqttBroker({ port: 0 });
      onStop('broker', () => broker.close());
      mqttUrl = broker.url;
    }

    // 4. The plant and its devices on Modbus TCP.
    const topology: Topology = loadTopology();
    // The morning after a night on the hubs: they start low (the topology file's 50 % would
    // fill them before a full run ends, and a full hub cannot hold a schedule).
    for (const [i, c] of topology.cells.entries()) {
      c.hub.initialSocPct = Math.max(c.hub.minSocPct, INITIAL_SOC_PCT[i] ?? c.hub.initialSocPct);
    }
    const zone = topology.zone;
    const now0 = Number(await clock.now());
    const rawPlant = await createPlant({ topology, clock, seed: parameters.seed, startTime: now0 });
    const tap: PlantTap = tapPlant(rawPlant, clock, L);
    const servers: PlantServers = await startPlantServers({
      plant: tap.plant,
      basePort: parameters.modbusBasePort,
    });
    onStop('plant devices', () => servers.close());
    logger.info('plant on Modbus TCP', {
      devices: servers.devices.length,
      firstPort: parameters.modbusBasePort,
    });

    // 5. The four prosumer cells, on chain.
    const deployer = developmentAccount(0);
    const cells: DemoCell[] = [];
    for (const [i, c] of topology.cells.entries()) {
      const cell = await connectCell({
        name: c.name,
        manifest,
        clients,
        owner: developmentAccount(i + 1),
        funder: deployer,
        maxImportW: c.maxImportW,
        maxExportW: c.maxExportW,
        deposit: DEPOSIT,
      });
      c.cellId = cell.id.toString();
      cells.push(cell);
      logger.info('cell connected', {
        name: c.name,
        cell: cell.id,
        agent: cell.agent.address,
        meter: cell.meter.address,
      });
    }

    // 6. Meter oracles, one per cell.
    const domains = { poolDomain: clients.poolDomain, channelsDomain: clients.channelsDomain };
    const sampleMs = parameters.realTime ? 1000 : 150;
    // How late a boundary sample may be: three real seconds of a busy machine at high speed.
    const tolerance = parameters.realTime ? 60n : BigInt(Math.ceil(parameters.speed * 3)) + 60n;
    // The accelerated clock moves in steps of speed x 250 ms: between two samples the oracle's
    // clock and the meter's integration time may differ by a step, which the plausibility
    // check (energy <= limit x elapsed) would take for a faulty meter. Real time needs no margin.
    const plausibilityMargin = parameters.realTime ? 1 : 10;
    const startOracle = async (
      cell: DemoCell,
      port: number,
      limits: { maxImportW: number; maxExportW: number },
    ) => {
      const oracle: Oracle = createOracle({
        id: `oracle-${cell.name}`,
        zone,
        meters: [
          {
            name: cell.name,
            account: cell.meter,
            cell: cell.id,
            source: { type: 'modbus', host: '127.0.0.1', port, timeoutMs: MODBUS_TIMEOUT_MS },
            limits: {
              maxImportW: BigInt(limits.maxImportW * plausibilityMargin),
              maxExportW: BigInt(limits.maxExportW * plausibilityMargin),
            },
          },
        ],
        store: openOracleStore(join(dataDir, `oracle-${cell.name}-${manifest.chainId}-${cell.id}.sqlite`)),
        mqttUrl: mqttUrl ?? '',
        clock,
        intervalSeconds: L,
        chainId: manifest.chainId,
        ...domains,
        logger: logger.child(`oracle/${cell.name}`),
        metrics: createMetrics('gridcell_oracle'),
        sampleMs,
        telemetryMs: 0,
        boundaryToleranceSeconds: tolerance,
      });
      await oracle.start();
      onStop(`oracle ${cell.name}`, () => oracle.stop(), 0);
    };
    for (const [i, cell] of cells.entries()) {
      const c = topology.cells[i];
      if (!c) continue;
      await startOracle(cell, servers.address(`meter:${c.name}`).port, c);
    }

    // 7. Readings as they are published (the per-interval blocks show them).
    const metered = new Map<string, MeteredEnergy>();
    const watcher: MqttClient = await mqtt.connectAsync(mqttUrl, {
      clientId: `gridcell-demo-${process.pid}`,
    });
    onStop('reading watcher', () => watcher.endAsync(true));
    watcher.on('message', (_topic, payload) => {
      const parsed = parseReadingMessage(payload);
      if (!parsed.ok) return;
      const r = parsed.value.reading;
      metered.set(`${r.cell}:${r.interval}`, { importWh: r.importWh, exportWh: r.exportWh });
    });
    await watcher.subscribeAsync(topics.allReadings(zone), { qos: 1 });

    // 8. The relayer (settles and claims) and the market operator (clears).
    const relayerAccount = developmentAccount(8);
    const operatorAccount = developmentAccount(9);
    const walletOf = (account: LocalAccount) => {
      const w = createGridcellClients({ manifest, rpcUrl, account, pollingIntervalMs: 100 }).walletClient;
      if (!w) throw new DemoError('no wallet client');
      return w;
    };
    const relayer: Relayer = createRelayer({
      id: 'demo',
      zone,
      manifest,
      publicClient,
      walletClient: walletOf(relayerAccount),
      ...domains,
      store: openRelayerStore(join(dataDir, `relayer-${manifest.chainId}-${manifest.contracts.pool}.sqlite`)),
      mqttUrl,
      clock,
      logger: logger.child('relayer'),
      metrics: createMetrics('gridcell_relayer'),
      pollMs: parameters.realTime ? 5000 : 300,
    });
    await relayer.start();
    onStop('relayer', () => relayer.stop(), 0);
    const operator: ClearingOperator = createClearingOperator({
      manifest,
      publicClient,
      walletClient: walletOf(operatorAccount),
      logger: logger.child('operator'),
    });

    // 9. The grid controller (switched to islanded operation for scenario 2).
    const controllerMqtt: MqttClient = await mqtt.connectAsync(mqttUrl, {
      clientId: `gridcell-grid-${process.pid}`,
    });
    onStop('grid controller MQTT', () => controllerMqtt.endAsync(true));
    const revertSeconds = parameters.realTime ? 60 : Math.max(60, Math.ceil(parameters.speed * 4));
    const controller: GridController = createGridController({
      topology,
      manifest,
      publicClient,
      endpoint: (id) => servers.address(id),
      clock,
      logger: logger.child('grid'),
      mqtt: controllerMqtt,
      islanded: false,
      confirmations: 1,
      revertSeconds,
      // At least three passes of the loop ahead of delivery, in clock seconds.
      writeLeadSeconds: parameters.realTime ? 5 : Math.max(5, Math.ceil(parameters.speed * 0.3)),
      modbusTimeoutMs: MODBUS_TIMEOUT_MS,
    });
    controller.start(parameters.realTime ? 1000 : 100);
    onStop('grid controller', () => controller.close(), 0);
    let islanded = false;
    const writeLead = BigInt(parameters.realTime ? 5 : Math.max(5, Math.ceil(parameters.speed * 0.3)));

    // 10. Indexer and GraphQL with the dashboard.
    const dbUrl =
      parameters.databaseUrl ?? join(dataDir, `index-${manifest.chainId}-${manifest.contracts.pool}.sqlite`);
    const writer: Database = await openDatabase({ url: dbUrl });
    onStop('index database', () => writer.close());
    const indexer: Indexer = createIndexer({
      publicClient,
      manifest,
      db: writer,
      logger: silentIndexerLogger,
      finalityDepth: 2,
      pollIntervalMs: parameters.realTime ? 1000 : 200,
    });
    await indexer.start();
    onStop('indexer', () => indexer.stop(), 0);
    const reader: Database = isPostgresUrl(dbUrl)
      ? writer
      : await openDatabase({ url: dbUrl, readonly: true });
    if (reader !== writer) onStop('index reader', () => reader.close());
    const graphql: GraphqlServer = createGraphqlServer({
      db: reader,
      logger: silentIndexerLogger,
      status: async () => indexer.status(),
      feedPollIntervalMs: 500,
    });
    onStop('graphql', () => graphql.close());
    const server: DemoServer = await startDemoServer({ graphql, port: parameters.httpPort });
    onStop('http server', () => server.close());
    logger.info('dashboard and GraphQL', { url: server.url });

    // 11. Agents (started when the first trading phase needs them).
    const agents: Agent[] = [];
    let bootstrap: string[] = [];
    const startAgent = async (
      cell: DemoCell,
      index: number,
      profile: { loadWh: bigint[]; generationWh: bigint[] },
    ) => {
      const prices = PRICES[index % PRICES.length] ?? { minSellPrice: 100_000n, maxBuyPrice: 250_000n };
      const config = parseAgentConfig({
        cell: cell.id.toString(),
        zone,
        meter: cell.meter.address,
        profile: {
          loadWh: profile.loadWh.map(String),
          generationWh: profile.generationWh.map(String),
        },
        preferences: {
          minSellPrice: prices.minSellPrice.toString(),
          maxBuyPrice: prices.maxBuyPrice.toString(),
        },
        tickMs: parameters.realTime ? 1000 : 150,
        deals: {
          // Two real seconds to collect proposals, four to accept, at any speed.
          cfpWindowSeconds: parameters.realTime ? 60 : Math.max(30, Math.ceil(parameters.speed * 2)),
          acceptWindowSeconds: parameters.realTime ? 120 : Math.max(60, Math.ceil(parameters.speed * 4)),
          ...(DEAL_BUYERS[index] ? { buy: DEAL_BUYERS[index] } : {}),
        },
      });
      const agentClients: GridcellClients = createGridcellClients({
        manifest,
        rpcUrl,
        account: cell.agent,
        pollingIntervalMs: 100,
      });
      const agent = await createAgent({
        config,
        account: cell.agent,
        manifest,
        clients: agentClients,
        clock,
        logger: logger.child(`agent/${cell.name}`),
        mqttUrl: mqttUrl ?? '',
        bootstrap,
      });
      if (bootstrap.length === 0) bootstrap = agent.multiaddrs();
      agents.push(agent);
      onStop(`agent ${cell.name}`, () => agent.stop(), 1);
      logger.info('agent started', { cell: cell.name, peer: agent.peerId });
    };
    const day = Math.floor(now0 / 86_400) * 86_400;
    const startAgents = async () => {
      for (const [i, cell] of cells.entries()) {
        const c = topology.cells[i];
        if (!c) continue;
        await startAgent(
          cell,
          i,
          cellProfile({
            cell: c,
            seed: parameters.seed,
            intervalSeconds: Number(L),
            day,
            hubPlan: HUB_PLANS[i],
          }),
        );
      }
    };
    const stopAgents = async () => {
      for (const a of agents.splice(0)) await a.stop();
    };

    // The fifth prosumer: its own meter (a hub that holds its schedule), oracle and agent.
    const schedules = new Map<string, bigint>();
    let fifthMeter: SunSpecMeterServer | undefined;
    const activeFrom = new Map<bigint, bigint>();
    const joinFifth = async (from: bigint) => {
      const owner = developmentAccount(5);
      const cell = await connectCell({
        name: FIFTH.name,
        manifest,
        clients,
        owner,
        funder: deployer,
        maxImportW: FIFTH.maxImportW,
        maxExportW: FIFTH.maxExportW,
        deposit: DEPOSIT,
      });
      const port = parameters.modbusBasePort + servers.devices.length;
      fifthMeter = await startSunSpecMeterServer({
        port,
        clock,
        profile: (t) => {
          const interval = BigInt(Math.floor(t / Number(L)));
          return Number(((schedules.get(`${cell.id}:${interval}`) ?? 0n) * 3600n) / L);
        },
      });
      const meter = fifthMeter;
      onStop('prosumer-5 meter', () => meter.close());
      await startOracle(cell, port, FIFTH);
      cells.push(cell);
      activeFrom.set(cell.id, from);
      const n = Number(86_400n / L);
      await startAgent(cell, 4, {
        loadWh: Array.from({ length: n }, () => FIFTH.loadWh),
        generationWh: Array.from({ length: n }, () => FIFTH.generationWh),
      });
      out(
        `>> ${FIFTH.name} joined: cell ${cell.id}, agent ${cell.agent.address}, meter ${cell.meter.address}\n`,
      );
    };

    async function run(): Promise<DemoSummary> {
      const phases = phasesOf(parameters.scenarios, parameters.intervals);
      const startNow = await clock.now();
      const first = startNow / L + 2n;
      const plan: { interval: bigint; phase: Phase }[] = [];
      let t = first;
      for (const phase of phases)
        for (let k = 0; k < phase.intervals; k++) plan.push({ interval: t++, phase });
      const last = t - 1n;
      const phaseStarts: { start: bigint; phase: Phase }[] = [];
      for (const p of plan)
        if (!phaseStarts.some((x) => x.phase === p.phase))
          phaseStarts.push({ start: p.interval, phase: p.phase });
      for (const cell of cells) activeFrom.set(cell.id, first);
      out(
        `gridcell demo: ${phases.map((p) => `${p.label} (${p.intervals})`).join(' → ')}; intervals ${first}-${last}, ${parameters.realTime ? 'real time' : `${parameters.speed}x`}\n` +
          `dashboard ${server.url}/ · GraphQL ${server.url}/graphql · RPC ${rpcUrl} · MQTT ${mqttUrl}\n`,
      );
      const reports: IntervalReport[] = [];
      const pending = new Map(plan.map((p) => [p.interval, p.phase]));
      let lastBlock = manifest.deploymentBlock;
      let trading = false;
      let joined = false;
      const started = Date.now();
      // Parts join and leave in the background: the loop must keep clearing meanwhile (the
      // window between gate closure and delivery is short at high speed).
      const tasks: Promise<void>[] = [];
      let failure: unknown;
      const inBackground = (what: string, task: Promise<void>) => {
        tasks.push(
          task.catch((error: unknown) => {
            failure ??= new DemoError(`${what} failed`, { cause: error });
          }),
        );
      };
      // The run ends at the latest when the last interval's settlement window has closed.
      const hardEnd = (last + 1n) * L + pool.settlementWindow + 2n * L;
      for (;;) {
        if (stopped) throw new DemoError('the demo was stopped before it finished');
        const now = await clock.now();
        // Phase transitions, one gate ahead: agents and the fifth cell join once the gate of
        // the interval before their phase has closed, so their first orders go to its first
        // interval.
        for (const { start, phase } of phaseStarts) {
          const gateBefore = (start - 1n) * L - lead;
          if (phase.trading && !trading && now >= gateBefore) {
            trading = true;
            inBackground('starting the agents', startAgents());
          }
          // The fifth prosumer joins while the others trade: during the phase's first
          // interval, so it trades from the next one.
          const joinAt = phase.intervals > 1 ? start + 1n : start;
          if (phase.join && !joined && now >= (joinAt - 1n) * L - lead) {
            joined = true;
            inBackground('the fifth prosumer joining', joinFifth(joinAt));
          }
        }
        if (failure) throw failure;
        // The controller changes mode when it writes the setpoints of the first interval of a
        // phase with the other mode, a write lead before its delivery starts.
        const upcoming = (now + writeLead) / L;
        const islandedIn = (i: bigint) => plan.find((p) => p.interval === i)?.phase.islanded ?? false;
        const wantIsland = islandedIn(upcoming);
        if (wantIsland !== islanded) {
          islanded = wantIsland;
          controller.setIslanded(wantIsland);
          out(
            wantIsland
              ? `>> interval ${upcoming}: islanded, the router opens\n`
              : `>> interval ${upcoming}: grid-connected, the router closes\n`,
          );
        }
        // Clear whatever has orders (also intervals before or after the plan, so no escrow waits).
        for (let c = first - 1n; c <= last + 2n; c++) {
          const result = await operator.maybeClear(c, now);
          if (result) {
            const logs = await publicClient.getContractEvents({
              address: manifest.contracts.pool,
              abi: clearingPoolAbi,
              eventName: 'CellScheduled',
              args: { interval: c },
              fromBlock: manifest.deploymentBlock,
            });
            for (const { args } of logs) {
              const wh = args.energyWh ?? 0n;
              schedules.set(`${args.cell}:${c}`, args.side === Side.Sell ? wh : -wh);
            }
          }
        }
        // Report each interval once it is delivered, metered and settled.
        for (const [interval, phase] of [...pending]) {
          if (now < (interval + 1n) * L) break;
          const head = await publicClient.getBlockNumber({ cacheTime: 0 });
          const report = await collectIntervalReport({
            publicClient,
            manifest,
            interval,
            scenario: phase.label,
            cells: cells.filter((c) => (activeFrom.get(c.id) ?? 0n) <= interval),
            metered: (cell, i) => metered.get(`${cell}:${i}`),
            physics: tap.physics(interval),
            fromBlock: lastBlock + 1n,
            toBlock: head,
          });
          const complete =
            report.positionsSettled >= report.scheduledCells &&
            report.cells.every((c) => c.meteredWh !== undefined) &&
            report.physics !== undefined;
          const overdue = now >= (interval + 1n) * L + pool.settlementWindow;
          if (!complete && !overdue) break;
          lastBlock = head;
          pending.delete(interval);
          reports.push(report);
          out(`${formatIntervalReport(report, L)}\n`);
        }
        if (pending.size === 0) break;
        if (now > hardEnd)
          throw new DemoError('the run did not finish', {
            details: `intervals left: ${[...pending.keys()].join(', ')}`,
          });
        await new Promise((r) => setTimeout(r, parameters.realTime ? 1000 : 100));
      }
      await Promise.all(tasks);
      // Channel sellers redeem the buyer's voucher for an interval once its reading is out:
      // the agents stay half an interval past the last delivery for that.
      const grace = (last + 1n) * L + L / 2n;
      while ((await clock.now()) < grace && !stopped) {
        await new Promise((r) => setTimeout(r, parameters.realTime ? 1000 : 100));
      }
      await stopAgents();
      const summary = await summarize({ reports, publicClient, manifest, cells });
      out(`${formatSummary(summary)}\n   (${Math.round((Date.now() - started) / 1000)} s)\n`);
      finished = reports;
      return summary;
    }
    let finished: IntervalReport[] = [];

    return {
      manifest,
      httpUrl: server.url,
      mqttUrl,
      rpcUrl,
      run,
      reports: () => finished,
      stop,
    };
  }

  /** Deploys the TE core on a node by URL with anvil's first development account. */
  async function deployOn(rpcUrl: string, manifestPath: string): Promise<Manifest> {
    let chainId: number;
    try {
      chainId = await createPublicClient({ transport: http(rpcUrl) }).getChainId();
    } catch (cause) {
      throw new DemoError(`no node answers at ${rpcUrl}`, {
        details: 'expected a JSON-RPC endpoint (--rpc)',
        cause,
      });
    }
    const none = zeroAddress;
    const base: Manifest = {
      version: 1,
      chainId,
      rpcUrl,
      deploymentBlock: 0n,
      abiHash,
      pool: defaultPoolParameters,
      channels: defaultChannelParameters,
      contracts: { token: none, registry: none, wallets: none, pool: none, channels: none },
    };
    const clients = createGridcellClients({ manifest: base, rpcUrl, account: developmentAccount(0) });
    if (!clients.walletClient) throw new DemoError('no wallet client');
    const deployment: CoreDeployment = await deployCore({
      publicClient: clients.publicClient as never,
      walletClient: clients.walletClient,
      pool: defaultPoolParameters,
      channels: defaultChannelParameters,
      onStep: (s) => parameters.logger.info(s),
    });
    const manifest: Manifest = {
      ...base,
      deploymentBlock: deployment.deploymentBlock,
      contracts: {
        token: deployment.token,
        registry: deployment.registry,
        wallets: deployment.wallets,
        pool: deployment.pool,
        channels: deployment.channels,
      },
    };
    writeManifest(manifestPath, manifest);
    return manifest;
  }
}
