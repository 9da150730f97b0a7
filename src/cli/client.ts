import { request } from 'node:http';
import { BackerError, type ErrorCode } from '../errors.js';

/** A minimal JSON client for the daemon's unix socket API. */
export async function callApi<T>(socketPath: string, method: 'GET' | 'POST', path: string, body?: unknown): Promise<T> {
  const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
  const headers: Record<string, string> = { accept: 'application/json' };
  if (payload) headers['content-type'] = 'application/json';
  return new Promise<T>((resolve, reject) => {
    const req = request({ socketPath, method, path, headers }, (res) => {
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
    });
    req.on('error', (err) =>
      reject(
        new BackerError('DAEMON_UNREACHABLE', `cannot reach the Backer daemon at ${socketPath} (is \`backer daemon\` running with the same config?)`, {
          component: 'cli',
          details: { socket: socketPath },
          cause: err,
        }),
      ),
    );
    req.end(payload);
  });
}
