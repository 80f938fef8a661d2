/**
 * One HTTP server for the demo: the dashboard page at `/`, and the GraphQL API (with /health
 * and /ready) answered by graphql/'s fetch handler. The page reads only /graphql.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { GraphqlServer } from '../graphql/index.js';
import { dashboardPage } from './dashboard/page.js';

export interface DemoServer {
  url: string;
  port: number;
  close(): Promise<void>;
}

async function toRequest(req: IncomingMessage, origin: string): Promise<Request> {
  const headers = new Headers();
  for (const [k, v] of Object.entries(req.headers)) {
    if (v === undefined) continue;
    headers.set(k, Array.isArray(v) ? v.join(', ') : v);
  }
  const method = req.method ?? 'GET';
  let body: Buffer | undefined;
  if (method !== 'GET' && method !== 'HEAD') {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    body = Buffer.concat(chunks);
  }
  return new Request(new URL(req.url ?? '/', origin), {
    method,
    headers,
    ...(body ? { body: new Uint8Array(body) } : {}),
  });
}

async function send(res: ServerResponse, response: Response): Promise<void> {
  const headers: Record<string, string> = {};
  response.headers.forEach((v, k) => {
    headers[k] = v;
  });
  const streaming = (response.headers.get('content-type') ?? '').includes('text/event-stream');
  if (!streaming || !response.body) {
    // A whole answer: read it, then send it with its true length.
    const body = Buffer.from(await response.arrayBuffer());
    headers['content-length'] = String(body.length);
    res.writeHead(response.status, headers);
    res.end(body);
    return;
  }
  // Server-sent events (subscriptions): pass each chunk on until either side ends.
  delete headers['content-length'];
  res.writeHead(response.status, headers);
  const reader = response.body.getReader();
  res.on('close', () => {
    void reader.cancel().catch(() => undefined);
  });
  for (;;) {
    const { done, value } = await reader.read().catch(() => ({ done: true, value: undefined }));
    if (done || !value) break;
    res.write(value);
  }
  res.end();
}

/**
 * Starts the server on `host:port` (port 0 picks a free one).
 * @example const server = await startDemoServer({ graphql, port: 4000 }); // open server.url
 */
export async function startDemoServer(parameters: {
  graphql: GraphqlServer;
  port: number;
  host?: string;
}): Promise<DemoServer> {
  const host = parameters.host ?? '127.0.0.1';
  let origin = `http://${host}:${parameters.port}`;
  const page = dashboardPage();
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/' || path === '/index.html') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
      res.end(page);
      return;
    }
    if (path === '/graphql' || path === '/health' || path === '/ready') {
      toRequest(req, origin)
        .then((request) => parameters.graphql.fetch(request))
        .then((response) => send(res, response))
        .catch((error: unknown) => {
          if (!res.headersSent) res.writeHead(500, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ error: (error as Error).message }));
        });
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' });
    res.end(`not found: ${path}; the dashboard is at /, the API at /graphql\n`);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(parameters.port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : parameters.port;
  origin = `http://${host}:${port}`;
  return {
    url: origin,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
