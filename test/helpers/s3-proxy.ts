/**
 * An HTTP proxy in front of the test's s3rver for tests that need to see what the SDK sent or to
 * answer a request with an S3 error s3rver cannot produce, or that goes down and comes back (an
 * S3 endpoint that fails mid-upload: test/helpers/faulty-s3.ts). Requests are forwarded untouched
 * (Host included), so SigV4 signatures still match.
 */
import { createServer, request, type ClientRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** An S3 error answer the proxy gives instead of forwarding. */
export interface Refusal {
  status: number;
  code: string;
  message?: string;
}

export interface S3ProxyHooks {
  /** Answers the request with this error (after reading its body) instead of forwarding it. */
  refuse?(req: IncomingMessage): Refusal | undefined;
  /** Every request, before it is refused or forwarded, with its response (to watch it close). */
  onRequest?(req: IncomingMessage, res: ServerResponse): void;
  /** The status each request got: the refusal's, or s3rver's once its answer starts. */
  onAnswer?(req: IncomingMessage, status: number): void;
  /** A forwarded request whose answer from s3rver was passed on whole. */
  onForwarded?(req: IncomingMessage, status: number): void;
}

export interface S3Proxy {
  endpoint: string;
  /** Goes away at once: open connections and the requests in flight to s3rver are cut, new connections refused. */
  goDown(): void;
  /** Listens again on the same port, after goDown(); nothing when it is listening. */
  comeBack(): Promise<void>;
  close: () => Promise<void>;
}

export async function startS3Proxy(upstreamEndpoint: string, hooks: S3ProxyHooks = {}): Promise<S3Proxy> {
  const upstream = new URL(upstreamEndpoint);
  const inFlight = new Set<ClientRequest>();
  let listening = false;
  const server = createServer((req, res) => {
    hooks.onRequest?.(req, res);
    const refusal = hooks.refuse?.(req);
    if (refusal) {
      req.resume();
      req.on('end', () => {
        hooks.onAnswer?.(req, refusal.status);
        res.writeHead(refusal.status, { 'content-type': 'application/xml' });
        res.end(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>${refusal.code}</Code><Message>${refusal.message ?? 'refused by the test proxy'}</Message></Error>`);
      });
      return;
    }
    const out = request({ host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers }, (up) => {
      const status = up.statusCode ?? 0;
      hooks.onAnswer?.(req, status);
      res.writeHead(up.statusCode ?? 502, up.headers);
      up.pipe(res);
      up.on('end', () => hooks.onForwarded?.(req, status));
    });
    inFlight.add(out);
    out.on('close', () => inFlight.delete(out));
    out.on('error', () => res.destroy());
    req.pipe(out);
  });
  const listen = (port: number): Promise<void> =>
    new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => {
        server.off('error', reject);
        listening = true;
        resolve();
      });
    });
  await listen(0);
  const { port } = server.address() as AddressInfo;
  const goDown = (): void => {
    if (!listening) return;
    listening = false;
    server.close();
    for (const r of inFlight) r.destroy();
    server.closeAllConnections();
  };
  return {
    endpoint: `http://127.0.0.1:${port}`,
    goDown,
    comeBack: () => (listening ? Promise.resolve() : listen(port)),
    close: async () => {
      if (!listening) return;
      listening = false;
      await new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      });
    },
  };
}
