/**
 * graphql/: the GraphQL API over the indexer's tables (graphql-yoga at /graphql), with
 * /health and /ready beside it. Lists paginate by cursor with a maximum page size;
 * relations load in batches; depth and cost are limited before a query runs; subscriptions
 * (server-sent events) deliver cleared intervals and settlements. See docs/graphql.md.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createSchema, createYoga, type Plugin, type YogaInitialContext } from 'graphql-yoga';
import type { Database } from '../indexer/database/index.js';
import type { Logger } from '../indexer/logger.js';
import { createEventFeed } from './feed/index.js';
import { costLimitRule, depthLimitRule } from './limits/index.js';
import { createLoaders } from './schema/loaders.js';
import { createResolvers, type GraphqlContext, type ServedStatus } from './schema/resolvers.js';
import { typeDefs } from './schema/typeDefs.js';

export type { ServedStatus } from './schema/resolvers.js';

export interface GraphqlServerParameters {
  /** The indexer's database (a reader: the server never writes). */
  db: Database;
  logger: Logger;
  /** The indexing state for /ready and `indexerStatus`. */
  status: () => Promise<ServedStatus>;
  /** Mask unexpected errors as "Unexpected error." (default true). */
  production?: boolean;
  maxDepth?: number;
  maxCost?: number;
  maxPageSize?: number;
  defaultPageSize?: number;
  /** How often subscriptions look for new events, ms (default 250). */
  feedPollIntervalMs?: number;
}

export interface ListeningServer {
  url: string;
  port: number;
  close(): Promise<void>;
}

export interface GraphqlServer {
  /** Answers one request in process (tests, or embedding in another server). */
  fetch(request: Request): Promise<Response>;
  /** Listens on `host:port` (port 0 picks a free one). */
  listen(port: number, host?: string): Promise<ListeningServer>;
  /** Stops the subscription feed (and the listener, if any). */
  close(): Promise<void>;
}

/** The defaults of the limits (docs/graphql.md). */
export const graphqlDefaults = {
  maxDepth: 8,
  maxCost: 20_000,
  maxPageSize: 100,
  defaultPageSize: 20,
} as const;

/**
 * Builds the GraphQL server over `db`.
 * @example
 * const server = createGraphqlServer({ db, logger, status: async () => indexer.status() });
 * const { url } = await server.listen(4000);
 */
export function createGraphqlServer(parameters: GraphqlServerParameters): GraphqlServer {
  const { db, logger } = parameters;
  const production = parameters.production ?? true;
  const limits = {
    maxPageSize: parameters.maxPageSize ?? graphqlDefaults.maxPageSize,
    defaultPageSize: parameters.defaultPageSize ?? graphqlDefaults.defaultPageSize,
  };
  const maxDepth = parameters.maxDepth ?? graphqlDefaults.maxDepth;
  const maxCost = parameters.maxCost ?? graphqlDefaults.maxCost;
  const feed = createEventFeed({
    db,
    logger,
    ...(parameters.feedPollIntervalMs !== undefined ? { pollIntervalMs: parameters.feedPollIntervalMs } : {}),
  });
  const limitsPlugin: Plugin = {
    onValidate({ addValidationRule }) {
      addValidationRule(depthLimitRule(maxDepth));
      addValidationRule(costLimitRule({ maxCost, assumedListSize: limits.maxPageSize }));
    },
  };
  const yoga = createYoga<Record<string, unknown>, GraphqlContext>({
    schema: createSchema<Record<string, unknown> & YogaInitialContext & GraphqlContext>({
      typeDefs,
      resolvers: createResolvers({ feed, db, status: parameters.status, limits }),
    }),
    graphqlEndpoint: '/graphql',
    healthCheckEndpoint: '/yoga-health',
    landingPage: false,
    graphiql: !production,
    maskedErrors: { isDev: !production },
    logging: {
      debug: () => {},
      info: () => {},
      warn: (...args: unknown[]) => logger.warn(args.map(String).join(' ')),
      error: (...args: unknown[]) => logger.error(args.map(String).join(' ')),
    },
    context: () => ({ db, loaders: createLoaders(db) }),
    plugins: [limitsPlugin],
  });

  async function health(): Promise<{ status: number; body: unknown }> {
    try {
      await db.all('SELECT 1 AS "ok"');
      return { status: 200, body: { status: 'ok' } };
    } catch (error) {
      return { status: 503, body: { status: 'database unreachable', error: (error as Error).message } };
    }
  }

  async function ready(): Promise<{ status: number; body: unknown }> {
    try {
      const s = await parameters.status();
      return { status: s.ready ? 200 : 503, body: s };
    } catch (error) {
      return { status: 503, body: { ready: false, error: (error as Error).message } };
    }
  }

  const routes: Record<string, () => Promise<{ status: number; body: unknown }>> = {
    '/health': health,
    '/ready': ready,
  };

  let server: Server | undefined;

  return {
    async fetch(request) {
      const route = routes[new URL(request.url).pathname];
      if (route) {
        const { status, body } = await route();
        return new Response(JSON.stringify(body), {
          status,
          headers: { 'content-type': 'application/json' },
        });
      }
      return yoga.fetch(request);
    },
    async listen(port, host = '127.0.0.1') {
      const handler = (req: IncomingMessage, res: ServerResponse) => {
        const route = routes[(req.url ?? '/').split('?')[0] ?? '/'];
        if (!route) {
          void yoga(req, res);
          return;
        }
        void route().then(({ status, body }) => {
          res.writeHead(status, { 'content-type': 'application/json' });
          res.end(JSON.stringify(body));
        });
      };
      const listening = createServer(handler);
      server = listening;
      await new Promise<void>((resolve, reject) => {
        listening.once('error', reject);
        listening.listen(port, host, () => {
          listening.off('error', reject);
          resolve();
        });
      });
      const address = listening.address();
      const actual = typeof address === 'object' && address ? address.port : port;
      const url = `http://${host}:${actual}`;
      logger.info(`GraphQL at ${url}/graphql, health at ${url}/health, readiness at ${url}/ready`);
      return {
        url,
        port: actual,
        close: () =>
          new Promise<void>((resolve) => {
            listening.closeAllConnections();
            listening.close(() => resolve());
          }),
      };
    },
    async close() {
      feed.close();
      if (server) {
        const s = server;
        server = undefined;
        s.closeAllConnections();
        await new Promise<void>((resolve) => s.close(() => resolve()));
      }
    },
  };
}

/**
 * The indexing state read from the database and the node: for a server that does not run
 * the indexer itself.
 */
export function databaseStatus(parameters: {
  db: Database;
  finalityDepth: number;
  headBlock?: () => Promise<number>;
}): () => Promise<ServedStatus> {
  return async () => {
    const [row] = await parameters.db.all<{ n: number }>(
      'SELECT "block_number" AS "n" FROM "checkpoint" WHERE "id" = 1',
    );
    const indexed = row ? Number(row.n) : null;
    const head = parameters.headBlock ? await parameters.headBlock() : indexed;
    const finalized = head === null ? null : head - parameters.finalityDepth;
    return {
      indexedBlock: indexed,
      headBlock: head,
      finalizedBlock: finalized,
      lagBlocks: head === null || indexed === null ? null : Math.max(0, head - indexed),
      ready: indexed !== null && finalized !== null && indexed >= finalized,
    };
  };
}
