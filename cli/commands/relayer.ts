import { z } from 'zod';
import { createGridcellClients } from '../../chain/client/index.js';
import { chainClock, wallClock } from '../../chain/clock/index.js';
import { BaseError } from '../../chain/errors/index.js';
import { DEFAULT_KEYSTORE_DIR } from '../../chain/keystore/index.js';
import { DEFAULT_MANIFEST_PATH } from '../../chain/manifest/index.js';
import { createMetrics, serveMetrics } from '../../oracle/metrics/index.js';
import { createRelayer } from '../../oracle/relayer/createRelayer.js';
import { openRelayerStore } from '../../oracle/relayer/relayerStore.js';
import { daemonLogger, openDeployment, unlockKey } from '../context.js';
import type { Io } from '../io.js';
import { onShutdown, parseCommandLine, parseOptions } from '../options.js';

export const relayerHelp = `gridcell relayer: settles the pool from signed meter readings

Subscribes to every reading of a zone on MQTT, checks each (schema, chain, both meter
signatures, the meter serves the named cell on chain), keeps it, and once an interval's
delivery has ended and it is cleared, submits the readings of scheduled cells to the pool in
batches before the settlement window closes, then claims the interval so the money moves.
Publishes, per open channel, the readings the seller's evidence path needs. Any account with
ETH for gas can relay; it cannot change what a reading says. Runs until Ctrl-C.

Usage: gridcell relayer --key NAME [options]

Options:
  --key NAME          the key that pays for gas (password from GRIDCELL_PASSWORD or a prompt)
  --keystore DIR      key files (default ${DEFAULT_KEYSTORE_DIR})
  --manifest FILE     deployment manifest (default ${DEFAULT_MANIFEST_PATH})
  --rpc URL           node to use instead of the manifest's
  --mqtt URL          broker (default mqtt://127.0.0.1:1883)
  --zone NAME         grid zone (default z1)
  --id NAME           names this relayer's MQTT session and status (default relayer)
  --database FILE     local store (default .gridcell/relayer-<id>.sqlite)
  --clock wall|chain  whose time decides when delivery has ended (default wall)
  --batch-size N      readings per settle transaction (default 50)
  --poll-ms N         milliseconds between settlement rounds (default 2000)
  --metrics-port N    serve /metrics and /health on this port
  -h, --help          show this help
`;

const schema = z.object({
  key: z.string().min(1, 'a key name'),
  keystore: z.string().min(1).default(DEFAULT_KEYSTORE_DIR),
  manifest: z.string().min(1).default(DEFAULT_MANIFEST_PATH),
  rpc: z.string().url().optional(),
  mqtt: z.string().url().default('mqtt://127.0.0.1:1883'),
  zone: z
    .string()
    .regex(/^[A-Za-z0-9._-]{1,64}$/, 'letters, digits, dots, dashes, underscores')
    .default('z1'),
  id: z
    .string()
    .regex(/^[A-Za-z0-9._-]{1,64}$/, 'letters, digits, dots, dashes, underscores')
    .default('relayer'),
  database: z.string().min(1).optional(),
  clock: z.enum(['wall', 'chain']).default('wall'),
  'batch-size': z.coerce.number().int().min(1).max(500).default(50),
  'poll-ms': z.coerce.number().int().min(50).default(2000),
  'metrics-port': z.coerce.number().int().min(1).max(65535).optional(),
});

/** `gridcell relayer`: runs until SIGINT or SIGTERM. */
export async function relayerCommand(argv: string[], io: Io): Promise<void> {
  const { values } = parseCommandLine(
    argv,
    {
      key: { type: 'string' },
      keystore: { type: 'string' },
      manifest: { type: 'string' },
      rpc: { type: 'string' },
      mqtt: { type: 'string' },
      zone: { type: 'string' },
      id: { type: 'string' },
      database: { type: 'string' },
      clock: { type: 'string' },
      'batch-size': { type: 'string' },
      'poll-ms': { type: 'string' },
      'metrics-port': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    'relayer',
  );
  if (values.help) {
    io.out(relayerHelp);
    return;
  }
  const options = parseOptions(schema, values, 'relayer');
  const { manifest, rpcUrl } = openDeployment(options.manifest, options.rpc);
  const account = await unlockKey(io, options.keystore, options.key);
  const clients = createGridcellClients({ manifest, rpcUrl, account, pollingIntervalMs: 250 });
  if (!clients.walletClient) throw new BaseError('no wallet client for the relayer key');
  const logger = daemonLogger(io, `relayer ${options.id}`);
  const metrics = createMetrics('gridcell_relayer');
  const relayer = createRelayer({
    id: options.id,
    zone: options.zone,
    manifest,
    publicClient: clients.publicClient,
    walletClient: clients.walletClient,
    poolDomain: clients.poolDomain,
    channelsDomain: clients.channelsDomain,
    store: openRelayerStore(options.database ?? `.gridcell/relayer-${options.id}.sqlite`),
    mqttUrl: options.mqtt,
    clock: options.clock === 'chain' ? chainClock(clients.publicClient) : wallClock(),
    logger,
    metrics,
    batchSize: options['batch-size'],
    pollMs: options['poll-ms'],
  });
  const stopped = onShutdown(async (signal) => {
    logger.info(`${signal}: stopping`);
    await relayer.stop();
    await metricsServer?.close();
  });
  logger.info('starting', { account: account.address, mqtt: options.mqtt, zone: options.zone });
  await relayer.start();
  const metricsServer =
    options['metrics-port'] !== undefined
      ? await serveMetrics({
          metrics,
          port: options['metrics-port'],
          healthy: () => relayer.status().connected,
        })
      : undefined;
  await stopped;
}
