/**
 * indexer/: gridcell's on-chain facts in SQL. `createIndexer` follows a deployment into a
 * database that `openDatabase` opens (a SQLite file, or PostgreSQL by URL); the GraphQL API
 * (graphql/) reads the same tables. See docs/indexer.md.
 */
export {
  type Database,
  DatabaseError,
  isPostgresUrl,
  type OpenDatabaseParameters,
  openDatabase,
  type Row,
  type SqlValue,
} from './database/index.js';
export { createConsoleLogger, type Logger, silentLogger } from './logger.js';
export { createTablesSql, type Dialect } from './schema/createTablesSql.js';
export * as schema from './schema/tables.js';
export {
  ChainMismatchError,
  createIndexer,
  DeepReorgError,
  type Indexer,
  type IndexerParameters,
  type IndexerPhase,
  type IndexerStatus,
  shouldRetry,
} from './sync/index.js';

/** Where `gridcell indexer` keeps its SQLite file unless told otherwise. */
export const DEFAULT_DATABASE_PATH = '.gridcell/index.sqlite';
