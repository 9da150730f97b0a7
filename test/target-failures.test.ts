/**
 * Every way a target can fail, against a real `backer daemon` process: connection refused,
 * bucket missing, permission denied (EACCES, S3 403, read-only filesystem), ENOTDIR, ENAMETOOLONG, ENOSPC;
 * early, mid-stream and at the end; alone and next to a good local target. The daemon must stay
 * up, the job must fail with the reason (exit 1 from `backup --wait`), the good target must hold a
 * complete backup and the failing one nothing at all (no artifact, temp file or manifest).
 */
import { GetObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chown, mkdir, mkdtemp, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { callApi } from '../src/cli/client.js';
import type { Manifest } from '../src/manifests/schema.js';
import type { Job } from '../src/queue/types.js';
import { cli, spawnCli } from './helpers/cli.js';
import { jobEnded } from './helpers/daemon-proc.js';
import { createBucket, s3Client } from './helpers/env.js';
import { startFaultyS3, type FaultyS3 } from './helpers/faulty-s3.js';

const exec = promisify(execFile);
const MIB = 1024 * 1024;
const s3 = inject('s3');
const bucket = `bk-tfail-${randomBytes(3).toString('hex')}`;
const NEVER = '"0 0 29 2 *"';

let dir: string;
let configPath: string;
let socket: string;
let daemon: ReturnType<typeof spawnCli>;
let faulty: FaultyS3;
const mounts: string[] = [];

/** A port nothing listens on: connections to it are refused. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

async function mountTmpfs(path: string, options: string): Promise<void> {
  await mkdir(path, { recursive: true });
  await exec('mount', ['-t', 'tmpfs', '-o', options, 'tmpfs', path]);
  mounts.push(path);
}

function s3Target(name: string, endpoint: string, bucketName: string, accessKey = s3.accessKeyId): string {
  return `  - name: ${name}
    type: s3
    bucket: ${bucketName}
    prefix: tf/
    endpoint: ${endpoint}
    force_path_style: true
    access_key_id: ${accessKey}
    secret_access_key: \${TEST_S3_SECRET}
    part_size_mb: 5
`;
}

/** One failure mode: its target, and what the error must say. */
interface Mode {
  target: string;
  reason: RegExp;
  /** Where its leftovers would be: a local directory or an S3 prefix in the test bucket. */
  local?: string;
  s3Prefix?: boolean;
}

const modes: Record<string, Mode> = {};

function targetsYaml(refusedPort: number): string {
  const local = (name: string, path: string): string => `  - name: ${name}\n    type: local\n    path: ${path}\n`;
  return [
    local('good', join(dir, 'good')),
    s3Target('s3-refused', `http://127.0.0.1:${refusedPort}`, bucket),
    s3Target('s3-nobucket', s3.endpoint, `${bucket}-missing`),
    s3Target('s3-denied', s3.endpoint, bucket, 'UNKNOWNKEY'),
    s3Target('s3-down', faulty.endpoint, bucket),
    s3Target('s3-nocomplete', faulty.endpoint, bucket),
    s3Target('s3-nolist', faulty.endpoint, bucket),
    local('enotdir', join(dir, 'plain-file', 'backups')),
    local('enametoolong', join(dir, 'n'.repeat(300))),
    local('erofs', join(dir, 'readonly')),
    local('eacces', join(dir, 'not-ours', 'backups')),
    local('enospc', join(dir, 'small')),
    local('tight', join(dir, 'tight')),
  ].join('');
}

function mandatesYaml(): string {
  const lines: string[] = ['mandates:'];
  const add = (name: string, targets: string[]): void => {
    lines.push(`  ${name}:`, '    type: files', `    interval: ${NEVER}`, `    target: [${targets.join(', ')}]`, '    files:', `      path: ${join(dir, 'data')}`);
  };
  add('only-good', ['good']);
  lines.push('  clash:', '    type: files', `    interval: ${NEVER}`, '    target: s3-nolist', '    files:', `      path: ${join(dir, 'tiny')}`);
  for (const name of Object.keys(modes)) {
    add(`one-${name}`, [modes[name]?.target ?? '']);
    add(`two-${name}`, [modes[name]?.target ?? '', 'good']);
  }
  return `${lines.join('\n')}\n`;
}

async function filesUnder(path: string): Promise<string[]> {
  if (!existsSync(path)) return [];
  const entries = await readdir(path, { recursive: true, withFileTypes: true });
  return entries.filter((e) => !e.isDirectory()).map((e) => join(e.parentPath, e.name));
}

async function s3Keys(prefix: string): Promise<string[]> {
  const client = s3Client();
  try {
    const out = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix }));
    return (out.Contents ?? []).map((o) => o.Key ?? '');
  } finally {
    client.destroy();
  }
}

