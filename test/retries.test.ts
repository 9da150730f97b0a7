/**
 * Retries through a real `backer daemon` process: an S3 server (in a process of its own) that
 * dies in the middle of a multipart upload makes the backup fail transiently; it is tried again
 * with backoff, and succeeds once S3 is back, or fails loudly when it stays away. A permanent
 * failure (S3 refusing the credentials) gets exactly one attempt.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ListMultipartUploadsCommand, S3Client } from '@aws-sdk/client-s3';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { callApi } from '../src/cli/client.js';
import type { BackupResult } from '../src/pipeline/run-backup.js';
import type { AnyJob, JobEvent } from '../src/queue/types.js';
import { spawnDaemon, waitForHealth, type DaemonProcess } from './helpers/daemon-proc.js';
import { createBucket } from './helpers/env.js';

const ID = randomBytes(3).toString('hex');
const BUCKET = `retry-${ID}`;
let dir: string;
let port: number;
let socket: string;
let daemon: DaemonProcess;
let s3: ChildProcess | undefined;

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

/** Starts the S3 server process on the test's port; `dieOnPart` makes it kill itself at that part. */
async function startS3(dieOnPart?: number): Promise<ChildProcess> {
  const args = ['--import', 'tsx', join(import.meta.dirname, 'fixtures', 's3rver-proc.ts'), String(port), join(dir, 's3'), BUCKET];
  if (dieOnPart !== undefined) args.push(String(dieOnPart));
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    child.stdout?.on('data', (d: Buffer) => (d.toString().includes('ready') ? resolve() : undefined));
    child.on('exit', (code) => reject(new Error(`s3rver exited with ${String(code)}`)));
  });
  return child;
}

async function stopS3(): Promise<void> {
  const child = s3;
  s3 = undefined;
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const gone = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGKILL');
  await gone;
}

/** Unfinished multipart uploads on the test's own S3 server. */
async function uploadsOnFlaky(): Promise<string[]> {
  const client = new S3Client({ endpoint: `http://127.0.0.1:${port}`, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } });
  try {
    return ((await client.send(new ListMultipartUploadsCommand({ Bucket: BUCKET }))).Uploads ?? []).map((u) => u.Key ?? '');
  } finally {
    client.destroy();
  }
}

const waitJob = (id: string): Promise<{ job: AnyJob; history: JobEvent[] }> => callApi(socket, 'GET', `/v1/jobs/${id}?wait=120`);
const trigger = async (mandate: string): Promise<AnyJob> => (await callApi<{ job: AnyJob }>(socket, 'POST', `/v1/mandates/${mandate}/backups`)).job;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bk-retries-'));
  port = await freePort();
  await mkdir(join(dir, 'files'));
  await mkdir(join(dir, 's3'));
  // Random bytes do not compress: 12 MiB are three parts of 5 MiB.
  await writeFile(join(dir, 'files', 'big.bin'), randomBytes(12 * 1024 * 1024));
  const shared = inject('s3');
  const denied = `denied-${ID}`;
  await createBucket(denied);
  const files = (name: string, target: string): string => `  ${name}:\n    type: files\n    interval: "0 0 29 2 *"\n    target: ${target}\n    files:\n      path: ${dir}/files\n`;
  const s3Target = (name: string, endpoint: string, bucket: string, keyId: string): string =>
    `  - name: ${name}\n    type: s3\n    bucket: ${bucket}\n    endpoint: ${endpoint}\n    region: us-east-1\n    force_path_style: true\n    access_key_id: ${keyId}\n    secret_access_key: S3RVER\n    part_size_mb: 5\n`;
  const yaml = [
    `data_dir: ${dir}/data`,
    'log:\n  level: debug',
    'docker:\n  enabled: false',
    // Delays long enough for a restarted s3rver (tsx, on a busy machine) to listen before the first retry.
    'queue:\n  concurrency: 2\n  retries: 2\n  retry_delay: 3s\n  retry_delay_max: 6s',
    `targets:\n${s3Target('flaky', `http://127.0.0.1:${port}`, BUCKET, 'S3RVER')}${s3Target('denied', shared.endpoint, denied, 'NOT-A-KEY-ID')}  - name: good\n    type: local\n    path: ${dir}/good\n`,
    `mandates:\n${files('big', 'flaky')}${files('refused', 'denied')}${files('both', '[good, flaky]')}`,
  ].join('\n');
  await writeFile(join(dir, 'backer.yml'), `${yaml}\n`);
  socket = join(dir, 'data', 'backer.sock');
  daemon = spawnDaemon(join(dir, 'backer.yml'));
  await waitForHealth(daemon, socket);
}, 60_000);

