import { createPublicClient, createWalletClient, defineChain, http } from 'viem';
import { privateKeyToAccount } from 'viem/accounts';
import { z } from 'zod';
import { abiHash } from '../../chain/abi/contracts.generated.js';
import { deployCore } from '../../chain/devnet/index.js';
import { DEFAULT_KEYSTORE_DIR, openKeystore } from '../../chain/keystore/index.js';
import { DEFAULT_MANIFEST_PATH, type Manifest, writeManifest } from '../../chain/manifest/index.js';
import { explainNetworkError, passwordFor } from '../context.js';
import { type Io, json } from '../io.js';
import { arg, parseCommandLine, parseOptions, UsageError } from '../options.js';

export const deployHelp = `gridcell deploy: deploy gridcell to any EVM chain

Deploys the cell registry, the wallets and the clearing pool with the key --key from the
keystore, authorises the pool in the wallets, and writes the deployment manifest.

Options:
  --rpc URL                the chain's JSON-RPC endpoint (required)
  --key NAME               deployer key (password from GRIDCELL_PASSWORD or a prompt)
  --token ADDRESS          the settlement token (a plain ERC-20 with ERC-2612 permit)
  --devnet-token           deploy the devnet token (dEUR, open faucet) instead: test chains only
  --interval-seconds N     delivery interval length, s (default 900)
  --gate-lead N            gate closure before delivery, s (default 300)
  --settlement-window N    time to hand in readings after delivery, s (default 3600)
  --max-orders N           orders per interval (default 1200)
  --keystore DIR           key files (default ${DEFAULT_KEYSTORE_DIR})
  --manifest FILE          where to write the manifest (default ${DEFAULT_MANIFEST_PATH})
  --json                   print the manifest as JSON
  -h, --help               show this help

The deployer remains the wallets' admin, who may authorise more markets (the channels);
renounce it once the deployment is complete (docs/contracts.md).
`;

const schema = z
  .object({
    rpc: z.string().url('expected an http(s) URL'),
    key: z.string().min(1, 'expected a key name'),
    token: arg.address.optional(),
    'devnet-token': z.boolean().default(false),
    'interval-seconds': arg.positiveInt.default(900n),
    'gate-lead': arg.uint.default(300n),
    'settlement-window': arg.positiveInt.default(3600n),
    'max-orders': arg.positiveInt.refine((n) => n < 2n ** 32n, 'expected below 2^32').default(1200n),
    keystore: z.string().default(DEFAULT_KEYSTORE_DIR),
    manifest: z.string().default(DEFAULT_MANIFEST_PATH),
    json: z.boolean().default(false),
  })
  .refine((o) => o.token !== undefined || o['devnet-token'], {
    message: 'pass --token ADDRESS, or --devnet-token on a test chain',
    path: ['token'],
  })
  .refine((o) => !(o.token !== undefined && o['devnet-token']), {
    message: 'pass --token or --devnet-token, not both',
    path: ['devnet-token'],
  });

/** `gridcell deploy` */
export async function deployCommand(argv: string[], io: Io): Promise<void> {
  const { values } = parseCommandLine(
    argv,
    {
      rpc: { type: 'string' },
      key: { type: 'string' },
      token: { type: 'string' },
      'devnet-token': { type: 'boolean' },
      'interval-seconds': { type: 'string' },
      'gate-lead': { type: 'string' },
      'settlement-window': { type: 'string' },
      'max-orders': { type: 'string' },
      keystore: { type: 'string' },
      manifest: { type: 'string' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
    'deploy',
  );
  if (values.help) {
    io.out(deployHelp);
    return;
  }
  const o = parseOptions(schema, values, 'deploy');
  if (o['gate-lead'] >= o['interval-seconds'] * 96n)
    throw new UsageError('deploy: --gate-lead must be under 96 intervals');
  const store = openKeystore(o.keystore);
  store.address(o.key);
  const account = privateKeyToAccount(await store.privateKey(o.key, await passwordFor(io, `key "${o.key}"`)));
  const log = o.json ? () => {} : (line: string) => io.out(`deploy: ${line}\n`);
  let chainId: number;
  const probe = createPublicClient({ transport: http(o.rpc) });
  try {
    chainId = await probe.getChainId();
  } catch (error) {
    throw explainNetworkError(error, o.rpc);
  }
  const chain = defineChain({
    id: chainId,
    name: `chain ${chainId}`,
    nativeCurrency: { name: 'Ether', symbol: 'ETH', decimals: 18 },
    rpcUrls: { default: { http: [o.rpc] } },
  });
  const publicClient = createPublicClient({ chain, transport: http(o.rpc), pollingInterval: 200 });
  const walletClient = createWalletClient({ chain, transport: http(o.rpc), account });
  log(`deploying to chain ${chainId} at ${o.rpc} from ${account.address}`);
  const pool = {
    intervalSeconds: o['interval-seconds'],
    gateClosureLead: o['gate-lead'],
    settlementWindow: o['settlement-window'],
    maxOrdersPerInterval: o['max-orders'],
  };
  let deployment: Awaited<ReturnType<typeof deployCore>>;
  try {
    deployment = await deployCore({
      publicClient,
      walletClient,
      pool,
      ...(o.token ? { token: o.token } : {}),
      onStep: log,
    });
  } catch (error) {
    throw explainNetworkError(error, o.rpc);
  }
  const manifest: Manifest = {
    version: 1,
    chainId,
    rpcUrl: o.rpc,
    deploymentBlock: deployment.deploymentBlock,
    abiHash,
    pool,
    contracts: {
      token: deployment.token,
      registry: deployment.registry,
      wallets: deployment.wallets,
      pool: deployment.pool,
    },
  };
  const path = writeManifest(o.manifest, manifest);
  if (o.json) io.out(json(manifest));
  else log(`wrote the deployment manifest to ${path}`);
}
