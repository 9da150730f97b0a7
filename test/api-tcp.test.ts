/**
 * The API over TCP against real `backer daemon` processes: HTTPS with a self-signed certificate made
 * by `openssl req -x509`, the remote CLI (`--url`/`--token-file`, BACKER_URL/BACKER_TOKEN_FILE) with
 * its exit codes for 401/403, a non-loopback `api.listen` without tokens refused at load, and
 * `backer token create`. Tokens never appear in argv or in any log.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApi } from '../src/api/app.js';
import { sha256Hex, tokenSecrets } from '../src/api/config.js';
import { stubApiDeps } from '../src/api/openapi-document.js';
import { parseConfigText } from '../src/config/load.js';
import { callApi } from '../src/cli/client.js';
import type { AnyJob } from '../src/queue/types.js';
import { startTcpDaemon, tcpRequest, type TcpDaemon } from './helpers/api-tcp.js';
import { cli, type CliResult } from './helpers/cli.js';
import { createTestEnv, filesMandateYaml } from './helpers/env.js';

const ID = randomBytes(3).toString('hex');
const MANDATE = `at-files-${ID}`;
const run = promisify(execFile);

let plain: TcpDaemon;
let tls: TcpDaemon;
let caPem: string;
let caFile: string;
let dataDir: string;

const ok = (r: CliResult): string => {
  expect(r.code, r.stdout + r.stderr).toBe(0);
  return r.stdout;
};

/** The CLI with no config file at all: only --url/BACKER_URL can reach the daemon. */
const remote = (args: string[], env: Record<string, string> = {}): Promise<CliResult> => cli(args, { BACKER_CONFIG: join(tmpdir(), `at-no-config-${ID}.yml`), ...env });

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'at-files-'));
  await writeFile(join(dataDir, 'a.txt'), 'alpha\n'.repeat(1000));
  const mandates = `mandates:\n${filesMandateYaml(MANDATE, 'AT_DIR', { target: 'local' })}`;
  const certDir = await mkdtemp(join(tmpdir(), 'at-cert-'));
  caFile = join(certDir, 'cert.pem');
  await run('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost', '-keyout', join(certDir, 'key.pem'), '-out', caFile]);
  caPem = await readFile(caFile, 'utf8');
  [plain, tls] = await Promise.all([
    startTcpDaemon('api-tcp', { extra: mandates, env: { AT_DIR: dataDir } }),
    startTcpDaemon('api-tls', { extra: mandates, env: { AT_DIR: dataDir }, api: `  tls: { cert_file: ${join(certDir, 'cert.pem')}, key_file: ${join(certDir, 'key.pem')} }` }),
  ]);
}, 180_000);

afterAll(async () => {
  await Promise.all([plain?.daemon.stop(), tls?.daemon.stop()]);
});

