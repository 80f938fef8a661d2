import { z } from 'zod';
import { createDemo, type Demo, scenarioNames } from '../../demo/index.js';
import { daemonLogger } from '../context.js';
import type { Io } from '../io.js';
import { onShutdown, parseCommandLine, parseOptions, UsageError } from '../options.js';

export const demoHelp = `gridcell demo: the IDEA demonstration complex, end to end

Brings up, in one process: anvil with the contracts and an accelerated clock, the MQTT broker,
the plant of the four-prosumer complex on Modbus TCP, the grid controller, a meter oracle per
cell, the settlement relayer, a market operator that clears each interval, the four agents
over gossipsub, the indexer, and GraphQL with the dashboard. Then it runs the scenarios:

  1 grid-connected   first without, then with energy transactions between prosumers
  2 islanded         router open: prosumers balance each other by trades and their hubs
  3 plug-and-play    a fifth prosumer joins during the run and trades from the next interval

It prints one block per interval and, at the end, a summary that checks conservation of
money and energy; then it keeps the dashboard up until Ctrl-C (or exits with --exit).

Options:
  --scenario NAME       all (default), grid-connected, islanded or plug-and-play
  --intervals N         intervals per phase (default 3; scenario 1 has two phases)
  --speed X             chain seconds per real second (default 60: an interval in 15 s)
  --real-time           900-second intervals on the wall clock
  --start-hour H        the accelerated clock starts at H:00 UTC (default 7)
  --rpc URL             use this node instead of the embedded anvil (anvil's development
                        accounts must hold ETH there; the accelerated clock needs anvil's
                        methods, otherwise add --real-time)
  --mqtt URL            use this broker instead of the embedded one (default MQTT_URL)
  --database-url URL    SQLite path or postgres:// URL for the index (default DATABASE_URL,
                        else a SQLite file in the data directory)
  --port N              dashboard and GraphQL port (default 4000)
  --anvil-port N        embedded anvil's port (default 8545)
  --modbus-port N       first Modbus TCP port of the plant's devices (default 15500)
  --data-dir DIR        stores and manifest (default .gridcell/demo)
  --seed N              weather and loads of the plant (default 7)
  --exit                exit after the summary (exit code 1 when a check failed)
  --verbose             log every part's steps (GRIDCELL_LOG_LEVEL works too)
  -h, --help            show this help
`;

const schema = z.object({
  scenario: z.enum(['all', ...scenarioNames]).default('all'),
  intervals: z.coerce.number().int().min(1).max(96).default(3),
  speed: z.coerce.number().min(1).max(600).default(60),
  'real-time': z.boolean().default(false),
  'start-hour': z.coerce.number().int().min(0).max(23).default(7),
  rpc: z.string().url().optional(),
  mqtt: z.string().url().optional(),
  'database-url': z.string().min(1).optional(),
  port: z.coerce.number().int().min(0).max(65535).default(4000),
  'anvil-port': z.coerce.number().int().min(1).max(65535).default(8545),
  'modbus-port': z.coerce.number().int().min(1).max(65000).default(15500),
  'data-dir': z.string().min(1).default('.gridcell/demo'),
  seed: z.coerce.number().int().min(0).default(7),
  exit: z.boolean().default(false),
  verbose: z.boolean().default(false),
});

/** `gridcell demo`: runs the scenarios, then serves the dashboard until SIGINT or SIGTERM. */
export async function demoCommand(argv: string[], io: Io): Promise<void> {
  const { values, positionals } = parseCommandLine(
    argv,
    {
      scenario: { type: 'string' },
      intervals: { type: 'string' },
      speed: { type: 'string' },
      'real-time': { type: 'boolean' },
      'start-hour': { type: 'string' },
      rpc: { type: 'string' },
      mqtt: { type: 'string' },
      'database-url': { type: 'string' },
      port: { type: 'string' },
      'anvil-port': { type: 'string' },
      'modbus-port': { type: 'string' },
      'data-dir': { type: 'string' },
      seed: { type: 'string' },
      exit: { type: 'boolean' },
      verbose: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
    'demo',
  );
  if (values.help) {
    io.out(demoHelp);
    return;
  }
  if (positionals.length > 0)
    throw new UsageError(`unexpected argument ${positionals[0]} (see \`gridcell demo --help\`)`);
  const options = parseOptions(schema, values, 'demo');
  const logger = daemonLogger(io, 'demo', options.verbose ? 'info' : 'warn');
  io.out(`demo: starting (scenario ${options.scenario}, ${options.intervals} intervals per phase)\n`);

  let demo: Demo | undefined;
  let interrupted = false;
  const starting = createDemo({
    scenarios: options.scenario === 'all' ? scenarioNames : [options.scenario],
    intervals: options.intervals,
    speed: options.speed,
    realTime: options['real-time'],
    rpcUrl: options.rpc,
    mqttUrl: options.mqtt ?? io.env.MQTT_URL,
    databaseUrl: options['database-url'] ?? io.env.DATABASE_URL,
    httpPort: options.port,
    anvilPort: options['anvil-port'],
    modbusBasePort: options['modbus-port'],
    dataDir: options['data-dir'],
    seed: options.seed,
    startHour: options['start-hour'],
    out: (text) => io.out(text),
    logger,
  });
  // The one shutdown path, installed before anything starts: a signal during start-up waits
  // for the parts that are up and stops them; one during the run stops it where it is.
  const stopped = onShutdown(async (signal) => {
    interrupted = true;
    io.out(`demo: ${signal}: stopping every part\n`);
    const started = demo ?? (await starting.catch(() => undefined));
    await started?.stop();
    io.out('demo: stopped\n');
  });
  demo = await starting;
  const running = demo;
  const summary = await Promise.race([running.run(), stopped.then(() => undefined)]).catch(
    async (error: unknown) => {
      if (interrupted) return undefined;
      // A failed run still ends in the one shutdown path: nothing is left running.
      await running.stop();
      throw error;
    },
  );
  if (interrupted || !summary) {
    await stopped;
    return;
  }
  if (options.exit) {
    await demo.stop();
    if (!summary.ok) throw new UsageError('a conservation check failed (see the summary)');
    return;
  }
  io.out(`demo: done; the dashboard stays at ${demo.httpUrl}/ until Ctrl-C\n`);
  await stopped;
}