afterEach(async () => {
  await stopS3();
});

afterAll(async () => {
  expect(await daemon.stop()).toBe(0);
  await rm(dir, { recursive: true, force: true });
});

describe('S3 going away mid-upload', () => {
  it('is retried with backoff, and the next attempt succeeds once S3 is back', async () => {
    s3 = await startS3(2);
    const job = await trigger('big');
    // S3 dies at part 2; it is back a moment later, before the first retry (1.5 s to 3 s away).
    await new Promise<void>((resolve) => s3?.once('exit', () => resolve()));
    s3 = await startS3();
    const { job: done, history } = await waitJob(job.id);
    expect(done.state, JSON.stringify(history)).toBe('succeeded');
    expect(done.attempts).toBe(2);
    const retrying = history.filter((e) => e.type === 'retrying');
    expect(retrying).toHaveLength(1);
    expect(retrying[0]?.message).toMatch(/attempt 2 of 3 at /);
    // The upload S3 lost track of mid-way was aborted once S3 was back, before the retry wrote.
    expect(await uploadsOnFlaky()).toEqual([]);
    expect((await callApi<{ status: string }>(socket, 'GET', '/v1/health')).status).toBe('ok');
  }, 120_000);

  it('fails loudly after queue.retries when S3 stays away, with the waits growing', async () => {
    s3 = await startS3(2);
    const job = await trigger('big');
    const { job: done, history } = await waitJob(job.id);
    expect(done.state).toBe('failed');
    expect(done.attempts).toBe(3);
    expect(done.error?.code).toBe('TARGET_WRITE_FAILED');
    expect(done.error?.message).toContain(BUCKET);
    const starts = history.filter((e) => e.type === 'started').map((e) => Date.parse(e.at));
    expect(starts).toHaveLength(3);
    // Backoff: at least half the delay (equal jitter), 3 s then 6 s.
    expect((starts[1] ?? 0) - (starts[0] ?? 0)).toBeGreaterThanOrEqual(1500);
    expect((starts[2] ?? 0) - (starts[1] ?? 0)).toBeGreaterThanOrEqual(3000);
    expect(history[history.length - 1]?.type).toBe('failed');
    expect((await callApi<{ status: string }>(socket, 'GET', '/v1/health')).status).toBe('ok');
  }, 120_000);
});

describe('a retry after a partial failure', () => {
  it('writes only to the target that failed: the good one keeps its one backup of the job', async () => {
    s3 = await startS3(2);
    const job = await trigger('both');
    await new Promise<void>((resolve) => s3?.once('exit', () => resolve()));
    s3 = await startS3();
    const { job: done, history } = await waitJob(job.id);
    expect(done.state, JSON.stringify(history)).toBe('succeeded');
    expect(done.attempts).toBe(2);
    expect(history.map((e) => e.message ?? '')).toContain(`retrying on flaky only: good already holds ${(done.result as BackupResult).targets[0]?.artifact_key.split('/')[1]?.replace(/\.tar$/, '') ?? ''}`);
    const result = done.result as BackupResult;
    expect(result.targets.map((t) => `${t.target}:${t.status}`)).toEqual(['good:succeeded', 'flaky:succeeded']);
    const local = (await readdir(join(dir, 'good', 'both'))).sort();
    expect(local.filter((f) => f.endsWith('.manifest.json'))).toHaveLength(1);
    expect(local.filter((f) => !f.endsWith('.json'))).toHaveLength(1);
    expect(await uploadsOnFlaky()).toEqual([]);
  }, 120_000);
});

describe('a permanent failure', () => {
  it('S3 refusing the access key gets exactly one attempt', async () => {
    const job = await trigger('refused');
    const { job: done, history } = await waitJob(job.id);
    expect(done.state).toBe('failed');
    expect(done.attempts).toBe(1);
    expect(done.error?.message).toMatch(/denied/);
    expect(history.filter((e) => e.type === 'retrying')).toEqual([]);
    expect((await callApi<{ status: string }>(socket, 'GET', '/v1/health')).status).toBe('ok');
  }, 60_000);
});