describe('TLS', () => {
  it('api.tls serves HTTPS with the configured certificate; plain HTTP is not answered there', async () => {
    expect(tls.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    const health = await tcpRequest(tls.url, 'GET', '/healthz', { ca: caPem });
    expect(health.status).toBe(200);
    const jobs = await tcpRequest(tls.url, 'GET', '/v1/jobs', { ca: caPem, token: tls.tokens.read });
    expect(jobs.status, jobs.text).toBe(200);
    expect((await tcpRequest(tls.url, 'GET', '/v1/jobs', { ca: caPem })).status).toBe(401);
    await expect(tcpRequest(tls.url.replace('https:', 'http:'), 'GET', '/healthz')).rejects.toThrow();
    // An untrusted certificate is refused by the client.
    await expect(tcpRequest(tls.url, 'GET', '/healthz')).rejects.toThrow(/self-signed|certificate/i);
  });

  it('the remote CLI over HTTPS trusts the certificate through NODE_EXTRA_CA_CERTS', async () => {
    const out = ok(await remote(['jobs', 'list', '--json', '--url', tls.url, '--token-file', tls.tokenFiles.read], { NODE_EXTRA_CA_CERTS: caFile }));
    expect(JSON.parse(out)).toMatchObject({ jobs: [], total: 0 });
  });
});

describe('remote CLI', () => {
  it('backer backup --wait and jobs list through --url/--token-file, without a config file', async () => {
    const backup = await remote(['backup', MANDATE, '--wait', '--json', '--url', plain.url, '--token-file', plain.tokenFiles.operate]);
    const job = JSON.parse(ok(backup)) as AnyJob;
    expect(job).toMatchObject({ mandate: MANDATE, state: 'succeeded', trigger: 'api' });
    const page = JSON.parse(ok(await remote(['jobs', 'list', '--json', '--url', plain.url, '--token-file', plain.tokenFiles.read]))) as { jobs: AnyJob[] };
    expect(page.jobs.map((j) => j.id)).toContain(job.id);
    expect(ok(await remote(['jobs', 'list', '--url', plain.url, '--token-file', plain.tokenFiles.read]))).toContain(job.id);
  });

  it('BACKER_URL and BACKER_TOKEN_FILE work like the options', async () => {
    const out = ok(await remote(['mandates', 'list', '--json'], { BACKER_URL: plain.url, BACKER_TOKEN_FILE: plain.tokenFiles.read }));
    expect(out).toContain(MANDATE);
  });

  it('a read token for a backup is exit 6 API_FORBIDDEN; no token and a wrong one exit 6 API_UNAUTHORIZED', async () => {
    const forbidden = await remote(['backup', MANDATE, '--json', '--url', plain.url, '--token-file', plain.tokenFiles.read]);
    expect(forbidden.code).toBe(6);
    expect(JSON.parse(forbidden.stdout)).toMatchObject({ error: { code: 'API_FORBIDDEN' } });
    expect(forbidden.stdout).toContain('ci-read');
    const none = await remote(['jobs', 'list', '--url', plain.url]);
    expect(none.code).toBe(6);
    expect(none.stderr).toMatch(/^backer: this route needs a valid bearer token/);
    const wrongFile = join(plain.env.dir, 'wrong.token');
    await writeFile(wrongFile, 'bk_not-a-token-of-this-daemon\n');
    const wrong = await remote(['jobs', 'list', '--json', '--url', plain.url, '--token-file', wrongFile]);
    expect(wrong.code).toBe(6);
    expect(JSON.parse(wrong.stdout)).toMatchObject({ error: { code: 'API_UNAUTHORIZED' } });
    // The daemon still answers, and the refused job was never queued.
    const jobs = await callApi<{ jobs: AnyJob[] }>(plain.socket, 'GET', '/v1/jobs');
    expect(jobs.jobs.every((j) => j.trigger === 'api')).toBe(true);
    expect((await tcpRequest(plain.url, 'GET', '/readyz')).status).toBe(200);
  });

  it('an unreachable URL is exit 3; a missing token file and a bad URL are exit 2', async () => {
    const down = await remote(['jobs', 'list', '--url', 'http://127.0.0.1:1']);
    expect(down.code).toBe(3);
    expect(down.stderr).toContain('cannot reach the Backer API at http://127.0.0.1:1');
    const missing = await remote(['jobs', 'list', '--url', plain.url, '--token-file', join(plain.env.dir, 'nope.token')]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('cannot read the token file');
    const creds = await remote(['jobs', 'list', '--url', 'http://user:pw@127.0.0.1:1']);
    expect(creds.code).toBe(2);
    expect(creds.stderr).not.toContain('pw@');
  });

  it('tokens never appear in the daemon log; the token file is read, never passed in argv', () => {
    for (const d of [plain, tls]) {
      for (const raw of Object.values(d.tokens)) expect(d.daemon.output()).not.toContain(raw);
      expect(d.daemon.child.spawnargs.join(' ')).not.toContain('bk_');
    }
  });
});

describe('config', () => {
  it('a non-loopback api.listen without api.tokens is refused at load (CONFIG_INVALID naming api.listen)', async () => {
    const env = await createTestEnv('api-tcp-open', 'api:\n  listen: 0.0.0.0:0\n');
    const check = await cli(['config', 'check', '--config', env.configPath]);
    expect(check.code).not.toBe(0);
    expect(check.stdout + check.stderr).toMatch(/api\.listen: 0\.0\.0\.0 is not a loopback address/);
    const daemon = await cli(['daemon', '--config', env.configPath]);
    expect(daemon.code).toBe(2);
    expect(daemon.stderr).toContain('api.listen');
  });

  it('a TCP port in use and an unreadable TLS key fail the start with CONFIG_INVALID naming the key (exit 2); the running daemon is untouched', async () => {
    const port = new URL(plain.url).port;
    const busy = await createTestEnv('api-tcp-busy', `api:\n  listen: 127.0.0.1:${port}\n`);
    const taken = await cli(['daemon', '--config', busy.configPath]);
    expect(taken.code, taken.stderr).toBe(2);
    expect(taken.stderr).toContain(`api.listen 127.0.0.1:${port}: cannot listen`);
    expect(taken.stderr).toContain('EADDRINUSE');
    const noKey = await createTestEnv('api-tcp-nokey', `api:\n  listen: 127.0.0.1:0\n  tls: { cert_file: ${caFile}, key_file: missing-key.pem }\n`);
    const missing = await cli(['daemon', '--config', noKey.configPath]);
    expect(missing.code, missing.stderr).toBe(2);
    expect(missing.stderr).toContain(`api.tls.key_file: cannot read ${join(noKey.dir, 'missing-key.pem')}`);
    expect((await tcpRequest(plain.url, 'GET', '/v1/jobs', { token: plain.tokens.read })).status).toBe(200);
  });

  it('backer token create prints a token once and the api.tokens line with its SHA-256', async () => {
    const human = ok(await cli(['token', 'create', 'deploy-bot', '--scope', 'operate']));
    const token = /^token: (bk_[A-Za-z0-9_-]{43})$/m.exec(human)?.[1] ?? '';
    expect(token).not.toBe('');
    expect(human).toContain(`- { name: deploy-bot, token_sha256: ${sha256Hex(token)}, scope: operate }`);
    const json = JSON.parse(ok(await cli(['token', 'create', 'ro', '--scope', 'read', '--json']))) as Record<string, string>;
    expect(json).toMatchObject({ name: 'ro', scope: 'read', token_sha256: sha256Hex(json.token ?? '') });
    const bad = await cli(['token', 'create', 'x', '--scope', 'root']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('expected one of read, operate, admin');
  });
});

describe('api config at load', () => {
  const load = (api: string, baseDir = '/etc/backer') => parseConfigText(`api:\n${api}`, 'backer.yml', {}, baseDir);

  it('reads and hashes a token_file relative to the config file; the raw token is only a secret to register', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'at-load-'));
    await writeFile(join(dir, 'ops.token'), 'bk_0123456789abcdef0123\n');
    const { config, problems } = load('  listen: "[::1]:8420"\n  tokens:\n    - { name: ops, token_file: ops.token, scope: admin }\n', dir);
    expect(problems).toEqual([]);
    expect(config.api.listen).toEqual({ host: '::1', port: 8420 });
    expect(config.api.tokens).toEqual([{ name: 'ops', scope: 'admin', sha256: sha256Hex('bk_0123456789abcdef0123') }]);
    expect(JSON.stringify(config)).not.toContain('bk_0123456789abcdef0123');
    expect(tokenSecrets(config.api.tokens)).toEqual(['bk_0123456789abcdef0123']);
  });

  it('names every mistake: both or neither of hash and file, a missing file, a duplicate name, tls without listen, a bad address', () => {
    const hash = 'a'.repeat(64);
    const shape = load(`  tokens:\n    - { name: a, token_sha256: ${hash}, token_file: x, scope: read }\n    - { name: b, scope: read }\n`).problems;
    expect(shape.map((p) => `${p.where}: ${p.message}`)).toEqual([
      'backer.yml: api.tokens[0]: give exactly one of token_sha256 and token_file',
      'backer.yml: api.tokens[1]: give exactly one of token_sha256 and token_file',
    ]);
    const { problems } = load(
      `  tls: { cert_file: c.pem, key_file: k.pem }\n  tokens:\n    - { name: c, token_file: /nonexistent/at.token, scope: read }\n    - { name: c, token_sha256: ${hash}, scope: admin }\n`,
    );
    expect(problems.map((p) => `${p.where}: ${p.message}`).sort()).toEqual([
      'backer.yml: api.tls: api.tls needs api.listen (TLS is for the TCP listener; the unix socket has none)',
      'backer.yml: api.tokens[0].token_file: cannot read /nonexistent/at.token: ENOENT',
      'backer.yml: api.tokens[1].name: duplicate token name "c"',
    ]);
    expect(load('  listen: localhost\n').problems.map((p) => p.message).join()).toContain('expected HOST:PORT');
    expect(load('  listen: 127.0.0.1:8420\n').problems).toEqual([]);
    expect(load('  listen: 10.0.0.5:8420\n').problems.map((p) => p.where)).toEqual(['backer.yml: api.listen']);
    expect(load(`  listen: 10.0.0.5:8420\n  tokens: [{ name: a, token_sha256: ${hash}, scope: read }]\n`).problems).toEqual([]);
  });
});

