import { readFile, writeFile } from 'node:fs/promises';
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { join } from 'node:path';
import { newToken } from '../../src/api/auth.js';
import type { Scope } from '../../src/api/route.js';
import { spawnDaemon, waitForHealth, type DaemonProcess } from './daemon-proc.js';
import { createTestEnv, type TestEnv } from './env.js';
import { parseLines } from './logs.js';

export interface TcpReply {
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
}

export interface TcpOptions {
  token?: string;
  body?: unknown;
  /** CA certificate (PEM) for https. */
  ca?: string;
  /** A body sent as is, with this content type (none when null). */
  raw?: { text: string; type: string | null };
  /** Stop reading after the headers of a 200 (event streams); errors are read whole. */
  headersOnly?: boolean;
}

/** One request to the API over TCP; never throws for an HTTP status. */
export function tcpRequest(base: string, method: string, path: string, options: TcpOptions = {}): Promise<TcpReply> {
  const url = new URL(path, base);
  const payload = options.raw !== undefined ? Buffer.from(options.raw.text) : options.body === undefined ? undefined : Buffer.from(JSON.stringify(options.body));
  const headers: Record<string, string> = { accept: 'application/json' };
  const type = options.raw !== undefined ? options.raw.type : 'application/json';
  if (payload && type !== null) headers['content-type'] = type;
  if (options.token !== undefined) headers.authorization = `Bearer ${options.token}`;
  const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = send(url, { method, headers, ...(options.ca === undefined ? {} : { ca: options.ca }) }, (res) => {
      if (options.headersOnly && res.statusCode === 200) {
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text: '' });
        res.destroy();
        return;
      }
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(payload);
  });
}

export interface TcpDaemon {
  env: TestEnv;
  daemon: DaemonProcess;
  socket: string;
  /** `http(s)://127.0.0.1:PORT` from the daemon's start-up line. */
  url: string;
  /** Raw tokens by scope (what a client holds), and the files holding them. */
  tokens: Record<Scope, string>;
  tokenFiles: Record<Scope, string>;
}

/**
 * A real `backer daemon` with `api.listen: 127.0.0.1:0` (the kernel picks a free port) and a token
 * of each scope: `read` by token_file, `operate` and `admin` by token_sha256. `api` adds keys to
 * the api section (e.g. tls), `extra` more top-level YAML (mandates).
 */
export async function startTcpDaemon(label: string, options: { api?: string; extra?: string; env?: Record<string, string> } = {}): Promise<TcpDaemon> {
  const made = { read: newToken(), operate: newToken(), admin: newToken() };
  const env = await createTestEnv(label, `${options.extra ?? ''}\n`);
  const tokenFiles = { read: join(env.dir, 'read.token'), operate: join(env.dir, 'operate.token'), admin: join(env.dir, 'admin.token') };
  for (const scope of ['read', 'operate', 'admin'] as const) await writeFile(tokenFiles[scope], `${made[scope].token}\n`, { mode: 0o600 });
  const api = [
    'api:',
    '  listen: 127.0.0.1:0',
    '  tokens:',
    `    - { name: ci-read, token_file: read.token, scope: read }`,
    `    - { name: ci-operate, token_sha256: ${made.operate.sha256}, scope: operate }`,
    `    - { name: ci-admin, token_sha256: ${made.admin.sha256}, scope: admin }`,
    options.api ?? '',
  ].join('\n');
  await writeFile(env.configPath, `${await readFile(env.configPath, 'utf8')}\n${api}\n`);
  const socket = join(env.dir, 'data', 'backer.sock');
  const daemon = spawnDaemon(env.configPath, { env: options.env ?? {} });
  await waitForHealth(daemon, socket, 60_000);
  const line = parseLines(daemon.output()).find((l) => typeof l.url === 'string' && l.msg.startsWith('API listening on'));
  if (line === undefined) throw new Error(`no "API listening on" line:\n${daemon.output()}`);
  return { env, daemon, socket, url: String(line.url), tokens: { read: made.read.token, operate: made.operate.token, admin: made.admin.token }, tokenFiles };
}
