/**
 * The benchmark's meters, in their own process (as real meters are their own devices): N
 * simulated SunSpec meters on Modbus TCP, ports basePort..basePort+N-1, on the wall clock.
 * Prints `ready` once all listen; stops on SIGTERM.
 *
 * Run by readingsPerSecond.ts: npx tsx bench/oracle/meterSimulators.ts N basePort
 */
import { wallClock } from '../../chain/clock/index.js';
import { startSunSpecMeterServer } from '../../grid/devices/sunspecMeterServer.js';

const count = Number(process.argv[2] ?? 20);
const basePort = Number(process.argv[3] ?? 17100);
const clock = wallClock();
const servers = await Promise.all(
  Array.from({ length: count }, (_, i) =>
    startSunSpecMeterServer({ port: basePort + i, profile: (s) => 1000 + ((s + i) % 7) * 100, clock }),
  ),
);
process.stdout.write('ready\n');
process.once('SIGTERM', () => {
  void Promise.all(servers.map((s) => s.close())).then(() => process.exit(0));
});