describe('liveness and readiness', () => {
  it('/healthz answers at once, /readyz is 503 starting until start-up completes, then follows the probe', async () => {
    let started!: () => void;
    const ready = new Promise<void>((resolve) => (started = resolve));
    let docker = { status: 'ok' as 'ok' | 'failed', message: null as string | null };
    const app = createApi({ ...stubApiDeps(), ready, readiness: { check: () => Promise.resolve({ ready: docker.status === 'ok', checks: { docker, state: { status: 'ok', message: null } } }) } });
    const get = async (path: string): Promise<{ status: number; body: Record<string, unknown> }> => {
      const res = await app.request(path, {}, { transport: 'tcp' });
      return { status: res.status, body: (await res.json()) as Record<string, unknown> };
    };
    expect(await get('/healthz')).toMatchObject({ status: 200, body: { status: 'starting' } });
    expect(await get('/readyz')).toMatchObject({ status: 503, body: { ready: false, status: 'starting' } });
    started();
    await ready;
    expect(await get('/readyz')).toMatchObject({ status: 200, body: { ready: true, status: 'ready', checks: { docker: { status: 'ok' } } } });
    docker = { status: 'failed', message: 'Docker is not reachable' };
    expect(await get('/readyz')).toMatchObject({ status: 503, body: { ready: false, status: 'not_ready', checks: { docker: { status: 'failed', message: 'Docker is not reachable' } } } });
    expect(await get('/healthz')).toMatchObject({ status: 200, body: { status: 'ok' } });
    expect((await get('/v1/jobs')).status).toBe(401);
  });
});
