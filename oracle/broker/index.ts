/**
 * The embedded MQTT broker: aedes (MQTT 3.1.1) on a TCP port, in process. It is the default
 * when no `--mqtt` URL is given; mosquitto or any broker replaces it by URL.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { Aedes } from 'aedes';

export interface MqttBrokerParameters {
  host?: string;
  /** 0 picks a free port (net.Server does; unlike modbus-serial, this is safe). */
  port?: number;
}

export interface MqttBroker {
  /** `mqtt://host:port`, for clients. */
  url: string;
  port: number;
  /** Clients currently connected. */
  connectedClients(): number;
  /**
   * Stops accepting, drops every client (their last wills fire) and closes the broker.
   * Retained messages live in memory and are gone after this.
   */
  close(): Promise<void>;
}

/**
 * Starts an aedes broker listening on `host:port`.
 * @example
 * const broker = await startMqttBroker({ port: 1883 });
 * // ... mqtt.connect(broker.url)
 * await broker.close();
 */
export async function startMqttBroker(parameters: MqttBrokerParameters = {}): Promise<MqttBroker> {
  const host = parameters.host ?? '127.0.0.1';
  const aedes = await Aedes.createBroker();
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    aedes.handle(socket);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(parameters.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : (parameters.port ?? 0);
  let closing: Promise<void> | undefined;
  return {
    url: `mqtt://${host}:${port}`,
    port,
    connectedClients: () => aedes.connectedClients,
    close() {
      closing ??= (async () => {
        const serverClosed = new Promise<void>((resolve) => server.close(() => resolve()));
        for (const socket of sockets) socket.destroy();
        await new Promise<void>((resolve) => aedes.close(() => resolve()));
        await serverClosed;
      })();
      return closing;
    },
  };
}
