/**
 * The `gridcell` command line: one entry, a subcommand per part of the platform.
 */
import { BaseError } from '../chain/errors/index.js';
import { devnetCommand } from './commands/devnet.js';

const commands: Record<string, { summary: string; run: (argv: string[]) => Promise<void> }> = {
  devnet: { summary: 'start a local chain (anvil) with gridcell deployed', run: devnetCommand },
};

const help = `gridcell: transactive energy after IDEA, settled on chain

Usage: gridcell <command> [options]

Commands:
${Object.entries(commands)
  .map(([name, c]) => `  ${name.padEnd(10)} ${c.summary}`)
  .join('\n')}

Run \`gridcell <command> --help\` for a command's options.
`;

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(help);
    return name ? 0 : 2;
  }
  const command = commands[name];
  if (!command) {
    process.stderr.write(`gridcell: unknown command '${name}'\n\n${help}`);
    return 2;
  }
  try {
    await command.run(rest);
    return 0;
  } catch (error) {
    if (error instanceof BaseError) {
      process.stderr.write(`gridcell ${name}: ${error.message}\n`);
      return 1;
    }
    if (error instanceof Error && 'code' in error && String(error.code).startsWith('ERR_PARSE_ARGS')) {
      process.stderr.write(`gridcell ${name}: ${error.message}\nRun \`gridcell ${name} --help\`.\n`);
      return 2;
    }
    throw error;
  }
}

process.exitCode = await main(process.argv.slice(2));
