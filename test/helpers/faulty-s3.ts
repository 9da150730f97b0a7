/**
 * A proxy in front of the test's s3rver (test/helpers/s3-proxy.ts) that can fail like a real S3
 * endpoint does: go down in the middle of a multipart upload (connections cut, then refused),
 * refuse CompleteMultipartUpload, listing or AbortMultipartUpload. Everything else is forwarded
 * untouched (SigV4 signatures still match).
 */
import type { IncomingMessage } from 'node:http';
import { startS3Proxy, type Refusal } from './s3-proxy.js';

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

function refusalFor(mode: FaultMode, req: IncomingMessage): Refusal | undefined {
  const method = req.method ?? '';
  const url = req.url ?? '';
  if (mode === 'fail-complete' && method === 'POST' && url.includes('uploadId=')) return { status: 500, code: 'InternalError', message: 'injected by the test' };
  const denied = (mode === 'deny-list' && method === 'GET' && url.includes('list-type=')) || (mode === 'deny-abort' && method === 'DELETE' && url.includes('uploadId='));
  return denied ? { status: 403, code: 'AccessDenied', message: 'injected by the test' } : undefined;
}

export async function startFaultyS3(upstreamEndpoint: string): Promise<FaultyS3> {
  const seen: string[] = [];
  let mode: FaultMode = 'none';
  const proxy = await startS3Proxy(upstreamEndpoint, {
    refuse: (req) => refusalFor(mode, req),
    onAnswer: (req, status) => seen.push(`${req.method ?? ''} ${req.url ?? ''} ${status}`),
    onForwarded: (req, status) => {
      // The first part is stored: now the server "goes down" under the rest of the upload.
      if (mode === 'down-after-first-part' && req.method === 'PUT' && /[?&]partNumber=1(&|$)/.test(req.url ?? '') && status < 300) setImmediate(() => proxy.goDown());
    },
  });
  return {
    endpoint: proxy.endpoint,
    seen,
    async arm(next) {
      mode = next;
      await proxy.comeBack();
    },
    async close() {
      mode = 'none';
      await proxy.close();
    },
  };
}
