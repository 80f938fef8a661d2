/**
 * The databases the indexer tests run against: a SQLite file always; PostgreSQL when
 * GRIDCELL_TEST_DATABASE_URL names a server (scripts/ci-postgres.sh starts one in CI).
 * Each test gets its own SQLite file or its own PostgreSQL database.
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import pg from 'pg';

export const postgresTestUrl = process.env.GRIDCELL_TEST_DATABASE_URL || undefined;

export interface Backend {
  name: 'sqlite' | 'postgres';
  /** Whether the backend can run here. */
  available: boolean;
  /** A fresh, empty database for one test. */
  url(label: string): Promise<string>;
  /** Drops what `url` created. */
  cleanup(): Promise<void>;
}

let warned = false;
/** Says once, on stderr, why the PostgreSQL tests are skipped. */
export function reportSkippedPostgres(): void {
  if (postgresTestUrl || warned) return;
  warned = true;
  process.stderr.write(
    'indexer tests: PostgreSQL tests skipped: GRIDCELL_TEST_DATABASE_URL is not set (eval "$(scripts/ci-postgres.sh)" starts a server and sets it)\n',
  );
}

/** The backends for test files that keep their SQLite files under `dir`. */
export function testBackends(dir: string): Backend[] {
  const created: string[] = [];
  const admin = async <T>(work: (client: pg.Client) => Promise<T>): Promise<T> => {
    const client = new pg.Client({ connectionString: postgresTestUrl });
    await client.connect();
    try {
      return await work(client);
    } finally {
      await client.end();
    }
  };
  return [
    {
      name: 'sqlite',
      available: true,
      url: async (label) => join(dir, `${label}-${randomBytes(4).toString('hex')}.sqlite`),
      cleanup: async () => {},
    },
    {
      name: 'postgres',
      available: postgresTestUrl !== undefined,
      async url(label) {
        const name = `gridcell_${label.replace(/\W/g, '_')}_${randomBytes(4).toString('hex')}`.toLowerCase();
        await admin((c) => c.query(`CREATE DATABASE "${name}"`));
        created.push(name);
        const url = new URL(postgresTestUrl as string);
        url.pathname = `/${name}`;
        return url.toString();
      },
      async cleanup() {
        for (const name of created.splice(0)) {
          await admin((c) => c.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`));
        }
      },
    },
  ];
}
