/**
 * Counters and gauges for the oracle and the relayer, readable three ways: `snapshot()` for
 * tests and status lines, Prometheus text at `/metrics`, and the retained MQTT status.
 */
import { createServer, type Server } from 'node:http';

export interface Metrics {
  /** Adds `by` (default 1) to counter `name` with optional labels. */
  inc(name: string, labels?: Record<string, string>, by?: number): void;
  /** Sets gauge `name`. */
  set(name: string, value: number, labels?: Record<string, string>): void;
  /** Current value of a counter or gauge (0 when never touched). */
  get(name: string, labels?: Record<string, string>): number;
  /** Every series, `name{label="v"}` → value. */
  snapshot(): Record<string, number>;
  /** The Prometheus text exposition format (version 0.0.4). */
  render(): string;
}

const key = (name: string, labels?: Record<string, string>) =>
  labels && Object.keys(labels).length > 0
    ? `${name}{${Object.entries(labels)
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([k, v]) => `${k}="${v.replace(/["\\\n]/g, '_')}"`)
        .join(',')}}`
    : name;

/**
 * Creates a metrics registry; every name is prefixed with `prefix_`.
 * @example const metrics = createMetrics('gridcell_oracle'); metrics.inc('readings_signed');
 */
export function createMetrics(prefix: string): Metrics {
  const values = new Map<string, number>();
  const full = (name: string) => `${prefix}_${name}`;
  return {
    inc(name, labels, by = 1) {
      const k = key(full(name), labels);
      values.set(k, (values.get(k) ?? 0) + by);
    },
    set(name, value, labels) {
      values.set(key(full(name), labels), value);
    },
    get: (name, labels) => values.get(key(full(name), labels)) ?? 0,
    snapshot: () => Object.fromEntries([...values].sort(([a], [b]) => a.localeCompare(b))),
    render: () =>
      `${[...values]
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([k, v]) => `${k} ${v}`)
        .join('\n')}\n`,
  };
}

export interface MetricsServer {
  port: number;
  close(): Promise<void>;
}

/**
 * Serves `/metrics` (Prometheus text) and `/health` (`ok` while `healthy()` says so, 503
 * otherwise) on `host:port`.
 */
export async function serveMetrics(parameters: {
  metrics: Metrics;
  host?: string;
  port: number;
  healthy?: () => boolean;
}): Promise<MetricsServer> {
  const server: Server = createServer((request, response) => {
    if (request.url === '/metrics') {
      response.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' });
      response.end(parameters.metrics.render());
    } else if (request.url === '/health') {
      const ok = parameters.healthy?.() ?? true;
      response.writeHead(ok ? 200 : 503, { 'content-type': 'text/plain' });
      response.end(ok ? 'ok\n' : 'unhealthy\n');
    } else {
      response.writeHead(404, { 'content-type': 'text/plain' });
      response.end('not found: try /metrics or /health\n');
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(parameters.port, parameters.host ?? '127.0.0.1', () => resolve());
  });
  const address = server.address();
  return {
    port: typeof address === 'object' && address ? address.port : parameters.port,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
