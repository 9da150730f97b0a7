/**
 * `backer targets list|show` against a real `backer daemon` process with a local and an S3
 * (s3rver) target: the table and --json, usage after a backup, settings without the S3 secret,
 * an unknown target (exit 4), over TCP with a read token (and without one: exit 6), and no daemon
 * at all (exit 3).
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { TargetDetailJson, TargetJson } from '../src/cli/commands/targets.js';
import type { Manifest } from '../src/manifests/schema.js';
import { cli, type CliResult } from './helpers/cli.js';
import { spawnDaemon, waitForHealth, type DaemonProcess } from './helpers/daemon-proc.js';
import { createTestEnv, filesMandateYaml, type TestEnv } from './helpers/env.js';
import { jsonRequest } from './helpers/socket-http.js';

const ID = randomBytes(3).toString('hex');
const MANDATE = `tc-files-${ID}`;
const TOKEN = randomBytes(24).toString('hex');
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

let env: TestEnv;
let daemon: DaemonProcess;
let socket: string;
let url: string;
let artifact: Manifest;
const dirs: Record<string, string> = {};

const run = (args: string[], config = env.configPath): Promise<CliResult> => cli([...args, '--config', config], dirs);
const ok = (r: CliResult): string => {
  expect(r.code, r.stdout + r.stderr).toBe(0);
  return r.stdout;
};

beforeAll(async () => {
  dirs.TC_FILES_DIR = await mkdtemp(join(tmpdir(), 'tc-files-'));
  await writeFile(join(dirs.TC_FILES_DIR, 'a.txt'), 'targets\n'.repeat(100));
  const api = `api:\n  listen: 127.0.0.1:0\n  tokens:\n    - name: viewer\n      token_file: viewer.token\n      scope: read\n`;
  // A target nothing answers for: listed as failing, never in the way of the others.
  const dead = `  - name: dead\n    type: s3\n    bucket: dead-bucket\n    endpoint: http://127.0.0.1:9\n    force_path_style: true\n    access_key_id: dead\n    secret_access_key: dead-secret-${ID}\n`;
  env = await createTestEnv('targets-cli', `mandates:\n${filesMandateYaml(MANDATE, 'TC_FILES_DIR', { target: 'local', middleware: 'compression' })}${api}`, dead, { docker: false });
  await writeFile(join(env.dir, 'viewer.token'), `${TOKEN}\n`, { mode: 0o600 });
  socket = join(env.dir, 'data', 'backer.sock');
  daemon = spawnDaemon(env.configPath, { env: dirs });
  await waitForHealth(daemon, socket, 60_000);
  url = /API listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(daemon.output())?.[1] ?? '';
  expect(url, daemon.output()).not.toBe('');
  ok(await run(['backup', MANDATE, '--wait']));
  artifact = (await jsonRequest<{ backups: Manifest[] }>(socket, 'GET', `/v1/backups?mandate=${MANDATE}`)).body.backups[0] as Manifest;
  expect(artifact).toBeDefined();
}, 120_000);

afterAll(async () => {
  expect(await daemon.stop()).toBe(0);
  await rm(dirs.TC_FILES_DIR ?? '', { recursive: true, force: true });
});

describe('backer targets list', () => {
  it('prints NAME TYPE BACKUPS BYTES HEALTH with the usage after a backup', async () => {
    // The usage monitor reads the target again after the job that wrote to it.
    let out = '';
    for (let i = 0; i < 100; i++) {
      out = ok(await run(['targets', 'list']));
      if (/^local \(default\)\s+local\s+1\s/m.test(out) && /^dead\s.*failing/m.test(out)) break;
      await sleep(200);
    }
    const lines = out.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^NAME\s+TYPE\s+BACKUPS\s+BYTES\s+HEALTH$/);
    expect(lines[1]).toMatch(new RegExp(`^local \\(default\\)\\s+local\\s+1\\s+${artifact.artifact.size} B\\s+ok$`));
    expect(lines[2]).toMatch(/^s3\s+s3\s+0\s+0 B\s+ok$/);
    expect(lines[3]).toMatch(/^dead\s+s3\s+-\s+-\s+failing: \S.*/);
    expect(lines).toHaveLength(4);
  });

  it('--json answers what GET /v1/targets does, without the S3 secret key', async () => {
    const r = await run(['targets', 'list', '--json']);
    const listed = JSON.parse(ok(r)) as { targets: TargetJson[] };
    expect(listed).toEqual((await jsonRequest(socket, 'GET', '/v1/targets')).body);
    expect(listed.targets.map((t) => [t.name, t.type, t.usage?.backups ?? null, t.health.healthy])).toEqual([
      ['local', 'local', 1, true],
      ['s3', 's3', 0, true],
      ['dead', 's3', null, false],
    ]);
    expect(listed.targets[2]?.health).toMatchObject({ checked_at: null, error: { code: expect.any(String) as unknown, message: expect.any(String) as unknown } });
    expect(listed.targets[1]?.settings).toMatchObject({ bucket: env.bucket, prefix: 'backer/' });
    expect(listed.targets[1]?.settings).not.toHaveProperty('secret_access_key');
    expect(r.stdout).not.toContain(inject('s3').secretAccessKey);
    expect(r.stdout).not.toContain(`dead-secret-${ID}`);
  });

  it('a target that cannot be listed is a problem of the backup listing, not a failure', async () => {
    const page = await jsonRequest<{ total: number; problems: { target: string; key: string; message: string }[] }>(socket, 'GET', '/v1/backups');
    expect(page.status).toBe(200);
    expect(page.body.total).toBe(1);
    expect(page.body.problems).toEqual([{ target: 'dead', key: '', message: expect.stringMatching(/^dead: cannot list backups: /) as unknown }]);
    const show = await run(['targets', 'show', 'dead']);
    expect(show.code).toBe(0);
    expect(show.stdout).toMatch(/^ {2}health: {5}failing: \S/m);
    expect(show.stdout).not.toContain('backups:');
  });
});

