import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { BackerError, describeError } from '../errors.js';
import type { Logger } from '../logging/logger.js';
import type { Metrics } from './metrics.js';
import type { ListenAddress } from './schema.js';

/** The `metrics.listen` server: `GET /metrics` only, no authentication, loopback only (checked at config load). */
export interface MetricsServer {
  start(): Promise<void>;
  /** The bound address (its port when 0 was asked for); null before start. */
  address(): ListenAddress | null;
  /** Idempotent. */
  close(): Promise<void>;
}

async function answer(metrics: Metrics, logger: Logger, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const path = (req.url ?? '/').split('?')[0];
  if (path !== '/metrics') {
    res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('not found: only GET /metrics is served here\n');
    return;
  }
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain; charset=utf-8' }).end('method not allowed\n');
    return;
  }
  try {
    const text = await metrics.text();
    res.writeHead(200, { 'content-type': metrics.contentType }).end(req.method === 'HEAD' ? undefined : text);
  } catch (err) {
    logger.error({ err: describeError(err) }, 'metrics scrape failed');
    res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' }).end(`metrics failed: ${describeError(err)}\n`);
  }
}

export function createMetricsServer(metrics: Metrics, listen: ListenAddress, logger: Logger): MetricsServer {
  const server = createServer((req, res) => void answer(metrics, logger, req, res));
  let bound: ListenAddress | null = null;
  let closing: Promise<void> | undefined;
  return {
    async start() {
      await new Promise<void>((resolve, reject) => {
        server.once('error', (err) =>
          reject(new BackerError('CONFIG_INVALID', `metrics.listen ${listen.host}:${listen.port}: cannot listen (${describeError(err)})`, {
            component: 'metrics',
            details: { listen: `${listen.host}:${listen.port}` },
            cause: err,
            permanent: true,
          })),
        );
        server.listen(listen.port, listen.host, () => resolve());
      });
      const address = server.address();
      bound = address !== null && typeof address === 'object' ? { host: listen.host, port: address.port } : listen;
      logger.info({ listen: `${listen.host}:${bound.port}` }, 'metrics listening');
    },
    address: () => bound,
    close() {
      closing ??= new Promise<void>((resolve) => {
        if (!server.listening) return resolve();
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closing;
    },
  };
}
