/**
 * A serial line for Modbus RTU tests: two pseudo-terminals joined by socat (Debian's
 * package), one end for the simulated meter, the other for the oracle. Each end is a real
 * tty that the serialport library opens and configures as it would /dev/ttyUSB0. `.ci/run`
 * installs socat; a machine without it skips the RTU tests and says so.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** The socat binary, when installed. */
export const SOCAT_BINARY = ['/usr/bin/socat', '/bin/socat'].find((p) => existsSync(p));

export interface SerialLine {
  /** The device path of the meter's end. */
  meterEnd: string;
  /** The device path of the oracle's end. */
  oracleEnd: string;
  /** Cuts the line (kills socat) and removes the links. */
  close(): Promise<void>;
}

export async function startSerialLine(ms = 5_000): Promise<SerialLine> {
  if (!SOCAT_BINARY) throw new Error('socat is not installed (apt-get install socat)');
  const dir = mkdtempSync(join(tmpdir(), 'gridcell-serial-'));
  const meterEnd = join(dir, 'meter');
  const oracleEnd = join(dir, 'oracle');
  const child: ChildProcess = spawn(
    SOCAT_BINARY,
    [`pty,raw,echo=0,link=${meterEnd}`, `pty,raw,echo=0,link=${oracleEnd}`],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const close = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    }
    rmSync(dir, { recursive: true, force: true });
  };
  const until = Date.now() + ms;
  while (!(existsSync(meterEnd) && existsSync(oracleEnd))) {
    if (child.exitCode !== null) {
      await close();
      throw new Error(`socat exited with ${child.exitCode}: ${stderr.trim()}`);
    }
    if (Date.now() > until) {
      await close();
      throw new Error(`socat made no serial line within ${ms} ms`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  return { meterEnd, oracleEnd, close };
}
