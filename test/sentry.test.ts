// Sentry reporting of a real daemon process to a local Sentry-compatible ingest endpoint, searched
// for every secret. Containers, bucket and dirs of this file are named sentry-*.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, inject, it } from 'vitest';
import { cli } from './helpers/cli.js';
import { spawnDaemon, waitForHealth, type DaemonProcess } from './helpers/daemon-proc.js';
import { CCRYPT_KEY, createTestEnv, GPG_PASSPHRASE, type TestEnv } from './helpers/env.js';
import { ROOT_PASSWORD, startMariaDb } from './helpers/mariadb.js';
import { docker } from './setup/services.js';

const host = (): string => inject('dockerHost');
const NEVER = '0 0 29 2 *';
const WRONG_PASSWORD = 'Wr0ng-sentry-Pw-51ab';

interface Item {
  header: { type?: string };
  payload: Record<string, unknown>;
}

/** Everything the ingest endpoint received: raw bytes (decompressed) and the parsed envelope items. */
const received: { path: string; auth: string; body: Buffer }[] = [];
let ingest: Server;
let env: TestEnv;
let daemon: DaemonProcess;

function startIngest(): Promise<number> {
  ingest = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks);
      const body = req.headers['content-encoding'] === 'gzip' ? gunzipSync(raw) : raw;
      received.push({ path: req.url ?? '', auth: String(req.headers['x-sentry-auth'] ?? ''), body });
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  return new Promise((resolve) => ingest.listen(0, '127.0.0.1', () => resolve((ingest.address() as AddressInfo).port)));
}

function items(): Item[] {
  const out: Item[] = [];
  for (const { body } of received) {
    const lines = body.toString('utf8').split('\n').filter((l) => l.trim() !== '');
    for (let i = 1; i + 1 < lines.length; i += 2) {
      out.push({ header: JSON.parse(lines[i] ?? '{}') as Item['header'], payload: JSON.parse(lines[i + 1] ?? '{}') as Record<string, unknown> });
    }
  }
  return out;
}

const events = (): Record<string, unknown>[] => items().filter((i) => i.header.type === 'event').map((i) => i.payload);
const checkIns = (slug: string): Record<string, unknown>[] =>
  items().filter((i) => i.header.type === 'check_in' && i.payload['monitor_slug'] === slug).map((i) => i.payload);
const tagsOf = (event: Record<string, unknown>): Record<string, string> => (event['tags'] ?? {}) as Record<string, string>;

async function until<T>(what: string, get: () => T | undefined): Promise<T> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const value = get();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`${what} never arrived; received:\n${received.map((r) => r.body.toString()).join('\n---\n')}\n${daemon.output()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

beforeAll(async () => {
  const port = await startIngest();
  const base = await createTestEnv('sentry');
  await mkdir(join(base.dir, 'src'));
  await writeFile(join(base.dir, 'src', 'data.txt'), 'some data\n');
  const mandates = `
sentry:
  dsn_file: sentry.dsn
  environment: test
  crons: true
mandates:
  sentry-ok:
    type: files
    interval: "${NEVER}"
    target: local
    middleware: encryption
    files: { path: ${base.dir}/src }
  sentry-nofiles:
    type: files
    interval: "${NEVER}"
    target: local,s3
    middleware: encryption
    files: { path: ${base.dir}/missing }
  sentry-badpw:
    type: mysql
    container: sentry-maria
    interval: "${NEVER}"
    target: local
    mysql: { password: "Text:${WRONG_PASSWORD}", database: shop }
  sentry-nodb:
    type: mysql
    container: sentry-maria
    interval: "${NEVER}"
    target: s3
    mysql: { password: Env:MYSQL_ROOT_PASSWORD, database: nosuchdb }
`;
  await writeFile(base.configPath, `${await readFile(base.configPath, 'utf8')}\n${mandates}`);
  // Relative to the config file; read at start.
  await writeFile(join(base.dir, 'sentry.dsn'), `http://publickey@127.0.0.1:${port}/1\n`);
  env = base;
  await startMariaDb(host(), { name: 'sentry-maria' });
  // A probe loaded before Backer: SIGUSR2 throws an error outside any handler, its message holding the ccrypt key.
  const probe = `data:text/javascript,process.on('SIGUSR2',()=>setTimeout(()=>{throw new Error('sentry probe escaped with '+process.env.TEST_CCRYPT_KEY)}))`;
  daemon = spawnDaemon(env.configPath, { imports: [probe] });
  await waitForHealth(daemon, join(env.dir, 'data', 'backer.sock'));
}, 120_000);

