/**
 * The `gridcell` command line: one entry, a subcommand per part of the platform.
 */
import { BaseError } from '../chain/errors/index.js';
import type { Io } from './io.js';
import { UsageError } from './options.js';

type Command = { summary: string; run: (argv: string[], io: Io) => Promise<void> };

/**
 * A command whose module loads only when it runs: `gridcell wallet` does not load libp2p,
 * the indexer or the demo (loading every command cost about 6 s of startup).
 */
function lazy<M>(summary: string, load: () => Promise<M>, pick: (m: M) => Command['run']): Command {
  return { summary, run: async (argv, io) => pick(await load())(argv, io) };
}

export const commands: Record<string, Command> = {
  demo: lazy(
    'the IDEA demonstration complex end to end, with a live dashboard',
    () => import('./commands/demo.js'),
    (m) => m.demoCommand,
  ),
  devnet: lazy(
    'start a local chain (anvil) with gridcell deployed',
    () => import('./commands/devnet.js'),
    (m) => m.devnetCommand,
  ),
  deploy: lazy(
    'deploy gridcell to any EVM chain',
    () => import('./commands/deploy.js'),
    (m) => m.deployCommand,
  ),
  keys: lazy(
    'create, import and list encrypted keys',
    () => import('./commands/keys.js'),
    (m) => m.keysCommand,
  ),
  cells: lazy(
    'register and manage power cells',
    () => import('./commands/cells.js'),
    (m) => m.cellsCommand,
  ),
  wallet: lazy(
    "deposit, withdraw, balances, the agent's daily cap",
    () => import('./commands/wallet.js'),
    (m) => m.walletCommand,
  ),
  market: lazy(
    'orders, cancellations, interval results, clearing',
    () => import('./commands/market.js'),
    (m) => m.marketCommand,
  ),
  channel: lazy(
    'bilateral deals: debt payment channels',
    () => import('./commands/channel.js'),
    (m) => m.channelCommand,
  ),
  oracle: lazy(
    'meter oracle: read meters, sign and publish interval readings',
    () => import('./commands/oracle.js'),
    (m) => m.oracleCommand,
  ),
  relayer: lazy(
    'settle the pool from signed readings on MQTT',
    () => import('./commands/relayer.js'),
    (m) => m.relayerCommand,
  ),
  broker: lazy(
    'the embedded MQTT broker (aedes)',
    () => import('./commands/broker.js'),
    (m) => m.brokerCommand,
  ),
  agent: lazy(
    'the software agent of a cell: deals, pool bids, services over libp2p',
    () => import('./commands/agent.js'),
    (m) => m.agentCommand,
  ),
  indexer: lazy(
    'index every gridcell event into SQL (SQLite or PostgreSQL)',
    () => import('./commands/indexer.js'),
    (m) => m.indexerCommand,
  ),
  serve: lazy(
    'the GraphQL API over the index (/graphql, /health, /ready)',
    () => import('./commands/serve.js'),
    (m) => m.serveCommand,
  ),
  grid: lazy(
    'the Neural Grid controller: schedules to setpoints over Modbus',
    () => import('./commands/grid.js'),
    (m) => m.gridCommand,
  ),
};

const help = `gridcell: transactive energy after IDEA, settled on chain

Usage: gridcell <command> [options]

Commands:
${Object.entries(commands)
  .map(([name, c]) => `  ${name.padEnd(10)} ${c.summary}`)
  .join('\n')}

Run \`gridcell <command> --help\` for a command's options.
`;

/**
 * Runs one command line.
 * @returns The exit code: 0 done, 1 failed, 2 wrong usage.
 */
export async function run(argv: string[], io: Io): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    io.out(help);
    return name ? 0 : 2;
  }
  const command = commands[name];
  if (!command) {
    io.err(`gridcell: unknown command '${name}'\n\n${help}`);
    return 2;
  }
  try {
    await command.run(rest, io);
    return 0;
  } catch (error) {
    if (error instanceof BaseError) {
      io.err(`gridcell ${name}: ${error.message}\n`);
      return error instanceof UsageError ? 2 : 1;
    }
    // Anything else (viem's errors among them: no ETH for gas, a node that answers with an
    // error) is still said in one line; the stack only when asked for.
    const short =
      (error as { shortMessage?: string }).shortMessage ?? (error as Error).message ?? String(error);
    io.err(`gridcell ${name}: ${short}\n`);
    if (io.env.GRIDCELL_DEBUG) io.err(`${(error as Error).stack ?? ''}\n`);
    return 1;
  }
}
