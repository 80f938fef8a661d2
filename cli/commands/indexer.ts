import { createPublicClient, http } from 'viem';
import { z } from 'zod';
import { createGridcellClients } from '../../chain/client/index.js';
import { BaseError } from '../../chain/errors/index.js';
import { DEFAULT_MANIFEST_PATH } from '../../chain/manifest/index.js';
import {
  createConsoleLogger,
  createIndexer,
  type Database,
  DEFAULT_DATABASE_PATH,
  openDatabase,
} from '../../indexer/index.js';
import { explainNetworkError, openDeployment } from '../context.js';
import type { Io } from '../io.js';
import { onShutdown, parseCommandLine, parseOptions } from '../options.js';

export const indexerHelp = `gridcell indexer: every gridcell event into SQL

Backfills the events of the cell registry, wallets, clearing pool and debt channels from
the deployment block with eth_getLogs (block ranges adapt to the node), then follows the
head. Blocks within the finality depth are checked by hash: a reorganisation rolls the
data back and replays. Runs until Ctrl-C; a restart resumes at the checkpoint.

Options:
  --manifest FILE         deployment manifest (default ${DEFAULT_MANIFEST_PATH})
  --rpc URL               node to use instead of the manifest's
  --database PATH|URL     SQLite file (default ${DEFAULT_DATABASE_PATH}), or a postgres:// URL;
                          without it, DATABASE_URL is used when set
  --finality-depth N      blocks below head - N are final (default 12)
  --max-block-range N     widest eth_getLogs request, blocks (default 10000)
  --poll-interval MS      how often to look for a new block once caught up (default 500)
  -h, --help              show this help
`;

/** Options the indexer and `serve --index` share. */
export const indexingOptions = {
  manifest: { type: 'string' },
  rpc: { type: 'string' },
  database: { type: 'string' },
  'finality-depth': { type: 'string' },
  'max-block-range': { type: 'string' },
  'poll-interval': { type: 'string' },
} as const;

export const indexingShape = {
  manifest: z.string().min(1).default(DEFAULT_MANIFEST_PATH),
  rpc: z.string().url().optional(),
  database: z.string().min(1).optional(),
  'finality-depth': z.coerce.number().int().min(0).max(100_000).default(12),
  'max-block-range': z.coerce.number().int().min(1).max(1_000_000).default(10_000),
  'poll-interval': z.coerce.number().int().min(10).max(60_000).default(500),
};

/** The database to use: --database, else DATABASE_URL, else the default SQLite file. */
export function databaseUrl(option: string | undefined, env: Io['env']): string {
  return option ?? (env.DATABASE_URL || DEFAULT_DATABASE_PATH);
}

/** Opens the manifest's chain and checks the node serves it. */
export async function connectChain(options: { manifest: string; rpc?: string | undefined }) {
  const { manifest, rpcUrl } = openDeployment(options.manifest, options.rpc);
  const { chain } = createGridcellClients({ manifest, rpcUrl });
  // eth_getLogs answers can be large before the adaptive range has learnt the chain's
  // density: allow 128 MiB (viem's default is 10 MiB) and a minute per request.
  const publicClient = createPublicClient({
    chain,
    transport: http(rpcUrl, { maxResponseBodySize: 128 * 2 ** 20, timeout: 60_000 }),
    pollingInterval: 500,
  });
  try {
    const chainId = await publicClient.getChainId();
    if (chainId !== manifest.chainId) {
      throw new BaseError(
        `the node at ${rpcUrl} serves chain ${chainId}, the manifest is for chain ${manifest.chainId}`,
      );
    }
  } catch (error) {
    throw explainNetworkError(error, rpcUrl);
  }
  return { manifest, publicClient, rpcUrl };
}

/** `gridcell indexer`: runs until SIGINT or SIGTERM. */
export async function indexerCommand(argv: string[], io: Io): Promise<void> {
  const { values } = parseCommandLine(
    argv,
    { ...indexingOptions, help: { type: 'boolean', short: 'h' } },
    'indexer',
  );
  if (values.help) {
    io.out(indexerHelp);
    return;
  }
  const options = parseOptions(z.object(indexingShape), values, 'indexer');
  const logger = createConsoleLogger('indexer', io.err);
  const { manifest, publicClient } = await connectChain(options);
  const db: Database = await openDatabase({ url: databaseUrl(options.database, io.env) });
  const indexer = createIndexer({
    publicClient,
    manifest,
    db,
    logger,
    finalityDepth: options['finality-depth'],
    maxBlockRange: options['max-block-range'],
    pollIntervalMs: options['poll-interval'],
  });
  const stopped = onShutdown(async (signal) => {
    logger.info(`${signal}: finishing the current step`);
    await indexer.stop();
    await db.close();
    const s = indexer.status();
    logger.info(`stopped at block ${s.indexedBlock} (${s.eventsIndexed} event(s) written this run)`);
  });
  await indexer.start();
  const failed = indexer.done().then(
    () => undefined,
    (error: unknown) => error,
  );
  const outcome = await Promise.race([stopped.then(() => undefined), failed]);
  if (outcome !== undefined) {
    await db.close();
    throw outcome;
  }
}