/** The good target holds exactly one complete backup of `mandate`: artifact and manifest agree. */
async function expectCompleteBackup(mandate: string): Promise<Manifest> {
  const files = (await filesUnder(join(dir, 'good', mandate))).sort();
  expect(files.map((f) => f.slice(join(dir, 'good').length + 1))).toEqual([
    expect.stringMatching(new RegExp(`^${mandate}/[^/]+\\.manifest\\.json$`)),
    expect.stringMatching(new RegExp(`^${mandate}/[^/]+\\.tar$`)),
  ]);
  const manifest = JSON.parse(await readFile(files[0] ?? '', 'utf8')) as Manifest;
  const artifact = await readFile(join(dir, 'good', manifest.artifact.key));
  expect(artifact.length).toBe(manifest.artifact.size);
  expect(createHash('sha256').update(artifact).digest('hex')).toBe(manifest.artifact.sha256);
  return manifest;
}

async function expectDaemonAlive(): Promise<void> {
  expect(daemon.child.exitCode).toBeNull();
  expect(() => process.kill(daemon.child.pid ?? -1, 0)).not.toThrow();
  expect(await callApi<{ status: string }>(socket, 'GET', '/v1/health')).toMatchObject({ status: 'ok' });
}

async function backupWait(mandate: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return cli(['backup', mandate, '--wait', '--config', configPath]);
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bk-tf-'));
  await mkdir(join(dir, 'data'));
  // 12 MiB of incompressible data: more than two 5 MiB parts, and far more than the 2 MiB disk.
  for (const f of ['a', 'b', 'c']) await writeFile(join(dir, 'data', `${f}.bin`), randomBytes(4 * MIB));
  await mkdir(join(dir, 'tiny'));
  await writeFile(join(dir, 'tiny', 'small.txt'), 'a small file: backups of it take milliseconds\n');
  await writeFile(join(dir, 'plain-file'), 'a file where the target wants a directory\n');
  await mountTmpfs(join(dir, 'readonly'), 'ro,size=1m');
  // Another user's directory. The tests run as root, which file modes do not stop: the daemon runs
  // without the capabilities that bypass them (below), so this is a real EACCES.
  await mkdir(join(dir, 'not-ours'), { mode: 0o755 });
  await chown(join(dir, 'not-ours'), 65534, 65534);
  await mountTmpfs(join(dir, 'small'), 'size=2m');
  await createBucket(bucket);
  faulty = await startFaultyS3(s3.endpoint);

  Object.assign(modes, {
    'refused-early': { target: 's3-refused', reason: /could not check whether .* exists in bucket .*ECONNREFUSED/, s3Prefix: true },
    'nobucket-early': { target: 's3-nobucket', reason: /could not upload .*bucket does not exist/i },
    'denied-early': { target: 's3-denied', reason: /could not check whether .* exists in bucket .*(Forbidden|denied|403|InvalidAccessKeyId)/i, s3Prefix: true },
    'eacces-early': { target: 'eacces', reason: /could not write .*EACCES: permission denied/, local: join(dir, 'not-ours') },
    'erofs-early': { target: 'erofs', reason: /could not write .*EROFS: read-only file system/, local: join(dir, 'readonly') },
    'enotdir-early': { target: 'enotdir', reason: /could not write .*ENOTDIR/ },
    'enametoolong-early': { target: 'enametoolong', reason: /could not write .*ENAMETOOLONG/ },
    'enospc-mid': { target: 'enospc', reason: /could not write .*ENOSPC: no space left on device/, local: join(dir, 'small') },
    's3down-mid': { target: 's3-down', reason: /could not upload .*(ECONNREFUSED|ECONNRESET|socket hang up)/, s3Prefix: true },
    's3complete-end': { target: 's3-nocomplete', reason: /could not upload .*injected by the test/, s3Prefix: true },
    'enospc-end': { target: 'tight', reason: /could not write .*manifest\.json.*ENOSPC/, local: join(dir, 'tight') },
  } satisfies Record<string, Mode>);

  configPath = join(dir, 'backer.yml');
  socket = join(dir, 'state', 'backer.sock');
  // How each failure is reported, one attempt each (retries of transient failures: test/retries.test.ts).
  await writeFile(
    configPath,
    `data_dir: ${join(dir, 'state')}\nlog:\n  level: debug\ndocker:\n  enabled: false\nqueue:\n  concurrency: 2\n  retries: 0\ntargets:\n${targetsYaml(await closedPort())}${mandatesYaml()}`,
  );
  // As root, but without CAP_DAC_OVERRIDE/CAP_DAC_READ_SEARCH: file permissions apply to it like
  // to any user (its own files are root's, so it reads and writes them as their owner).
  daemon = spawnCli(['daemon', '--config', configPath], {}, ['setpriv', '--bounding-set', '-dac_override,-dac_read_search', '--']);
  for (let i = 0; i < 300 && !existsSync(socket); i++) await new Promise((r) => setTimeout(r, 100));
  expect(existsSync(socket), daemon.output()).toBe(true);

  // The artifact's exact size decides the "disk full at the end" filesystem: the artifact fits
  // to the last page, the manifest after it does not.
  const first = await backupWait('only-good');
  expect(first.code, first.stdout + first.stderr).toBe(0);
  const { artifact } = await expectCompleteBackup('only-good');
  await mountTmpfs(join(dir, 'tight'), `size=${Math.ceil(artifact.size / 4096) * 4096}`);
}, 120_000);

