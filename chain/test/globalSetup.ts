/**
 * vitest global setup: one real anvil with gridcell deployed, shared by every test file.
 * Tests read its manifest with `inject('manifestPath')`.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type {} from 'vitest';
import type { TestProject } from 'vitest/node';
import { defaultChannelParameters, defaultPoolParameters, startDevnet } from '../devnet/index.js';

declare module 'vitest' {
  export interface ProvidedContext {
    manifestPath: string;
    rpcUrl: string;
  }
}

/** An explicit port per run (anvil never gets port 0), away from the default 8545. */
export const TEST_ANVIL_PORT = 18_545 + (process.pid % 1000);

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const dir = mkdtempSync(join(tmpdir(), 'gridcell-test-'));
  const devnet = await startDevnet({
    port: TEST_ANVIL_PORT,
    pool: defaultPoolParameters,
    channels: defaultChannelParameters,
    manifestPath: join(dir, 'deployment.json'),
  });
  project.provide('manifestPath', devnet.manifestPath);
  project.provide('rpcUrl', devnet.anvil.rpcUrl);
  return async () => {
    await devnet.stop();
    rmSync(dir, { recursive: true, force: true });
  };
}
