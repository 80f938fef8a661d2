import { type ChildProcess, spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { BaseError } from '../errors/index.js';

export interface StartAnvilParameters {
  /** TCP port to listen on; an explicit port, never 0 (tests pick free ports). */
  port: number;
  host?: string;
  chainId?: number;
  /** Persist the chain to this file on exit and load it on start (anvil --state). */
  stateFile?: string;
  /** Start the chain clock here (Unix seconds) instead of now. */
  timestamp?: bigint;
  /** Give up waiting for anvil after this long, ms. */
  startTimeoutMs?: number;
}

export interface Anvil {
  rpcUrl: string;
  port: number;
  chainId: number;
  /** Stops anvil (SIGTERM, then SIGKILL after 5 s) and waits for it to exit. */
  stop(): Promise<void>;
}

export class AnvilStartError extends BaseError {
  override name = 'AnvilStartError' as const;
}

/** The anvil binary shipped in the platform package that `@foundry-rs/anvil` depends on. */
export function anvilBinaryPath(): string {
  const arch = process.arch === 'x64' ? 'amd64' : process.arch;
  const pkg = `@foundry-rs/anvil-${process.platform}-${arch}`;
  const require = createRequire(import.meta.url);
  try {
    return join(dirname(require.resolve(`${pkg}/package.json`)), 'bin', 'anvil');
  } catch (cause) {
    throw new AnvilStartError(`anvil is not installed for ${process.platform}-${process.arch}`, {
      details: `expected the npm package ${pkg}; run \`npm ci\``,
      cause,
    });
  }
}

/**
 * Starts anvil, the local EVM node from Foundry, and resolves once it accepts connections.
 * @example const anvil = await startAnvil({ port: 8545 }); ... await anvil.stop();
 */
export async function startAnvil(parameters: StartAnvilParameters): Promise<Anvil> {
  const host = parameters.host ?? '127.0.0.1';
  const chainId = parameters.chainId ?? 31337;
  const args = ['--host', host, '--port', String(parameters.port), '--chain-id', String(chainId)];
  if (parameters.stateFile) args.push('--state', parameters.stateFile);
  if (parameters.timestamp !== undefined) args.push('--timestamp', parameters.timestamp.toString());
  const child = spawn(anvilBinaryPath(), args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const rpcUrl = `http://${host}:${parameters.port}`;

  await new Promise<void>((resolve, reject) => {
    let output = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(
        new AnvilStartError(`anvil did not start on ${rpcUrl} in time`, { details: output.slice(-2000) }),
      );
    }, parameters.startTimeoutMs ?? 15_000);
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes('Listening on')) {
        clearTimeout(timer);
        child.stdout?.off('data', onData);
        resolve();
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.once('error', (cause) => {
      clearTimeout(timer);
      reject(new AnvilStartError('anvil could not be started', { cause }));
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      const inUse = /address already in use/i.test(output);
      reject(
        new AnvilStartError(
          inUse ? `port ${parameters.port} is already in use` : `anvil exited with code ${code}`,
          { details: output.slice(-2000) },
        ),
      );
    });
  });
  // Keep draining output so anvil never blocks on a full pipe.
  child.stdout?.resume();
  child.stderr?.resume();
  return { rpcUrl, port: parameters.port, chainId, stop: () => stopChild(child) };
}

function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const killer = setTimeout(() => child.kill('SIGKILL'), 5_000);
    child.once('exit', () => {
      clearTimeout(killer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}
