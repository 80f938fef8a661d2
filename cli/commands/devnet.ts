import { createTestClient, http } from 'viem';
import { z } from 'zod';
import { createGridcellClients } from '../../chain/client/index.js';
import { startDevnetClock } from '../../chain/clock/index.js';
import { startDevnet } from '../../chain/devnet/index.js';
import { DEFAULT_MANIFEST_PATH } from '../../chain/manifest/index.js';
import {
  checkDeploymentOptions,
  deploymentOptions,
  deploymentOptionsHelp,
  deploymentOptionsShape,
  deploymentParameters,
} from '../deploymentOptions.js';
import { type Io, json } from '../io.js';
import { onShutdown, parseCommandLine, parseOptions } from '../options.js';

export const devnetHelp = `gridcell devnet: start a local chain with gridcell deployed

Starts anvil (from the npm package), deploys the token, cell registry, wallets, clearing
pool and debt channels, funds anvil's ten development accounts with 100,000 dEUR each,
writes the deployment manifest, and runs until Ctrl-C.

Options:
  --port N                 RPC port (default 8545)
  --chain-id N             chain id (default 31337)
${deploymentOptionsHelp}
  --speed X                run the chain clock X times faster than the wall clock, by
                           mining a block with an accelerated timestamp every 0.5 s
                           (60: a 15-minute interval passes in 15 s; default 1 = real time)
  --state FILE             persist the chain to FILE on exit and reload it on start
  --manifest FILE          where to write the manifest (default ${DEFAULT_MANIFEST_PATH})
  --json                   print the manifest as JSON instead of a summary
  -h, --help               show this help
`;

const schema = z
  .object({
    port: z.coerce.number().int().min(1).max(65535).default(8545),
    'chain-id': z.coerce.number().int().positive().default(31337),
    ...deploymentOptionsShape,
    speed: z.coerce.number().positive().max(100_000).default(1),
    state: z.string().min(1).optional(),
    manifest: z.string().min(1).default(DEFAULT_MANIFEST_PATH),
    json: z.boolean().default(false),
  })
  .superRefine(checkDeploymentOptions);

/** `gridcell devnet`: runs until SIGINT or SIGTERM. */
export async function devnetCommand(argv: string[], io: Io): Promise<void> {
  const { values } = parseCommandLine(
    argv,
    {
      port: { type: 'string' },
      'chain-id': { type: 'string' },
      ...deploymentOptions,
      speed: { type: 'string' },
      state: { type: 'string' },
      manifest: { type: 'string' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
    'devnet',
  );
  if (values.help) {
    io.out(devnetHelp);
    return;
  }
  const options = parseOptions(schema, values, 'devnet');
  const log = options.json ? () => {} : (line: string) => io.out(`devnet: ${line}\n`);
  const starting = startDevnet({
    port: options.port,
    chainId: options['chain-id'],
    ...(options.state !== undefined ? { stateFile: options.state } : {}),
    manifestPath: options.manifest,
    ...deploymentParameters(options),
    onStep: log,
  });
  // The one shutdown path, installed before anything starts: a signal during deployment
  // waits for anvil to be up and then stops it (never an orphaned anvil), and one that
  // arrives right after the summary is printed is handled, not fatal.
  let clock: ReturnType<typeof startDevnetClock> | undefined;
  const stopped = onShutdown(async (signal) => {
    log(`${signal}: stopping anvil`);
    clock?.stop();
    const started = await starting.catch(() => undefined);
    await started?.stop();
    log('stopped');
  });
  const devnet = await starting;
  clock =
    options.speed === 1
      ? undefined
      : startDevnetClock({
          publicClient: createGridcellClients({ manifest: devnet.manifest }).publicClient,
          testClient: createTestClient({ mode: 'anvil', transport: http(devnet.anvil.rpcUrl) }),
          speed: options.speed,
          onError: (error) =>
            io.err(`devnet: the clock could not mine a block: ${(error as Error).message}\n`),
        });
  if (options.json) {
    io.out(json(devnet.manifest));
  } else {
    const c = devnet.manifest.contracts;
    io.out(
      [
        '',
        `  RPC           ${devnet.anvil.rpcUrl}   (chain id ${devnet.anvil.chainId})`,
        `  token (dEUR)  ${c.token}`,
        `  registry      ${c.registry}`,
        `  wallets       ${c.wallets}`,
        `  pool          ${c.pool}`,
        `  channels      ${c.channels}`,
        `  interval      ${devnet.manifest.pool.intervalSeconds} s, gate closes ${devnet.manifest.pool.gateClosureLead} s before delivery`,
        `  channel close ${devnet.manifest.channels.challengeWindow} s challenge window, collateral withdrawals wait ${devnet.manifest.channels.withdrawalDelay} s`,
        `  manifest      ${devnet.manifestPath}`,
        `  clock         ${options.speed === 1 ? 'real time (blocks on demand)' : `${options.speed}x real time`}`,
        '',
        '  Development accounts: anvil\'s mnemonic "test test ... junk" (public keys: devnet only).',
        '  Ctrl-C stops the devnet.',
        '',
      ].join('\n'),
    );
  }
  await stopped;
}
