/**
 * Backer's container image, built from the repo's Dockerfile in the private engine (see
 * helpers/backer-image.ts for the stand-in base image), run as users run it: non-root, the engine's
 * socket mounted and reached through its group, the config mounted at /etc/backer/backer.yml.
 */
import { mkdtemp, readFile, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { Manifest } from '../src/manifests/schema.js';
import type { Job } from '../src/queue/types.js';
import { digest, runProgram, s3Get } from './helpers/artifacts.js';
import { ensureBackerImage } from './helpers/backer-image.js';
import { capture, type CliResult } from './helpers/cli.js';
import { CCRYPT_KEY, createBucket } from './helpers/env.js';
import { checksums, seedShop, sql, startMariaDb } from './helpers/mariadb.js';
import { docker, HOST_IMAGE } from './setup/services.js';

const host = (): string => inject('dockerHost');
const BACKER = 'bk-image-backer';
const DB = 'bk-image-db';
const RESTORE = 'bk-image-restore';
const APP = 'bk-image-app';
const VOLUME = 'bk-image-vol';
const BUCKET = `bk-image-${Math.random().toString(36).slice(2, 8)}`;
/** Secrets reach the container through `-e NAME` (values from the docker CLI's environment). */
const SECRETS = { S3_SECRET: inject('s3').secretAccessKey, CCRYPT_KEY };

let image: string;
let buildSeconds = 0;

type Exec = CliResult;

/** `docker exec` in Backer's container, with its exit code. */
async function execIn(args: string[]): Promise<Exec> {
  return dockerRun(['exec', BACKER, ...args]);
}

/** The docker CLI with its exit code and both outputs (Backer logs to stderr). */
function dockerRun(args: string[]): Promise<Exec> {
  return capture('docker', args, { ...process.env, DOCKER_HOST: host() });
}

async function writeConfig(): Promise<string> {
  const s3 = inject('s3');
  const dir = await mkdtemp(join(tmpdir(), 'bk-image-'));
  const path = join(dir, 'backer.yml');
  const yaml = `
data_dir: /var/lib/backer
log:
  level: debug
targets:
  - name: s3
    type: s3
    bucket: ${BUCKET}
    prefix: backer/
    endpoint: ${s3.endpoint}
    region: ${s3.region}
    force_path_style: true
    access_key_id: ${s3.accessKeyId}
    secret_access_key: \${S3_SECRET}
middleware:
  - name: compression
    type: zstd
    level: 3
  - name: encryption
    type: ccrypt
    key: \${CCRYPT_KEY}
`;
  // Read by uid 10001 in the container.
  await writeFile(path, yaml, { mode: 0o644 });
  return path;
}

async function waitUntil(check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 500));
  }
  const logs = await dockerRun(['logs', BACKER]);
  throw new Error(`timed out waiting for ${what}; backer's log:\n${logs.stdout}${logs.stderr}`);
}

