/**
 * An HTTP proxy in front of the test's s3rver that can fail like a real S3 endpoint does: go
 * down in the middle of a multipart upload (connections cut, then refused), refuse
 * CompleteMultipartUpload, or refuse listing. Everything else is forwarded untouched (SigV4 signatures still match).
 */
import { createServer, request, type ClientRequest } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

/**
 * down-after-first-part: the server goes away once the first part of an upload is stored.
 * fail-complete: CompleteMultipartUpload answers 500. deny-list: listing answers 403 AccessDenied
 * (write-only credentials); everything else works. deny-abort: AbortMultipartUpload answers 403.
 */
export type FaultMode = 'down-after-first-part' | 'fail-complete' | 'deny-list' | 'deny-abort' | 'none';

export interface FaultyS3 {
  endpoint: string;
  /** Listening again (after going down), with this fault armed. */
  arm(mode: FaultMode): Promise<void>;
  /** Requests seen, as "METHOD url status". */
  seen: string[];
  close(): Promise<void>;
}

export async function startFaultyS3(upstreamEndpoint: string): Promise<FaultyS3> {
  const upstream = new URL(upstreamEndpoint);
  const seen: string[] = [];
  const sockets = new Set<Socket>();
  const inFlight = new Set<ClientRequest>();
  let mode: FaultMode = 'none';
  let listening = false;

  const server = createServer((req, res) => {
    const method = req.method ?? '';
    const url = req.url ?? '';
    const refusal =
      mode === 'fail-complete' && method === 'POST' && url.includes('uploadId=')
        ? { status: 500, code: 'InternalError' }
        : (mode === 'deny-list' && method === 'GET' && url.includes('list-type=')) || (mode === 'deny-abort' && method === 'DELETE' && url.includes('uploadId='))
          ? { status: 403, code: 'AccessDenied' }
          : undefined;
    if (refusal) {
      req.resume();
      req.on('end', () => {
        seen.push(`${method} ${url} ${refusal.status}`);
        res.writeHead(refusal.status, { 'content-type': 'application/xml' });
        res.end(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>${refusal.code}</Code><Message>injected by the test</Message></Error>`);
      });
      return;
    }
    const out = request({ host: upstream.hostname, port: upstream.port, method, path: url, headers: req.headers }, (up) => {
      seen.push(`${method} ${url} ${up.statusCode ?? 0}`);
      res.writeHead(up.statusCode ?? 502, up.headers);
      up.pipe(res);
      up.on('end', () => {
        // The first part is stored: now the server "goes down" under the rest of the upload.
        if (mode === 'down-after-first-part' && method === 'PUT' && /[?&]partNumber=1(&|$)/.test(url) && (up.statusCode ?? 0) < 300) {
          setImmediate(goDown);
        }
      });
    });
    inFlight.add(out);
    out.on('close', () => inFlight.delete(out));
    out.on('error', () => res.destroy());
    req.pipe(out);
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });

  function goDown(): void {
    if (!listening) return;
    listening = false;
    server.close();
    for (const r of inFlight) r.destroy();
    for (const s of sockets) s.destroy();
  }

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  listening = true;
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    seen,
    async arm(next) {
      mode = next;
      if (listening) return;
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, '127.0.0.1', () => {
          server.off('error', reject);
          resolve();
        });
      });
      listening = true;
    },
    async close() {
      mode = 'none';
      if (!listening) return;
      listening = false;
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
