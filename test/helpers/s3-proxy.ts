/**
 * An HTTP proxy in front of the test's s3rver for tests that need to see what the SDK sent or to
 * answer a request with an S3 error s3rver cannot produce. Requests are forwarded untouched (Host
 * included), so SigV4 signatures still match. test/helpers/faulty-s3.ts is the variant that can
 * also go down mid-upload.
 */
import { createServer, request, type IncomingMessage, type ServerResponse } from 'node:http';
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
}

export interface S3Proxy {
  endpoint: string;
  close: () => Promise<void>;
}

export async function startS3Proxy(upstreamEndpoint: string, hooks: S3ProxyHooks = {}): Promise<S3Proxy> {
  const upstream = new URL(upstreamEndpoint);
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
      hooks.onAnswer?.(req, up.statusCode ?? 0);
      res.writeHead(up.statusCode ?? 502, up.headers);
      up.pipe(res);
    });
    out.on('error', () => res.destroy());
    req.pipe(out);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
