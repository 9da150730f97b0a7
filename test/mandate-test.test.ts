// `backer mandates test`: every check a backup needs, against a real daemon process and real
// containers, storing nothing. Containers, bucket and dirs of this file are named mtest-*.
import { execFileSync } from 'node:child_process';
import { mkdir, readdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { MandateTestReport } from '../src/checks/mandate-test.js';
import { callApi } from '../src/cli/client.js';
import { cli } from './helpers/cli.js';
import { spawnDaemon, waitForHealth, type DaemonProcess } from './helpers/daemon-proc.js';
import { CCRYPT_KEY, createTestEnv, s3Client, type TestEnv } from './helpers/env.js';
import { startMariaDb } from './helpers/mariadb.js';
import { PG_PASSWORD, startPostgres } from './helpers/postgres.js';
import { allCommandLines } from './helpers/proc.js';
import { PASSWORD as REDIS_PASSWORD, startRedis } from './helpers/redis.js';
import { seedSqlite, startSqliteApp } from './helpers/sqlite.js';
import { VOLUME_HELPER_YAML } from './helpers/volume-config.js';
import { docker, HOST_IMAGE } from './setup/services.js';

const host = (): string => inject('dockerHost');
const NEVER = '0 0 29 2 *';
/** A password the test knows and the server refuses: it must show up nowhere. */
const WRONG_PASSWORD = 'Wr0ng-mtest-Pw-8d1c';
const CONTAINERS = ['mtest-vol', 'mtest-maria', 'mtest-maria-pw', 'mtest-pg', 'mtest-redis', 'mtest-sqlite', 'mtest-stopped'];

let env: TestEnv;
let daemon: DaemonProcess;
let socket: string;
let tcpPort: number;
const OPS_TOKEN = 'mtest-ops-token-4f1d9a7c2b';
const VIEWER_TOKEN = 'mtest-viewer-token-8e2c5b1a';

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Host programs the daemon may run: its PATH holds these and nothing else (no `age`). */
async function hostBin(dir: string): Promise<string> {
  const bin = join(dir, 'bin');
  await mkdir(bin);
  for (const program of ['sh', 'tar', 'gzip', 'ccrypt']) {
    await symlink(execFileSync('sh', ['-c', `command -v ${program}`], { encoding: 'utf8' }).trim(), join(bin, program));
  }
  return bin;
}

function staticMandates(dir: string): string {
  return `mandates:
  mtest-files:
    type: files
    interval: "${NEVER}"
    target: local,s3
    middleware: compression,encryption
    files: { path: ${dir}/src }
  mtest-unwritable:
    type: files
    interval: "${NEVER}"
    target: local,unwritable
    files: { path: ${dir}/src }
  mtest-noage:
    type: files
    interval: "${NEVER}"
    target: local
    middleware: compression,age
    files: { path: ${dir}/src }
  mtest-badpw:
    type: mysql
    container: mtest-maria-pw
    interval: "${NEVER}"
    target: local
    mysql: { password: "Text:${WRONG_PASSWORD}", database: shop }
  mtest-vol:
    type: volume
    container: mtest-vol
    interval: "${NEVER}"
    target: local
  mtest-stopped:
    type: mysql
    container: mtest-stopped
    interval: "${NEVER}"
    target: local
    mysql: { password: Text:x }
`;
}

async function startContainers(): Promise<void> {
  const labels = (type: string, extra: Record<string, string>): Record<string, string> => ({
    'backer.enabled': 'true',
    'backer.type': type,
    'backer.interval': NEVER,
    'backer.target': 'local,s3',
    ...extra,
  });
  await Promise.all([
    startMariaDb(host(), {
      name: 'mtest-maria',
      labels: labels('mysql', { 'backer.middleware': 'compression,encryption', 'backer.mysql.password': 'Env:MYSQL_ROOT_PASSWORD', 'backer.mysql.database': 'shop' }),
    }),
    // Its mandate is static (a wrong password): a static mandate replaces the label mandate of its container.
    startMariaDb(host(), { name: 'mtest-maria-pw' }),
    startPostgres('mtest-pg', labels('postgres', { 'backer.postgres.password': 'Env:POSTGRES_PASSWORD', 'backer.postgres.socket_dir': '/tmp' })),
    startRedis('mtest-redis', { labels: labels('redis', { 'backer.redis.password': 'Env:REDIS_PASSWORD' }) }),
    startSqliteApp('mtest-sqlite', labels('sqlite', { 'backer.sqlite.path': '/data/app.db' })),
    docker(host(), ['run', '-d', '--name', 'mtest-vol', '--network', 'none', '-v', 'mtest-vol-data:/data', '-v', '/usr:/usr:ro', HOST_IMAGE, '/usr/bin/sleep', 'infinity']),
    docker(host(), ['run', '-d', '--name', 'mtest-stopped', '--network', 'none', '-v', '/usr:/usr:ro', HOST_IMAGE, '/usr/bin/sleep', 'infinity']),
  ]);
  await seedSqlite('mtest-sqlite', 50);
  await docker(host(), ['stop', '-t', '1', 'mtest-stopped']);
}

beforeAll(async () => {
  const base = await createTestEnv('mtest');
  await writeFile(join(base.dir, 'not-a-dir'), 'a file where the target wants a directory\n');
  await mkdir(join(base.dir, 'src'));
  await writeFile(join(base.dir, 'src', 'data.txt'), 'some data\n');
  // Appended: the unwritable target (below a regular file: not even root can create it) and the static mandates.
  const yaml = (await readFile(base.configPath, 'utf8')).replace(
    'middleware:\n',
    `  - name: unwritable\n    type: local\n    path: ${base.dir}/not-a-dir/backups\nmiddleware:\n`,
  );
  tcpPort = await freePort();
  await writeFile(join(base.dir, 'ops.token'), `${OPS_TOKEN}\n`);
  await writeFile(join(base.dir, 'viewer.token'), `${VIEWER_TOKEN}\n`);
  const api = `api:
  listen: 127.0.0.1:${tcpPort}
  tokens:
    - { name: ops, token_file: ops.token, scope: operate }
    - { name: viewer, token_file: viewer.token, scope: read }
`;
  await writeFile(base.configPath, `${yaml}\n${api}${VOLUME_HELPER_YAML}${staticMandates(base.dir)}`);
  env = base;
  await startContainers();
  socket = join(env.dir, 'data', 'backer.sock');
  daemon = spawnDaemon(env.configPath, { env: { PATH: await hostBin(env.dir) } });
  await waitForHealth(daemon, socket);
}, 180_000);

afterAll(async () => {
  await daemon?.stop();
  await docker(host(), ['rm', '-f', ...CONTAINERS]).catch(() => undefined);
  await docker(host(), ['volume', 'rm', '-f', 'mtest-vol-data']).catch(() => undefined);
});

async function testCli(mandate: string, json = true): Promise<{ code: number; report: MandateTestReport | null; stdout: string; stderr: string }> {
  const run = await cli(['--config', env.configPath, ...(json ? ['--json'] : []), 'mandates', 'test', mandate]);
  return { ...run, report: json ? (JSON.parse(run.stdout) as MandateTestReport) : null };
}

function check(report: MandateTestReport | null, name: string): { ok: boolean; message: string } {
  const found = report?.checks.find((c) => c.name === name);
  if (found === undefined) throw new Error(`no check "${name}" in ${JSON.stringify(report)}`);
  return found;
}

async function stillAnswers(): Promise<void> {
  expect((await callApi<{ status: string }>(socket, 'GET', '/v1/health')).status).toBe('ok');
  const list = await cli(['--config', env.configPath, '--json', 'mandates', 'list']);
  expect(list.code).toBe(0);
}

describe('healthy mandates pass every check', () => {
  it('mariadb: container, tools, credentials, both targets, gzip and ccrypt', async () => {
    const { code, report } = await testCli('mtest-maria');
    expect(report?.ok, JSON.stringify(report)).toBe(true);
    expect(code).toBe(0);
    expect(report?.checks.map((c) => c.name)).toEqual([
      'container running',
      'dump tool present',
      'credentials accepted',
      'target local writable and listable',
      'target s3 writable and listable',
      'middleware compression usable',
      'middleware encryption usable',
    ]);
    expect(check(report, 'dump tool present').message).toMatch(/mariadb-dump.*mariadb/);
    expect(check(report, 'credentials accepted').message).toMatch(/login as user "root" accepted; database shop present/);
    expect(check(report, 'middleware encryption usable').message).toMatch(/ccrypt: encodes and decodes/);
  });

  it('postgres, redis, sqlite and volume pass with their own source checks', async () => {
    for (const [mandate, credential, pattern] of [
      ['mtest-pg', 'credentials accepted', /psql login as user "postgres" accepted \(PostgreSQL \d+/],
      ['mtest-redis', 'credentials accepted', /PING answered PONG \(Redis [\d.]+, password accepted\)/],
      ['mtest-sqlite', 'database readable', /\/data\/app.db opens read-only \(\d+ schema entries/],
      ['mtest-vol', 'volumes readable', /^\/data \(helper image hostuser:latest\)$/],
    ] as const) {
      const { code, report } = await testCli(mandate);
      expect(report?.ok, JSON.stringify(report)).toBe(true);
      expect(code).toBe(0);
      expect(check(report, credential).message).toMatch(pattern);
    }
  });

  it('a files mandate checks its directory and tar on the host; the human output has one line per check', async () => {
    const run = await testCli('mtest-files', false);
    expect(run.code, run.stdout + run.stderr).toBe(0);
    const lines = run.stdout.trim().split('\n');
    expect(lines).toContain(`✓ path readable: ${env.dir}/src readable (1 entries at the top)`);
    expect(lines.some((l) => /^✓ dump tool present \(host\): .*\/tar in the host$/.test(l))).toBe(true);
    expect(lines.at(-1)).toBe('mandate mtest-files: all 6 checks passed');
  });
});

describe('failures: each named, the daemon still answers', () => {
  it('a wrong password fails "credentials accepted" with the server\'s answer, and the password shows nowhere', async () => {
    const seen = new Set<string>();
    let done = false;
    const sampling = (async () => {
      while (!done) {
        for (const p of await allCommandLines()) seen.add(p.argv);
        await new Promise((r) => setTimeout(r, 5));
      }
    })();
    const run = await testCli('mtest-badpw').finally(() => (done = true));
    await sampling;
    expect(run.code).toBe(1);
    expect(run.report?.ok).toBe(false);
    expect(check(run.report, 'container running').ok).toBe(true);
    const creds = check(run.report, 'credentials accepted');
    expect(creds.ok).toBe(false);
    expect(creds.message).toMatch(/login as user "root" in container mtest-maria-pw exited with code 1: .*Access denied for user 'root'@'localhost' \(using password: YES\)/);
    expect([...seen].some((a) => a.includes('mariadb') && a.includes('--user=root'))).toBe(true);
    for (const text of [run.stdout, run.stderr, daemon.output(), ...seen]) expect(text).not.toContain(WRONG_PASSWORD);
    await stillAnswers();
  });

  it('a stopped container fails "container running"; the checks that need it are not run', async () => {
    const { code, report } = await testCli('mtest-stopped');
    expect(code).toBe(1);
    expect(check(report, 'container running')).toMatchObject({ ok: false, message: 'container mtest-stopped is not running (exited)' });
    expect(check(report, 'credentials accepted')).toMatchObject({ ok: false, message: 'not checked: container mtest-stopped is not running' });
    expect(check(report, 'target local writable and listable').ok).toBe(true);
    await stillAnswers();
  });

  it('an unwritable local target fails "target writable" and leaves no probe anywhere', async () => {
    const { code, report } = await testCli('mtest-unwritable');
    expect(code).toBe(1);
    expect(check(report, 'target local writable and listable').ok).toBe(true);
    const failed = check(report, 'target unwritable writable and listable');
    expect(failed.ok).toBe(false);
    expect(failed.message).toMatch(/^cannot write to target unwritable: .*(ENOTDIR|not a directory)/);
    await stillAnswers();
  });

  it('a middleware program missing on the host fails "middleware usable"', async () => {
    const { code, report } = await testCli('mtest-noage');
    expect(code).toBe(1);
    expect(check(report, 'middleware compression usable').ok).toBe(true);
    expect(check(report, 'middleware age usable')).toMatchObject({ ok: false, message: 'the program age of middleware age is not installed (not found on PATH)' });
    await stillAnswers();
  });

  it('the API answers 200 with the report for a failing mandate, 404 for an unknown one', async () => {
    const report = await callApi<MandateTestReport>(socket, 'POST', '/v1/mandates/mtest-stopped/test');
    expect(report).toMatchObject({ mandate: 'mtest-stopped', ok: false });
    const missing = await cli(['--config', env.configPath, 'mandates', 'test', 'mtest-nope']);
    expect(missing.code).toBe(4);
    expect(missing.stderr).toMatch(/no mandate named mtest-nope/);
  });
});

it('over TCP, an operate token may test a mandate; a read token gets 403 (exit 6)', async () => {
  const remote = (token: string): string[] => ['--url', `http://127.0.0.1:${tcpPort}`, '--token-file', join(env.dir, token), '--json', 'mandates', 'test', 'mtest-files'];
  const ops = await cli(remote('ops.token'));
  expect(ops.code, ops.stdout + ops.stderr).toBe(0);
  expect((JSON.parse(ops.stdout) as MandateTestReport).ok).toBe(true);
  const viewer = await cli(remote('viewer.token'));
  expect(viewer.code).toBe(6);
  expect(JSON.parse(viewer.stdout)).toEqual({
    error: { code: 'API_FORBIDDEN', message: 'token viewer has scope read; POST /v1/mandates/mtest-files/test needs operate' },
  });
  for (const text of [ops.stdout, ops.stderr, viewer.stdout, viewer.stderr, daemon.output()]) {
    expect(text).not.toContain(OPS_TOKEN);
    expect(text).not.toContain(VIEWER_TOKEN);
  }
});

it('stored nothing on any target: no backup, no manifest, no probe object', async () => {
  const files = async (dir: string): Promise<string[]> =>
    (await readdir(dir, { recursive: true, withFileTypes: true }).catch(() => [])).filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name));
  expect(await files(join(env.dir, 'backups'))).toEqual([]);
  const listed = await s3Client().send(new ListObjectsV2Command({ Bucket: env.bucket }));
  expect(listed.KeyCount ?? 0).toBe(0);
  // No container stopped: every one that ran still runs, and no helper container is left.
  const running = await docker(host(), ['ps', '--format', '{{.Names}}', '--filter', 'name=mtest-']);
  expect(running.split('\n').sort()).toEqual(CONTAINERS.filter((c) => c !== 'mtest-stopped').sort());
  expect(daemon.output()).not.toContain(CCRYPT_KEY);
  expect(daemon.output()).not.toContain(PG_PASSWORD);
  expect(daemon.output()).not.toContain(REDIS_PASSWORD);
});
