import { z } from 'zod';
import { startMqttBroker } from '../../oracle/broker/index.js';
import type { Io } from '../io.js';
import { onShutdown, parseCommandLine, parseOptions } from '../options.js';

export const brokerHelp = `gridcell broker: the embedded MQTT broker (aedes, MQTT 3.1.1)

For a machine without mosquitto: oracles, relayers, agents and grid controllers connect to
it by URL. Retained messages live in memory. Runs until Ctrl-C.

Options:
  --host HOST   interface to listen on (default 127.0.0.1)
  --port N      TCP port (default 1883)
  -h, --help    show this help
`;

const schema = z.object({
  host: z.string().min(1).default('127.0.0.1'),
  port: z.coerce.number().int().min(1).max(65535).default(1883),
});

/** `gridcell broker`: runs until SIGINT or SIGTERM. */
export async function brokerCommand(argv: string[], io: Io): Promise<void> {
  const { values } = parseCommandLine(
    argv,
    { host: { type: 'string' }, port: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
    'broker',
  );
  if (values.help) {
    io.out(brokerHelp);
    return;
  }
  const options = parseOptions(schema, values, 'broker');
  const broker = await startMqttBroker({ host: options.host, port: options.port });
  io.out(`broker: listening on ${broker.url}; Ctrl-C stops it\n`);
  await onShutdown(async (signal) => {
    io.out(`broker: ${signal}: closing\n`);
    await broker.close();
  });
}
