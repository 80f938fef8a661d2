import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['**/*.test.ts'],
    // Any node_modules: bench/ponder-app has its own, whose packages ship their own tests.
    exclude: ['**/node_modules/**', 'out/**', 'cache/**'],
    globalSetup: ['chain/test/globalSetup.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Test files share one anvil; each uses its own accounts and intervals, so they may run
    // in parallel, but the chain clock is shared: files that move it run one at a time.
    fileParallelism: false,
  },
});