describe('backer targets show', () => {
  it('prints one target with its settings and the mandates that write to it', async () => {
    const local = ok(await run(['targets', 'show', 'local']));
    expect(local).toContain('local (local, default)\n');
    expect(local).toMatch(new RegExp(`^  backups:    1 \\(${artifact.artifact.size} B\\), 0 problems$`, 'm'));
    expect(local).toContain(`  path:       ${join(env.dir, 'backups')}\n`);
    expect(local).toContain(`  mandates:   ${MANDATE}\n`);
    const s3 = ok(await run(['targets', 'show', 's3']));
    expect(s3).toMatch(/^ {2}health: {5}ok \(checked \d{4}-/m);
    expect(s3).toContain(`  bucket:     ${env.bucket}\n`);
    expect(s3).toContain('  mandates:   none\n');
    expect(s3).not.toMatch(/secret/i);
    const json = JSON.parse(ok(await run(['targets', 'show', 'local', '--json']))) as TargetDetailJson;
    expect(json).toMatchObject({ target: { name: 'local', type: 'local', default: true, usage: { backups: 1, bytes: artifact.artifact.size, problems: 0 } }, mandates: [MANDATE] });
  });

  it('an unknown target exits 4 naming the known ones', async () => {
    const r = await run(['targets', 'show', 'nas']);
    expect(r.code).toBe(4);
    expect(r.stderr).toBe('backer: no target named nas; known: local, s3, dead\n');
    const json = await run(['targets', 'show', 'nas', '--json']);
    expect(json.code).toBe(4);
    expect(JSON.parse(json.stdout)).toEqual({ error: { code: 'TARGET_NOT_FOUND', message: 'no target named nas; known: local, s3, dead' } });
  });
});

describe('over TCP and without a daemon', () => {
  it('works with --url and a read token; without the token exits 6', async () => {
    const tokenFile = join(env.dir, 'viewer.token');
    const remote = JSON.parse(ok(await cli(['targets', 'list', '--url', url, '--token-file', tokenFile, '--json']))) as { targets: TargetJson[] };
    expect(remote).toEqual(JSON.parse(ok(await run(['targets', 'list', '--json']))));
    expect(ok(await cli(['targets', 'show', 's3', '--url', url, '--token-file', tokenFile]))).toContain(`  bucket:     ${env.bucket}\n`);
    const anonymous = await cli(['targets', 'list', '--url', url]);
    expect(anonymous.code).toBe(6);
    expect(anonymous.stderr).toContain('bearer token');
    expect(daemon.output()).not.toContain(TOKEN);
  });

  it('exits 3 when no daemon answers', async () => {
    const idle = await createTestEnv('targets-cli-idle');
    try {
      const r = await run(['targets', 'list'], idle.configPath);
      expect(r.code).toBe(3);
      expect(r.stderr).toContain('cannot reach the Backer daemon');
    } finally {
      await rm(idle.dir, { recursive: true, force: true });
    }
    // The daemon of the other tests still answers.
    expect((await jsonRequest<{ status: string }>(socket, 'GET', '/v1/health')).body.status).toBe('ok');
  });
});
