import mqtt from 'mqtt';
import { createGridcellClients } from '../../chain/client/index.js';
import { chainClock, wallClock } from '../../chain/clock/index.js';
import { BaseError } from '../../chain/errors/index.js';
import { DEFAULT_MANIFEST_PATH } from '../../chain/manifest/index.js';
import { readGridConfig } from '../../grid/controller/gridConfig.js';
import { createGridController } from '../../grid/controller/index.js';
import { gridTopics } from '../../grid/controller/messages.js';
import { type PlantServers, startPlantServers } from '../../grid/devices/startPlantServers.js';
import { createPlant, plantDevices } from '../../grid/plant/index.js';
import { loadTopology } from '../../grid/topology/index.js';
import { daemonLogger, explainNetworkError, openDeployment } from '../context.js';
import type { Io } from '../io.js';
import { onShutdown, parseCommandLine, UsageError } from '../options.js';

export const gridHelp = `gridcell grid: the Neural Grid controller of a complex of cells

Follows the clearing pool's schedule (CellScheduled, IntervalCleared) and the open deals
(ChannelOpened) on confirmed blocks; refuses, before delivery, schedules that break a cell's
or the complex's connection limits and raises reserve requests for the next interval; at
delivery start (writeLeadSeconds before it) writes the energy ports', rectiverters' and
router's setpoints over Modbus (SunSpec DER models 701/704), refreshes them within their
revert time, reads them back, and publishes plan, refusals, reserve requests and telemetry on
MQTT. After each interval it reads the ports', router's and meters' counters and publishes
the unserved energy (shed load, curtailed PV) and a reserve request for every cell whose
meter fell short of its schedule. Runs until Ctrl-C; the devices fall back to their safe
state on their own when it stops.

Usage: gridcell grid --config FILE [options]

Options:
  --config FILE     the controller's JSON config (see docs/grid.md)
  --manifest FILE   deployment manifest (default: the config's, else ${DEFAULT_MANIFEST_PATH})
  --rpc URL         node to use instead of the manifest's
  --mqtt URL        broker instead of the config's mqttUrl
  --islanded        run islanded: router open, the hubs hold the balance
  -h, --help        show this help

With "simulate" in the config, the plant (the simulated devices) runs in this process too,
on the configured ports, following the same clock. Logs go to stderr;
GRIDCELL_LOG_LEVEL=debug|info|warn|error sets how much.
`;

/** `gridcell grid`: runs until SIGINT or SIGTERM. */
export async function gridCommand(argv: string[], io: Io): Promise<void> {
  const { values } = parseCommandLine(
    argv,
    {
      config: { type: 'string' },
      manifest: { type: 'string' },
      rpc: { type: 'string' },
      mqtt: { type: 'string' },
      islanded: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
    'grid',
  );
  if (values.help) {
    io.out(gridHelp);
    return;
  }
  if (!values.config) throw new UsageError('say which config: --config FILE (see `gridcell grid --help`)');
  const config = readGridConfig(values.config);
  const topology = loadTopology(config.topologyPath);
  const { manifest, rpcUrl } = openDeployment(
    values.manifest ?? config.manifest,
    values.rpc ?? config.rpcUrl,
  );
  const { publicClient } = createGridcellClients({ manifest, rpcUrl, pollingIntervalMs: 250 });
  try {
    await publicClient.getBlockNumber();
  } catch (error) {
    throw explainNetworkError(error, rpcUrl);
  }
  const logger = daemonLogger(io, `grid ${config.controllerId}`);
  const clock = config.clock === 'chain' ? chainClock(publicClient) : wallClock();
  const order = plantDevices(topology).map((d) => d.id);
  const endpoint = (id: string) => {
    const override = config.devices.overrides[id];
    if (override)
      return { host: override.host, port: override.port, unitId: override.unitId ?? config.devices.unitId };
    const index = order.indexOf(id);
    if (index < 0) throw new BaseError(`no device ${id} in topology ${topology.name}`);
    return {
      host: config.devices.host,
      port: config.devices.basePort + index,
      unitId: config.devices.unitId,
    };
  };

  let servers: PlantServers | undefined;
  if (config.simulate) {
    const plant = await createPlant({
      topology,
      clock,
      seed: config.simulate.seed,
      onRevert: (device, at) => logger.warn('device reverted to its safe state', { device, at }),
    });
    servers = await startPlantServers({
      plant,
      host: config.devices.host,
      basePort: config.devices.basePort,
      unitId: config.devices.unitId,
    });
    logger.info('plant simulated', {
      topology: topology.name,
      devices: servers.devices.length,
      ports: `${config.devices.basePort}-${config.devices.basePort + servers.devices.length - 1}`,
    });
  }

  const mqttUrl = values.mqtt ?? config.mqttUrl;
  const client = mqttUrl
    ? await mqtt.connectAsync(mqttUrl, {
        protocolVersion: 4,
        will: {
          topic: gridTopics.status(topology.zone, config.controllerId),
          payload: Buffer.from(JSON.stringify({ v: 1, type: 'grid-status', state: 'offline' })),
          qos: 1,
          retain: true,
        },
      })
    : undefined;
  if (client) logger.info('MQTT connected', { url: mqttUrl });
  const controller = createGridController({
    topology,
    manifest,
    publicClient,
    endpoint,
    clock,
    logger,
    ...(client ? { mqtt: client } : {}),
    controllerId: config.controllerId,
    confirmations: config.confirmations,
    revertSeconds: config.revertSeconds,
    ...(config.refreshSeconds !== undefined ? { refreshSeconds: config.refreshSeconds } : {}),
    islanded: values.islanded ?? config.islanded,
    writeLeadSeconds: config.writeLeadSeconds,
    shortfallToleranceWh: config.shortfallToleranceWh,
    shortfallTolerancePct: config.shortfallTolerancePct,
  });
  const stopped = onShutdown(async (signal) => {
    logger.info(`${signal}: stopping`);
    await controller.close();
    await client?.endAsync();
    await servers?.close();
  });
  logger.info('controller started', {
    zone: topology.zone,
    cells: topology.cells.length,
    confirmations: config.confirmations,
    revertSeconds: config.revertSeconds,
    islanded: values.islanded ?? config.islanded,
  });
  controller.start(config.pollMs);
  await stopped;
}