/** Runs Backer's container: non-root, the engine's socket through its group, host network for s3rver. */
async function startBacker(config: string): Promise<void> {
  const socket = host().replace(/^unix:\/\//, '');
  const gid = (await stat(socket)).gid;
  await docker(
    host(),
    ['run', '-d', '--name', BACKER, '--network', 'host', '--group-add', String(gid), '-v', `${socket}:/var/run/docker.sock`, '-v', `${config}:/etc/backer/backer.yml:ro`, '-e', 'S3_SECRET', '-e', 'CCRYPT_KEY', image],
    undefined,
    SECRETS,
  );
  await waitUntil(async () => (await execIn(['backer', 'health'])).code === 0, 60_000, 'backer health in the container');
}

async function backupInContainer(mandate: string): Promise<Job> {
  const result = await execIn(['backer', 'backup', mandate, '--wait', '--json']);
  const job = JSON.parse(result.stdout) as Job;
  expect(job.error, result.stderr).toBeNull();
  expect(result.code).toBe(0);
  return job;
}

beforeAll(async () => {
  const started = Date.now();
  [image] = await Promise.all([
    ensureBackerImage(host()),
    createBucket(BUCKET),
    startMariaDb(host(), {
      name: DB,
      labels: { 'backer.enabled': 'true', 'backer.type': 'mysql', 'backer.middleware': 'compression,encryption', 'backer.mysql.password': 'Env:MYSQL_ROOT_PASSWORD', 'backer.mysql.database': 'Env:MYSQL_DATABASE' },
    }),
  ]);
  buildSeconds = Math.round((Date.now() - started) / 1000);
  console.log(`image ${image} built (with the MariaDB container started alongside) in ${buildSeconds} s`);
  await seedShop(host(), DB);
  await startBacker(await writeConfig());
}, 20 * 60_000);

afterAll(async () => {
  await docker(host(), ['rm', '-f', BACKER, DB, RESTORE, APP]).catch(() => undefined);
  await docker(host(), ['volume', 'rm', '-f', VOLUME]).catch(() => undefined);
});

describe('the container image', () => {
  it('runs the daemon as the non-root user backer, with the socket group added, tini as PID 1 and the OCI labels', async () => {
    const id = await execIn(['id', '-u']);
    expect(id.stdout.trim()).toBe('10001');
    const gid = (await stat(host().replace(/^unix:\/\//, ''))).gid;
    expect((await execIn(['id', '-G'])).stdout.trim().split(' ')).toContain(String(gid));
    expect((await execIn(['cat', '/proc/1/comm'])).stdout.trim()).toBe('tini');
    for (const tool of ['ccrypt', 'zstd', 'gpg', 'age', 'tar']) expect((await execIn(['sh', '-c', `command -v ${tool}`])).code, tool).toBe(0);
    const labels = JSON.parse(await docker(host(), ['image', 'inspect', '-f', '{{json .Config.Labels}}', image])) as Record<string, string>;
    const pkg = JSON.parse(await readFile(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
    expect(labels['org.opencontainers.image.version']).toBe(pkg.version);
    expect((await execIn(['backer', '--version'])).stdout.trim()).toBe(pkg.version);
    expect(labels['org.opencontainers.image.revision']).toMatch(/^([0-9a-f]{40}|unknown)$/);
    // Empty unless --build-arg SOURCE= is given (the workflow passes the repository's URL).
    expect(labels).toHaveProperty(['org.opencontainers.image.source']);
    const health = await execIn(['backer', 'health', '--json']);
    expect(JSON.parse(health.stdout)).toMatchObject({ status: 'ok', version: labels['org.opencontainers.image.version'] });
  });

  it('backs up a labelled MariaDB container to s3rver, and the artifact restores', async () => {
    const job = await backupInContainer(DB);
    expect(job.state).toBe('succeeded');
    const key = `backer/${job.result?.targets[0]?.artifact_key ?? ''}`;
    const artifact = await s3Get(BUCKET, key);
    const manifest = JSON.parse((await s3Get(BUCKET, `backer/${job.result?.targets[0]?.manifest_key ?? ''}`)).toString()) as Manifest;
    expect(manifest.steps.map((s) => s.processor)).toEqual(['source:mysql', 'middleware:zstd:compression', 'middleware:ccrypt:encryption']);
    expect(digest(artifact).sha256).toBe(manifest.artifact.sha256);
    const raw = await runProgram('zstd', ['-d', '-q', '-c'], await runProgram('ccrypt', ['-d', '-E', 'KEY'], artifact, { KEY: CCRYPT_KEY }));
    expect(digest(raw).sha256).toBe(manifest.steps[0]?.sha256);
    await startMariaDb(host(), { name: RESTORE, env: { MYSQL_DATABASE: 'other' } });
    await sql(host(), RESTORE, raw.toString());
    const tables = ['shop.products', 'shop.orders'];
    expect(await checksums(host(), RESTORE, tables)).toBe(await checksums(host(), DB, tables));
  });

  it("backs up a volume with Backer's own image as the helper (nothing else pulled), and the tar restores", async () => {
    await docker(host(), ['volume', 'create', VOLUME]);
    const args = ['run', '-d', '--name', APP, '--network', 'none', '-v', '/usr:/usr:ro', '-v', '/etc:/etc:ro', '-v', `${VOLUME}:/data`];
    args.push('--label', 'backer.enabled=true', '--label', 'backer.type=volume', '--label', 'backer.middleware=');
    await docker(host(), [...args, HOST_IMAGE, 'bash', '-c', 'echo "order 42" > /data/order.txt; trap "exit 0" TERM; while :; do sleep 1 & wait $!; done']);
    await waitUntil(async () => (await docker(host(), ['exec', APP, 'cat', '/data/order.txt']).catch(() => '')) === 'order 42', 20_000, 'the app container');
    const job = await backupInContainer(APP);
    expect(job.state).toBe('succeeded');
    const tar = await s3Get(BUCKET, `backer/${job.result?.targets[0]?.artifact_key ?? ''}`);
    const out = await runProgram('tar', ['-xOf', '-', './data/order.txt'], tar);
    expect(out.toString()).toBe('order 42\n');
    const ownImage = await docker(host(), ['inspect', '-f', '{{.Image}}', BACKER]);
    const logs = await dockerRun(['logs', BACKER]);
    expect(logs.stdout + logs.stderr).toContain(`"image":"${ownImage}"`);
    // The helper is gone with its anonymous volume (the image declares VOLUME /var/lib/backer).
    expect(await docker(host(), ['ps', '-aq', '--filter', 'label=backer.helper=true', '--filter', `label=backer.helper.container=${APP}`])).toBe('');
  });

  it('fails a backup with a clear reason and keeps answering: the database container is stopped', async () => {
    await docker(host(), ['stop', '-t', '5', DB]);
    const result = await execIn(['backer', 'backup', DB, '--wait', '--json']);
    expect(result.code).toBe(1);
    const job = JSON.parse(result.stdout) as Job;
    expect(job.state).toBe('failed');
    expect(job.error?.message).toMatch(/bk-image-db/);
    expect((await execIn(['backer', 'health'])).code).toBe(0);
  });

  it('is reported healthy by Docker through the HEALTHCHECK (backer health over the API socket)', async () => {
    await waitUntil(async () => (await docker(host(), ['inspect', '-f', '{{.State.Health.Status}}', BACKER])) === 'healthy', 90_000, 'the healthy state');
  });
});
