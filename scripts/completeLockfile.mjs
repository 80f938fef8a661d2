#!/usr/bin/env node
// npm records an optional dependency in package-lock.json only when it can fetch its
// manifest. The registry these machines reach lacks some other-platform builds of forge,
// anvil, cast and biome (for example @foundry-rs/anvil-darwin-amd64 answers 404), so
// `npm install` leaves them out, and `npm ci` then refuses the lock file ("Missing: ... from
// lock file"). This adds each missing platform package as an optional entry with its os and
// cpu, taken from its name: npm ci skips it on other platforms without fetching, and fetches
// it on its own platform from a registry that has it.
// Run after `npm install` changes the lock file: node scripts/completeLockfile.mjs
import { readFileSync, writeFileSync } from 'node:fs';

const lockPath = new URL('../package-lock.json', import.meta.url);
const lock = JSON.parse(readFileSync(lockPath, 'utf8'));
const packages = lock.packages;
const platforms = { darwin: 'darwin', linux: 'linux', win32: 'win32', android: 'android' };
const cpus = { amd64: 'x64', x64: 'x64', arm64: 'arm64' };

let added = 0;
for (const [path, entry] of Object.entries(packages)) {
  for (const [name, range] of Object.entries(entry.optionalDependencies ?? {})) {
    const target = `node_modules/${name}`;
    if (packages[target]) continue;
    const m = name.match(/-(darwin|linux|win32|android)-(amd64|x64|arm64)(-musl)?$/);
    if (!m) {
      console.error(`${path}: optional dependency ${name} is missing and is not a platform build`);
      process.exitCode = 1;
      continue;
    }
    packages[target] = {
      version: range.replace(/^[\^~=]/, ''),
      cpu: [cpus[m[2]]],
      license: entry.license,
      optional: true,
      os: [platforms[m[1]]],
      ...(m[3] ? { libc: ['musl'] } : {}),
    };
    added++;
  }
}
lock.packages = Object.fromEntries(
  Object.entries(packages).sort(([a], [b]) => (a === '' ? -1 : b === '' ? 1 : a < b ? -1 : 1)),
);
writeFileSync(lockPath, `${JSON.stringify(lock, null, 2)}\n`);
console.log(`completeLockfile: added ${added} platform entries`);
