import { createAgent, readAgentConfig } from '../../agent/index.js';
import { createGridcellClients } from '../../chain/client/index.js';
import { chainClock, wallClock } from '../../chain/clock/index.js';
import { DEFAULT_KEYSTORE_DIR } from '../../chain/keystore/index.js';
import { DEFAULT_MANIFEST_PATH } from '../../chain/manifest/index.js';
import { daemonLogger, explainNetworkError, openDeployment, unlockKey } from '../context.js';
import type { Io } from '../io.js';
import { onShutdown, parseCommandLine, UsageError } from '../options.js';

export const agentHelp = `gridcell agent: the software agent of a power cell

Joins the cell's grid zone over libp2p gossipsub, negotiates bilateral deals (FIPA contract
net, ending in a debt channel on chain), signs vouchers from the seller meter's readings on
MQTT, bids its forecast into the pool before gate closure, takes part in demand response and
asks for load shedding when it cannot hold its balance. Runs until Ctrl-C.

Usage: gridcell agent --config FILE [options]

Options:
  --config FILE     the agent's JSON config (see docs/agent.md)
  --manifest FILE   deployment manifest (default ${DEFAULT_MANIFEST_PATH})
  --rpc URL         node to use instead of the manifest's
  --mqtt URL        broker instead of the config's mqttUrl
  --bootstrap ADDR  a peer to join through (multiaddr with /p2p/ID); repeatable
  --keystore DIR    key files (default: the config's, else ${DEFAULT_KEYSTORE_DIR})
  --key NAME        the cell's agent key (default: the config's key.name); password from
                    GRIDCELL_PASSWORD or a prompt
  --clock chain|wall  time from the chain head (default, right for a devnet) or the wall clock
  -h, --help        show this help

Logs go to stderr; GRIDCELL_LOG_LEVEL=debug|info|warn|error sets how much.
`;

/** `gridcell agent`: runs until SIGINT or SIGTERM. */
export async function agentCommand(argv: string[], io: Io): Promise<void> {
  const { values } = parseCommandLine(
    argv,
    {
      config: { type: 'string' },
      manifest: { type: 'string' },
      rpc: { type: 'string' },
      mqtt: { type: 'string' },
      bootstrap: { type: 'string', multiple: true },
      keystore: { type: 'string' },
      key: { type: 'string' },
      clock: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    'agent',
  );
  if (values.help) {
    io.out(agentHelp);
    return;
  }
  if (!values.config) throw new UsageError('say which config: --config FILE (see `gridcell agent --help`)');
  if (values.clock !== undefined && values.clock !== 'chain' && values.clock !== 'wall')
    throw new UsageError(`invalid --clock ${JSON.stringify(values.clock)}: expected chain or wall`);
  const config = readAgentConfig(values.config);
  const keyName = values.key ?? config.key?.name;
  if (!keyName) throw new UsageError('say which agent key: --key NAME, or key.name in the config');
  const { manifest, rpcUrl } = openDeployment(values.manifest, values.rpc);
  const account = await unlockKey(
    io,
    values.keystore ?? config.key?.keystore ?? DEFAULT_KEYSTORE_DIR,
    keyName,
  );
  const clients = createGridcellClients({ manifest, rpcUrl, account, pollingIntervalMs: 250 });
  const logger = daemonLogger(io, `agent ${config.cell}`);
  const agent = await createAgent({
    config,
    account,
    manifest,
    clients,
    clock: values.clock === 'wall' ? wallClock() : chainClock(clients.publicClient),
    logger,
    ...(values.mqtt ? { mqttUrl: values.mqtt } : {}),
    bootstrap: values.bootstrap ?? [],
  }).catch((error) => {
    throw explainNetworkError(error, rpcUrl);
  });
  io.out(
    `agent of cell ${config.cell}: peer ${agent.peerId}\n${agent
      .multiaddrs()
      .map((a) => `  ${a}\n`)
      .join('')}`,
  );
  await onShutdown(async (signal) => {
    logger.info(`${signal}: stopping`);
    await agent.stop();
  });
}
