#!/usr/bin/env node
// Runs forge and exits with forge's own exit code.
//
// The `forge` command that @foundry-rs/forge 1.7.1 installs (its bin.mjs) spawns the platform
// binary but never passes the child's exit code on: `forge test` with failing tests exits 0
// through it, and `npm test` would pass with red contracts. This resolves the same platform
// binary (@foundry-rs/forge-<os>-<arch>/bin/forge) and propagates its status and signals.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const arch = { x64: 'amd64', arm64: 'arm64' }[process.arch] ?? process.arch;
const os = { win32: 'win32' }[process.platform] ?? process.platform;
const exe = process.platform === 'win32' ? 'forge.exe' : 'forge';

let binary;
try {
  binary = require.resolve(`@foundry-rs/forge-${os}-${arch}/bin/${exe}`);
} catch {
  binary = undefined;
}
if (!binary || !existsSync(binary)) {
  console.error(
    `forge: no binary for ${process.platform}/${process.arch} (looked for @foundry-rs/forge-${os}-${arch})`,
  );
  process.exit(1);
}

const child = spawn(binary, process.argv.slice(2), { stdio: 'inherit' });
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => child.kill(signal));
child.on('error', (error) => {
  console.error(`forge: ${error.message}`);
  process.exit(1);
});
child.on('exit', (code, signal) => {
  if (signal) process.kill(process.pid, signal);
  else process.exit(code ?? 1);
});
