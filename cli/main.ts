/**
 * The `gridcell` command line: one entry, a subcommand per part of the platform.
 */
import { BaseError } from '../chain/errors/index.js';
import { agentCommand } from './commands/agent.js';
import { brokerCommand } from './commands/broker.js';
import { cellsCommand } from './commands/cells.js';
import { channelCommand } from './commands/channel.js';
import { demoCommand } from './commands/demo.js';
import { deployCommand } from './commands/deploy.js';
import { devnetCommand } from './commands/devnet.js';
import { gridCommand } from './commands/grid.js';
import { indexerCommand } from './commands/indexer.js';
import { keysCommand } from './commands/keys.js';
import { marketCommand } from './commands/market.js';
import { oracleCommand } from './commands/oracle.js';
import { relayerCommand } from './commands/relayer.js';
import { serveCommand } from './commands/serve.js';
import { walletCommand } from './commands/wallet.js';
import type { Io } from './io.js';
import { UsageError } from './options.js';

type Command = { summary: string; run: (argv: string[], io: Io) => Promise<void> };

export const commands: Record<string, Command> = {
  demo: { summary: 'the IDEA demonstration complex end to end, with a live dashboard', run: demoCommand },
  devnet: { summary: 'start a local chain (anvil) with gridcell deployed', run: devnetCommand },
  deploy: { summary: 'deploy gridcell to any EVM chain', run: deployCommand },
  keys: { summary: 'create, import and list encrypted keys', run: keysCommand },
  cells: { summary: 'register and manage power cells', run: cellsCommand },
  wallet: { summary: "deposit, withdraw, balances, the agent's daily cap", run: walletCommand },
  market: { summary: 'orders, cancellations, interval results, clearing', run: marketCommand },
  channel: { summary: 'bilateral deals: debt payment channels', run: channelCommand },
  oracle: { summary: 'meter oracle: read meters, sign and publish interval readings', run: oracleCommand },
  relayer: { summary: 'settle the pool from signed readings on MQTT', run: relayerCommand },
  broker: { summary: 'the embedded MQTT broker (aedes)', run: brokerCommand },
  agent: {
    summary: 'the software agent of a cell: deals, pool bids, services over libp2p',
    run: agentCommand,
  },
  indexer: { summary: 'index every gridcell event into SQL (SQLite or PostgreSQL)', run: indexerCommand },
  serve: { summary: 'the GraphQL API over the index (/graphql, /health, /ready)', run: serveCommand },
  grid: { summary: 'the Neural Grid controller: schedules to setpoints over Modbus', run: gridCommand },
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
