/**
 * Real MQTT brokers for tests: the embedded aedes always, and mosquitto (Debian's package)
 * when it is installed. `.ci/run` installs it; a machine without it runs the aedes half and
 * the tests say the mosquitto half was skipped.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startMqttBroker } from '../broker/index.js';

export type BrokerKind = 'aedes' | 'mosquitto';

/** The mosquitto binary, when installed. */
export const MOSQUITTO_BINARY = ['/usr/sbin/mosquitto', '/usr/bin/mosquitto'].find((p) => existsSync(p));

/** The brokers this machine can test against. */
export const BROKER_KINDS: BrokerKind[] = MOSQUITTO_BINARY ? ['aedes', 'mosquitto'] : ['aedes'];

export interface TestBroker {
  url: string;
  port: number;
  /** Stops the broker; mosquitto is killed (SIGKILL), as a crash would. */
  close(): Promise<void>;
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const address = server.address();
  await new Promise((resolve) => server.close(resolve));
  if (typeof address !== 'object' || !address) throw new Error('no port');
  return address.port;
}

async function waitForPort(port: number, child: ChildProcess, ms = 10_000) {
  const until = Date.now() + ms;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`mosquitto exited with ${child.exitCode}`);
    const ok = await new Promise<boolean>((resolve) => {
      const socket = createConnection({ port, host: '127.0.0.1' });
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > until) throw new Error(`mosquitto did not listen on ${port} within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Starts a broker of `kind`; `port` restarts one on the port a previous one had. */
export async function startTestBroker(kind: BrokerKind, port?: number): Promise<TestBroker> {
  if (kind === 'aedes') {
    const broker = await startMqttBroker({ port: port ?? 0 });
    return { url: broker.url, port: broker.port, close: () => broker.close() };
  }
  if (!MOSQUITTO_BINARY) throw new Error('mosquitto is not installed');
  const p = port ?? (await freePort());
  const dir = mkdtempSync(join(tmpdir(), 'gridcell-mosquitto-'));
  const config = join(dir, 'mosquitto.conf');
  writeFileSync(config, `listener ${p} 127.0.0.1\nallow_anonymous true\npersistence false\n`);
  const child = spawn(MOSQUITTO_BINARY, ['-c', config], { stdio: 'ignore' });
  await waitForPort(p, child);
  return {
    url: `mqtt://127.0.0.1:${p}`,
    port: p,
    async close() {
      if (child.exitCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGKILL');
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
