// Ponder beside gridcell's indexer (bench/indexer/run.ts): the same deployment, read from the
// manifest the benchmark writes (BENCH_MANIFEST), and gridcell's generated ABIs, which the
// benchmark writes to abis.js beside this file. Plain JavaScript, so that the gridcell
// typecheck does not need Ponder installed; the benchmark copies the app to a run directory
// (ponder.schema.js becomes the ponder.schema.ts Ponder looks for).
import { readFileSync } from 'node:fs';
import { createConfig } from 'ponder';
import { cellRegistryAbi, clearingPoolAbi } from './abis.js';

const manifest = JSON.parse(readFileSync(process.env.BENCH_MANIFEST ?? '', 'utf8'));

export default createConfig({
  chains: {
    devnet: { id: manifest.chainId, rpc: manifest.rpcUrl },
  },
  contracts: {
    CellRegistry: {
      abi: cellRegistryAbi,
      chain: 'devnet',
      address: manifest.contracts.registry,
      startBlock: Number(manifest.deploymentBlock),
    },
    ClearingPool: {
      abi: clearingPoolAbi,
      chain: 'devnet',
      address: manifest.contracts.pool,
      startBlock: Number(manifest.deploymentBlock),
    },
  },
});
