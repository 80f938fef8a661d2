import { cellRegistryAbi } from '../../chain/abi/contracts.generated.js';
import { createGridcellClients } from '../../chain/client/index.js';
import { chainClock, wallClock } from '../../chain/clock/index.js';
import { BaseError } from '../../chain/errors/index.js';
import { DEFAULT_KEYSTORE_DIR } from '../../chain/keystore/index.js';
import { DEFAULT_MANIFEST_PATH } from '../../chain/manifest/index.js';
import { readOracleConfig } from '../../oracle/config/oracleConfig.js';
import { createOracle, type OracleMeterSpec } from '../../oracle/daemon/createOracle.js';
import { createMetrics, serveMetrics } from '../../oracle/metrics/index.js';
import { openOracleStore } from '../../oracle/store/oracleStore.js';
import { daemonLogger, explainNetworkError, openDeployment, unlockKey } from '../context.js';
import type { Io } from '../io.js';
import { onShutdown, parseCommandLine, UsageError } from '../options.js';

export const oracleHelp = `gridcell oracle: the meter oracle of a cell

Reads each configured meter (SunSpec over Modbus TCP, or a meter publishing its counters on
MQTT), signs one reading per meter and interval with the meter key registered in the cell's
avatar, stores it locally, and publishes it on MQTT (QoS 1) with live telemetry and a retained
status. Runs until Ctrl-C. Readings the broker has not acknowledged are kept and sent later.

Usage: gridcell oracle --config FILE [options]

Options:
  --config FILE     the oracle's JSON config (see docs/oracle.md)
  --manifest FILE   deployment manifest (default: the config's, else ${DEFAULT_MANIFEST_PATH})
  --rpc URL         node to use instead of the manifest's
  --mqtt URL        broker instead of the config's mqttUrl
  --database FILE   local store (default .gridcell/oracle-<id>.sqlite)
  --keystore DIR    meter keys (default: the config's, else ${DEFAULT_KEYSTORE_DIR}); passwords
                    from GRIDCELL_PASSWORD or a prompt
  -h, --help        show this help

Logs go to stderr; GRIDCELL_LOG_LEVEL=debug|info|warn|error sets how much.
`;

/** `gridcell oracle`: runs until SIGINT or SIGTERM. */
export async function oracleCommand(argv: string[], io: Io): Promise<void> {
  const { values } = parseCommandLine(
    argv,
    {
      config: { type: 'string' },
      manifest: { type: 'string' },
      rpc: { type: 'string' },
      mqtt: { type: 'string' },
      database: { type: 'string' },
      keystore: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    'oracle',
  );
  if (values.help) {
    io.out(oracleHelp);
    return;
  }
  if (!values.config) throw new UsageError('say which config: --config FILE (see `gridcell oracle --help`)');
  const config = readOracleConfig(values.config);
  const { manifest, rpcUrl } = openDeployment(
    values.manifest ?? config.manifest,
    values.rpc ?? config.rpcUrl,
  );
  const clients = createGridcellClients({ manifest, rpcUrl, pollingIntervalMs: 250 });
  const logger = daemonLogger(io, `oracle ${config.id}`);
  const keystore = values.keystore ?? config.keystore ?? DEFAULT_KEYSTORE_DIR;

  const meters: OracleMeterSpec[] = [];
  for (const m of config.meters) {
    const account = await unlockKey(io, keystore, m.key);
    let limits: { maxImportW: bigint; maxExportW: bigint };
    try {
      const cell = await clients.publicClient.readContract({
        address: manifest.contracts.registry,
        abi: cellRegistryAbi,
        functionName: 'cellOfMeter',
        args: [account.address],
      });
      if (cell !== m.cell) {
        throw new BaseError(
          `meter "${m.name}": key ${account.address} is ${cell === 0n ? 'not registered to any cell' : `registered to cell ${cell}`}, the config says cell ${m.cell}`,
          {
            details: `its readings would be refused; register it with \`gridcell cells add-meter ${m.cell} ${account.address}\``,
          },
        );
      }
      const avatar = await clients.publicClient.readContract({
        address: manifest.contracts.registry,
        abi: cellRegistryAbi,
        functionName: 'cellOf',
        args: [m.cell],
      });
      limits = {
        maxImportW: m.maxImportW ?? BigInt(avatar.maxImportW),
        maxExportW: m.maxExportW ?? BigInt(avatar.maxExportW),
      };
    } catch (error) {
      if (error instanceof BaseError) throw error;
      if (m.maxImportW === undefined || m.maxExportW === undefined) throw explainNetworkError(error, rpcUrl);
      logger.warn('cannot check the meter key on chain; using the config limits', {
        meter: m.name,
        reason: (error as Error).message,
      });
      limits = { maxImportW: m.maxImportW, maxExportW: m.maxExportW };
    }
    meters.push({ name: m.name, account, cell: m.cell, source: m.source, limits });
  }

  const metrics = createMetrics('gridcell_oracle');
  const oracle = createOracle({
    id: config.id,
    zone: config.zone,
    meters,
    store: openOracleStore(values.database ?? config.database ?? `.gridcell/oracle-${config.id}.sqlite`),
    mqttUrl: values.mqtt ?? config.mqttUrl,
    clock: config.clock === 'chain' ? chainClock(clients.publicClient) : wallClock(),
    intervalSeconds: manifest.pool.intervalSeconds,
    chainId: manifest.chainId,
    poolDomain: clients.poolDomain,
    channelsDomain: clients.channelsDomain,
    logger,
    metrics,
    sampleMs: config.sampleMs,
    telemetryMs: config.telemetryMs,
    statusMs: config.statusMs,
    boundaryToleranceSeconds: BigInt(config.boundaryToleranceSeconds),
  });
  const stopped = onShutdown(async (signal) => {
    logger.info(`${signal}: stopping`);
    await oracle.stop();
    await metricsServer?.close();
  });
  await oracle.start();
  const metricsServer =
    config.metricsPort !== undefined
      ? await serveMetrics({
          metrics,
          port: config.metricsPort,
          healthy: () => oracle.status().connected,
        })
      : undefined;
  if (metricsServer) logger.info('metrics served', { url: `http://127.0.0.1:${metricsServer.port}/metrics` });
  await stopped;
}