afterAll(async () => {
  await daemon?.stop();
  await docker(host(), ['rm', '-f', 'sentry-maria']).catch(() => undefined);
  await new Promise((r) => ingest.close(r));
});

async function backup(mandate: string): Promise<number> {
  return (await cli(['--config', env.configPath, 'backup', mandate, '--wait'])).code;
}

it('reports a failed backup with the mandate, job, kind and error code as tags', async () => {
  expect(await backup('sentry-nofiles')).toBe(1);
  const event = await until('the event of sentry-nofiles', () => events().find((e) => tagsOf(e)['mandate'] === 'sentry-nofiles'));
  expect(tagsOf(event)).toMatchObject({ mandate: 'sentry-nofiles', kind: 'backup', error_code: 'DUMP_FAILED' });
  expect(tagsOf(event)['job_id']).toMatch(/^[0-9a-f-]{8,}/);
  expect(event).toMatchObject({ level: 'error', environment: 'test', release: expect.stringMatching(/^backer@\d+\.\d+\.\d+/) as unknown });
  expect(String(event['message'])).toContain(`backup of sentry-nofiles failed: DUMP_FAILED: cannot read ${env.dir}/missing`);
  expect(event['request']).toBeUndefined();
  expect(event['breadcrumbs']).toBeUndefined();
  for (const r of received) {
    const url = new URL(r.path, 'http://ingest');
    expect(url.pathname).toBe('/api/1/envelope/');
    expect(`${url.search} ${r.auth}`).toContain('sentry_key=publickey');
  }
});

it('reports failed database backups (wrong password, unknown database) and sends Crons check-ins', async () => {
  expect(await backup('sentry-badpw')).toBe(1);
  expect(await backup('sentry-nodb')).toBe(1);
  const badpw = await until('the event of sentry-badpw', () => events().find((e) => tagsOf(e)['mandate'] === 'sentry-badpw'));
  expect(String(badpw['message'])).toMatch(/Access denied for user 'root'@'localhost'/);
  await until('the event of sentry-nodb', () => events().find((e) => tagsOf(e)['mandate'] === 'sentry-nodb'));
  const [start, end] = await until('two check-ins of sentry-badpw', () => {
    const found = checkIns('backer-sentry-badpw');
    return found.length >= 2 ? found : undefined;
  });
  expect(start).toMatchObject({ status: 'in_progress', monitor_config: { schedule: { type: 'crontab', value: NEVER }, timezone: 'UTC' } });
  expect(end).toMatchObject({ status: 'error', check_in_id: start?.['check_in_id'] });
});

it('a successful backup checks in in_progress then ok, and sends no event', async () => {
  expect(await backup('sentry-ok')).toBe(0);
  const [start, end] = await until('two check-ins of sentry-ok', () => {
    const found = checkIns('backer-sentry-ok');
    return found.length >= 2 ? found : undefined;
  });
  expect(start?.['status']).toBe('in_progress');
  expect(end).toMatchObject({ status: 'ok', check_in_id: start?.['check_in_id'] });
  expect(typeof end?.['duration']).toBe('number');
  expect(events().some((e) => tagsOf(e)['mandate'] === 'sentry-ok')).toBe(false);
});

it('captures an error that escaped every handler, scrubbed, and the daemon goes on', async () => {
  daemon.child.kill('SIGUSR2');
  const event = await until('the escaped error', () => events().find((e) => tagsOf(e)['kind'] === 'unexpected_error'));
  expect(event['level']).toBe('fatal');
  expect(tagsOf(event)['escaped']).toBe('uncaughtException');
  expect(JSON.stringify(event)).toContain('sentry probe escaped with [REDACTED]');
  const health = await cli(['--config', env.configPath, 'health']);
  expect(health.code).toBe(0);
});

it('no secret of the config in any byte sent to Sentry, after the flush at shutdown', async () => {
  await daemon.stop();
  const all = Buffer.concat(received.map((r) => r.body)).toString('utf8');
  expect(all.length).toBeGreaterThan(0);
  for (const secret of [CCRYPT_KEY, GPG_PASSPHRASE, inject('s3').secretAccessKey, ROOT_PASSWORD, WRONG_PASSWORD]) {
    expect(all).not.toContain(secret);
    expect(all).not.toContain(JSON.stringify(secret).slice(1, -1));
  }
  // Nor the environment or argv of the daemon.
  expect(all).not.toContain('TEST_S3_SECRET');
  expect(all).not.toContain('--import');
});
