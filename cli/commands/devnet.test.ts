import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { startAnvil } from '../../chain/devnet/index.js';
import { readManifest } from '../../chain/manifest/index.js';

const bin = join(import.meta.dirname, '..', '..', 'bin', 'gridcell.js');
const port = 28_545 + (process.pid % 1000);

/** Starts `gridcell devnet` as its own process and resolves once it prints its summary. */
function startDevnet(args: string[]) {
  const child = spawn(process.execPath, [bin, 'devnet', '--port', String(port), ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (c: Buffer) => {
    out += c.toString();
  });
  child.stderr.on('data', (c: Buffer) => {
    err += c.toString();
  });
  const ready = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`devnet not ready in 60 s:\n${out}\n${err}`)), 60_000);
    child.stdout.on('data', () => {
      if (out.includes('Ctrl-C stops the devnet')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', (code) => reject(new Error(`devnet exited with ${code}:\n${out}\n${err}`)));
  });
  // A test that expects the process to fail never awaits `ready`.
  ready.catch(() => {});
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, ready, exited, output: () => out, errors: () => err };
}

describe('gridcell devnet, as a process', () => {
  it('prints what it started, stops cleanly on SIGINT, and --state brings the same deployment back', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gridcell-devnet-'));
    const manifest = join(dir, 'deployment.json');
    const state = join(dir, 'chain.json');
    const first = startDevnet(['--manifest', manifest, '--state', state, '--speed', '60']);
    await first.ready;
    expect(first.output()).toMatch(/RPC {11}http:\/\/127\.0\.0\.1:\d+/);
    expect(first.output()).toMatch(/clock {9}60x real time/);
    const deployed = readManifest(manifest);
    first.child.kill('SIGINT');
    expect(await first.exited).toBe(0);
    expect(first.output()).toMatch(/SIGINT: stopping anvil\ndevnet: stopped/);
    expect(existsSync(state)).toBe(true);

    const second = startDevnet(['--manifest', manifest, '--state', state]);
    await second.ready;
    expect(second.output()).toMatch(/the deployment in .* is live/);
    expect(readManifest(manifest).contracts).toEqual(deployed.contracts);
    second.child.kill('SIGTERM');
    expect(await second.exited).toBe(0);
  });

  it('a SIGTERM in the middle of deployment still stops anvil and exits 0', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gridcell-devnet-'));
    const run = startDevnet(['--manifest', join(dir, 'deployment.json')]);
    await new Promise<void>((resolve) => {
      run.child.stdout.on('data', () => {
        if (run.output().includes('deployed DevnetToken')) resolve();
      });
    });
    run.child.kill('SIGTERM');
    expect(await run.exited).toBe(0);
    expect(run.output()).toMatch(/SIGTERM: stopping anvil\n(.*\n)*devnet: stopped\n$/);
    // The port is free again: anvil is gone.
    const anvil = await startAnvil({ port });
    await anvil.stop();
  });

  it('error: an invalid option is named with what was expected, exit code 2', async () => {
    const run = startDevnet(['--speed', 'fast']);
    const code = await run.exited;
    expect(code).toBe(2);
    expect(run.errors()).toMatch(/invalid --speed "fast": .*number/);
  });
});
