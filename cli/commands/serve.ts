import { z } from 'zod';
import { createGraphqlServer, databaseStatus, type ServedStatus } from '../../graphql/index.js';
import {
  createConsoleLogger,
  createIndexer,
  type Database,
  type Indexer,
  isPostgresUrl,
  openDatabase,
} from '../../indexer/index.js';
import type { Io } from '../io.js';
import { onShutdown, parseCommandLine, parseOptions } from '../options.js';
import { connectChain, databaseUrl, indexingOptions, indexingShape } from './indexer.js';

export const serveHelp = `gridcell serve: the GraphQL API over the index

Serves GraphQL at /graphql (queries, cursor pagination, subscriptions over server-sent
events), /health (the database answers) and /ready (indexed up to head - finality depth;
the body has the lag). With --index it also runs the indexer in the same process.

Options:
  --port N                listen port (default 4000)
  --host HOST             listen address (default 127.0.0.1)
  --index                 run the indexer in this process too
  --development           show error details and GraphiQL (default: errors masked)
  --max-page-size N       largest \`first\` a list accepts (default 100)
  --max-depth N           deepest query accepted (default 8)
  --max-cost N            costliest query accepted (default 20000; docs/graphql.md)
  --manifest FILE         deployment manifest (for --index, and for the head on /ready)
  --rpc URL               node to use instead of the manifest's
  --database PATH|URL     SQLite file or postgres:// URL (default DATABASE_URL, else
                          .gridcell/index.sqlite)
  --finality-depth N      blocks below head - N are final (default 12)
  --max-block-range N     with --index: widest eth_getLogs request (default 10000)
  --poll-interval MS      with --index: how often to look for a new block (default 500)
  -h, --help              show this help
`;

const schema = z.object({
  ...indexingShape,
  port: z.coerce.number().int().min(0).max(65535).default(4000),
  host: z.string().min(1).default('127.0.0.1'),
  index: z.boolean().default(false),
  development: z.boolean().default(false),
  'max-page-size': z.coerce.number().int().min(1).max(10_000).default(100),
  'max-depth': z.coerce.number().int().min(1).max(100).default(8),
  'max-cost': z.coerce.number().int().min(1).default(20_000),
});

/** `gridcell serve`: runs until SIGINT or SIGTERM. */
export async function serveCommand(argv: string[], io: Io): Promise<void> {
  const { values } = parseCommandLine(
    argv,
    {
      ...indexingOptions,
      port: { type: 'string' },
      host: { type: 'string' },
      index: { type: 'boolean' },
      development: { type: 'boolean' },
      'max-page-size': { type: 'string' },
      'max-depth': { type: 'string' },
      'max-cost': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    'serve',
  );
  if (values.help) {
    io.out(serveHelp);
    return;
  }
  const options = parseOptions(schema, values, 'serve');
  const logger = createConsoleLogger('serve', io.err);
  const url = databaseUrl(options.database, io.env);
  const chain = await connectChain(options);
  const writer: Database | undefined = options.index ? await openDatabase({ url }) : undefined;
  // SQLite: a second, read-only connection, so queries never see the indexer's open transaction.
  const reader =
    writer && isPostgresUrl(url) ? writer : await openDatabase({ url, readonly: !isPostgresUrl(url) });
  let indexer: Indexer | undefined;
  let status: () => Promise<ServedStatus>;
  if (writer) {
    const running = createIndexer({
      publicClient: chain.publicClient,
      manifest: chain.manifest,
      db: writer,
      logger: createConsoleLogger('indexer', io.err),
      finalityDepth: options['finality-depth'],
      maxBlockRange: options['max-block-range'],
      pollIntervalMs: options['poll-interval'],
    });
    indexer = running;
    status = async () => running.status();
  } else {
    status = databaseStatus({
      db: reader,
      finalityDepth: options['finality-depth'],
      headBlock: async () => Number(await chain.publicClient.getBlockNumber({ cacheTime: 0 })),
    });
  }
  const server = createGraphqlServer({
    db: reader,
    logger,
    status,
    production: !options.development,
    maxPageSize: options['max-page-size'],
    maxDepth: options['max-depth'],
    maxCost: options['max-cost'],
  });
  const stopped = onShutdown(async (signal) => {
    logger.info(`${signal}: closing`);
    await server.close();
    await indexer?.stop();
    if (reader !== writer) await reader.close();
    await writer?.close();
    logger.info('stopped');
  });
  await indexer?.start();
  await server.listen(options.port, options.host);
  const failed = indexer
    ? indexer.done().then(
        () => undefined,
        (error: unknown) => error,
      )
    : new Promise<undefined>(() => {});
  const outcome = await Promise.race([stopped.then(() => undefined), failed]);
  if (outcome !== undefined) {
    await server.close();
    throw outcome;
  }
}
