import { request as httpRequest, type IncomingMessage, type RequestOptions } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { BackerError, type ErrorCode } from '../errors.js';

/**
 * Where the CLI reaches the daemon: its unix socket (from the config; trusted as admin), or a URL
 * (`--url`/BACKER_URL) with a bearer token (`--token-file`/BACKER_TOKEN_FILE).
 */
export type Endpoint = { kind: 'socket'; socket: string } | { kind: 'url'; url: URL; token: string | null };

export type Method = 'GET' | 'POST' | 'DELETE';

function describe(endpoint: Endpoint): string {
  return endpoint.kind === 'socket' ? endpoint.socket : endpoint.url.origin + endpoint.url.pathname.replace(/\/$/, '');
}

function requestOptions(endpoint: Endpoint, method: Method, path: string, headers: Record<string, string>): { options: RequestOptions; secure: boolean } {
  if (endpoint.kind === 'socket') return { options: { socketPath: endpoint.socket, method, path, headers }, secure: false };
  // A URL with a path (`https://proxy/backer`) prefixes every route.
  const target = new URL(endpoint.url.pathname.replace(/\/$/, '') + path, endpoint.url);
  const auth = endpoint.token === null ? {} : { authorization: `Bearer ${endpoint.token}` };
  return {
    options: { protocol: target.protocol, hostname: target.hostname.replace(/^\[(.*)\]$/, '$1'), port: target.port, method, path: target.pathname + target.search, headers: { ...headers, ...auth } },
    secure: target.protocol === 'https:',
  };
}

function readReply<T>(res: IncomingMessage, resolve: (value: T) => void, reject: (err: unknown) => void): void {
  const chunks: Buffer[] = [];
  res.on('data', (c: Buffer) => chunks.push(c));
  res.on('end', () => {
    let body: unknown;
    try {
      body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    } catch (err) {
      reject(new BackerError('INTERNAL', `the daemon answered ${res.statusCode ?? '?'} with invalid JSON`, { component: 'cli', cause: err }));
      return;
    }
    if ((res.statusCode ?? 500) >= 400) {
      const error = (body as { error?: { code?: ErrorCode; message?: string } }).error;
      reject(new BackerError(error?.code ?? 'INTERNAL', error?.message ?? `HTTP ${res.statusCode ?? '?'}`, { component: 'daemon' }));
      return;
    }
    resolve(body as T);
  });
  res.on('error', reject);
}

/** A minimal JSON client for the daemon's API (a socket path is the socket endpoint). */
export async function callApi<T>(endpoint: Endpoint | string, method: Method, path: string, body?: unknown): Promise<T> {
  const to: Endpoint = typeof endpoint === 'string' ? { kind: 'socket', socket: endpoint } : endpoint;
  const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
  const headers: Record<string, string> = { accept: 'application/json' };
  if (payload) headers['content-type'] = 'application/json';
  const { options, secure } = requestOptions(to, method, path, headers);
  return new Promise<T>((resolve, reject) => {
    const req = (secure ? httpsRequest : httpRequest)(options, (res) => readReply(res, resolve, reject));
    req.on('error', (err) =>
      reject(
        new BackerError(
          'DAEMON_UNREACHABLE',
          to.kind === 'socket'
            ? `cannot reach the Backer daemon at ${to.socket} (is \`backer daemon\` running with the same config?)`
            : `cannot reach the Backer API at ${describe(to)}: ${err.message}`,
          { component: 'cli', details: to.kind === 'socket' ? { socket: to.socket } : { url: describe(to) }, cause: err },
        ),
      ),
    );
    req.end(payload);
  });
}
