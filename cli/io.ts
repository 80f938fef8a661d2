import { createInterface } from 'node:readline';
import { Writable } from 'node:stream';

/** What a command reads and writes: the process in production, buffers in tests. */
export interface Io {
  out(text: string): void;
  err(text: string): void;
  env: Record<string, string | undefined>;
  /** Asks for a secret without echoing it; undefined when there is no terminal. */
  askSecret?: (question: string) => Promise<string>;
}

/** The process's own streams; secrets are asked on the terminal with echo off. */
export function processIo(): Io {
  return {
    out: (text) => process.stdout.write(text),
    err: (text) => process.stderr.write(text),
    env: process.env,
    ...(process.stdin.isTTY ? { askSecret } : {}),
  };
}

function askSecret(question: string): Promise<string> {
  const muted = new Writable({ write: (_chunk, _enc, cb) => cb() });
  process.stderr.write(question);
  const rl = createInterface({ input: process.stdin, output: muted, terminal: true });
  return new Promise((resolve) => {
    rl.question('', (answer) => {
      rl.close();
      process.stderr.write('\n');
      resolve(answer);
    });
  });
}

/** Writes `value` as one line of JSON (bigints as decimal strings). */
export function json(value: unknown): string {
  return `${JSON.stringify(value, (_k, v) => (typeof v === 'bigint' ? v.toString() : v))}\n`;
}
