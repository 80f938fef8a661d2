#!/usr/bin/env node
// forge cannot download solc on these machines (no internet beyond the npm registry), so
// foundry.toml points `solc` at this file. It answers the two calls forge makes:
// `--version` and `--standard-json` (input on stdin), using the `solc` npm package
// (the emscripten build of the same compiler release), pinned in package.json.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const solc = require('solc');
const args = process.argv.slice(2);

if (args.includes('--version')) {
  process.stdout.write(`solc, the solidity compiler commandline interface\nVersion: ${solc.version()}\n`);
  process.exit(0);
}

if (args.includes('--standard-json')) {
  const input = readFileSync(0, 'utf8');
  // Sources arrive with their content inline; an import forge did not resolve is an error,
  // never a read from an unexpected place.
  const output = solc.compile(input, {
    import: (path) => ({ error: `import not provided by forge: ${path}` }),
  });
  // No process.exit() here: stdout to a pipe is asynchronous in Node, and exiting early
  // cuts the JSON at 64 KiB. The process ends by itself once the write has drained.
  process.stdout.write(output);
} else {
  process.stderr.write(`solc shim: unsupported arguments: ${args.join(' ')}\n`);
  process.exitCode = 2;
}
