#!/usr/bin/env node
// The installed `gridcell` command: runs the TypeScript entry through tsx's loader.
import { register } from 'tsx/esm/api';

register();
const { run } = await import('../cli/main.ts');
const { processIo } = await import('../cli/io.ts');
process.exitCode = await run(process.argv.slice(2), processIo());