afterAll(async () => {
  if (daemon?.child.exitCode === null) {
    daemon.child.kill('SIGTERM');
    await new Promise((resolve) => daemon.child.once('close', resolve));
  }
  await faulty?.close();
  for (const m of mounts.reverse()) await exec('umount', [m]).catch(() => undefined);
});

describe('local target file modes, through the daemon', () => {
  it('stores artifacts and manifests 0600 in 0700 directories by default', async () => {
    const mode = async (p: string): Promise<string> => ((await stat(p)).mode & 0o777).toString(8);
    const files = await filesUnder(join(dir, 'good', 'only-good'));
    expect(files).toHaveLength(2);
    for (const f of files) expect(await mode(f), f).toBe('600');
    expect(await mode(join(dir, 'good'))).toBe('700');
    expect(await mode(join(dir, 'good', 'only-good'))).toBe('700');
  });
});

describe('a failing target fails its job, never the daemon', () => {
  const cases = ['refused-early', 'nobucket-early', 'denied-early', 'eacces-early', 'erofs-early', 'enotdir-early', 'enametoolong-early', 'enospc-mid', 's3down-mid', 's3complete-end', 'enospc-end'];
  for (const name of cases) {
    for (const shape of ['one', 'two'] as const) {
      it(`${name}, ${shape === 'one' ? 'only target' : 'next to a good local target'}`, async () => {
        const mode = modes[name] as Mode;
        const mandate = `${shape}-${name}`;
        if (mode.target === 's3-down') await faulty.arm('down-after-first-part');
        if (mode.target === 's3-nocomplete') await faulty.arm('fail-complete');

        const r = await backupWait(mandate);
        expect(r.code, r.stdout + r.stderr).toBe(1);
        expect(r.stdout).toMatch(new RegExp(`^backup \\S+: failed \\(`, 'm'));
        const line = r.stdout.split('\n').find((l) => l.startsWith(`  ${mode.target}: `)) ?? '';
        expect(line).toMatch(/: failed \(/);
        expect(line).toMatch(mode.reason);
        await expectDaemonAlive();

        if (shape === 'two') {
          expect(r.stdout).toMatch(new RegExp(`^  good: succeeded ${mandate}/\\S+\\.tar$`, 'm'));
          await expectCompleteBackup(mandate);
        } else {
          expect(await filesUnder(join(dir, 'good', mandate))).toEqual([]);
        }
        // The failing target holds nothing of this run: no artifact, no temp file, no manifest.
        if (mode.local) expect((await filesUnder(mode.local)).filter((f) => f.includes(mandate))).toEqual([]);
        if (mode.s3Prefix) expect(await s3Keys(`tf/${mandate}/`)).toEqual([]);
      }, 90_000);
    }
  }

  for (const name of ['refused-early', 'enospc-mid', 'enospc-end']) {
    it(`backup --once, ${name}: the usual "failed" lines with the reason, exit 1, no stack trace`, async () => {
      const mode = modes[name] as Mode;
      const r = await cli(['backup', `two-${name}`, '--once', '--config', configPath]);
      expect(r.code, r.stdout + r.stderr).toBe(1);
      expect(r.stdout).toMatch(new RegExp(`^backup \\S+: failed \\(`, 'm'));
      expect(r.stdout.split('\n').find((l) => l.startsWith(`  ${mode.target}: failed (`))).toMatch(mode.reason);
      expect(r.stdout).toMatch(new RegExp(`^  good: succeeded two-${name}/\\S+\\.tar$`, 'm'));
      expect(r.stdout + r.stderr).not.toMatch(/^\s+at .*\(.*:\d+:\d+\)$/m);
      expect(r.stdout + r.stderr).not.toMatch(/unexpected error|Unhandled/i);
      // Two complete backups of the mandate now: the daemon's run and this one.
      const manifests = (await filesUnder(join(dir, 'good', `two-${name}`))).filter((f) => f.endsWith('.manifest.json'));
      expect(manifests).toHaveLength(2);
      if (mode.local) expect((await filesUnder(mode.local)).filter((f) => f.includes(`two-${name}`))).toEqual([]);
    }, 90_000);
  }

  it('logged no escaped error: every failure was handled where it happened', () => {
    expect(daemon.output()).not.toMatch(/unexpected error|unhandled/i);
    expect(daemon.child.exitCode).toBeNull();
  });
});

const finished = (id: string): Promise<Job> => jobEnded(socket, id);

async function s3Object(key: string): Promise<Buffer> {
  const client = s3Client();
  try {
    const out = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    return Buffer.from(await out.Body?.transformToByteArray() ?? []);
  } finally {
    client.destroy();
  }
}

describe('a same-second name clash on a target that cannot list', () => {
  it('takes a name no other run can have and never touches the first backup', async () => {
    // Write-only credentials: listing is denied, so the name check cannot see the first backup.
    await faulty.arm('deny-list');
    let pair: [Job, Job] | undefined;
    for (let attempt = 0; attempt < 10 && !pair; attempt++) {
      const { job: first } = await callApi<{ job: Job }>(socket, 'POST', '/v1/mandates/clash/backups');
      // The second job queues behind the first (one mandate never runs twice at once), so both
      // usually start within the same second and render the same <DATE> name.
      const { job: second } = await callApi<{ job: Job }>(socket, 'POST', '/v1/mandates/clash/backups');
      if (second.id === first.id) continue;
      const [a, b] = [await finished(first.id), await finished(second.id)];
      const date = (job: Job): string | undefined => /^(\S+)-clash-/.exec(job.result?.name ?? '')?.[1];
      if (date(a) !== undefined && date(a) === date(b)) pair = [a, b];
    }
    expect(pair, 'no two runs started in the same second').toBeDefined();
    const jobs = pair as [Job, Job];
    expect(faulty.seen.some((r) => r.startsWith('GET ') && r.includes('list-type=') && r.endsWith(' 403'))).toBe(true);
    const names = jobs.map((job) => {
      expect(job.state, job.error?.message).toBe('succeeded');
      // <DATE>-<MANDATE>-<8 hex of the uuid>: the same second, yet two names.
      expect(job.result?.name.endsWith(`-clash-${job.result.uuid.slice(0, 8)}`), job.result?.name).toBe(true);
      return job.result?.name ?? '';
    });
    expect(new Set(names).size).toBe(2);
    for (const [i, name] of names.entries()) {
      const keys = (await s3Keys('tf/clash/')).filter((k) => k.includes(name)).sort();
      expect(keys).toEqual([`tf/clash/${name}.manifest.json`, `tf/clash/${name}.tar`]);
      const manifest = JSON.parse((await s3Object(`tf/clash/${name}.manifest.json`)).toString()) as Manifest;
      expect(manifest.uuid).toBe(jobs[i]?.result?.uuid);
      const artifact = await s3Object(`tf/clash/${name}.tar`);
      expect(createHash('sha256').update(artifact).digest('hex')).toBe(manifest.artifact.sha256);
    }
    await expectDaemonAlive();
  }, 120_000);
});
