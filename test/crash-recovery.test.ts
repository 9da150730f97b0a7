/**
 * Crash recovery end to end: a real `backer daemon` process backing up a files mandate to a local
 * and an S3 target is killed with SIGKILL (a crash point, src/util/failpoint.ts) at each step of
 * the backup; a new daemon process on the same data_dir then sweeps what the dead one left, runs
 * the interrupted job again to success, and keeps the history of both attempts. A restore killed
 * half-way is marked interrupted, names its safety backup and is not run again.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { callApi } from '../src/cli/client.js';
import type { AnyJob, JobEvent } from '../src/queue/types.js';
import { spawnDaemon, waitForHealth, type DaemonProcess } from './helpers/daemon-proc.js';
import { createTestEnv, listUploads, s3Client, type TestEnv } from './helpers/env.js';
import { VOLUME_HELPER_YAML, volumeMandateYaml } from './helpers/volume-config.js';
import { docker, HOST_IMAGE } from './setup/services.js';

const M = `crash-${randomBytes(3).toString('hex')}`;
let env: TestEnv;
let socket: string;
let files: string;

beforeAll(async () => {
  files = join(tmpdir(), `${M}-files`);
  await mkdir(join(files, 'sub'), { recursive: true });
  // Random bytes do not compress: the artifact is a multipart upload of several parts on S3.
  await writeFile(join(files, 'big.bin'), randomBytes(14 * 1024 * 1024));
  await writeFile(join(files, 'sub', 'note.txt'), 'hello\n');
  const mandate = `  ${M}:\n    type: files\n    interval: "0 0 29 2 *"\n    target: [local, s3]\n    middleware: compression\n    retention: 1\n    files:\n      path: ${files}\n`;
  env = await createTestEnv('crash', `mandates:\n${mandate}`);
  socket = join(env.dir, 'data', 'backer.sock');
}, 60_000);

afterAll(async () => {
  await rm(files, { recursive: true, force: true });
});

async function start(failpoint?: string): Promise<DaemonProcess> {
  const daemon = spawnDaemon(env.configPath, { env: failpoint === undefined ? {} : { BACKER_FAILPOINT: failpoint } });
  await waitForHealth(daemon, socket);
  return daemon;
}

/** Resolves once the process is gone; fails when it did not die by SIGKILL within the time. */
async function killed(daemon: DaemonProcess, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (daemon.child.exitCode === null && daemon.child.signalCode === null) {
    if (Date.now() > deadline) throw new Error(`the daemon was not killed at its crash point:\n${daemon.output()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  expect(daemon.child.signalCode, daemon.output()).toBe('SIGKILL');
}

async function walk(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
  const nested = await Promise.all(entries.map((e) => (e.isDirectory() ? walk(join(dir, e.name)) : Promise.resolve([join(dir, e.name)]))));
  return nested.flat();
}

async function s3Keys(): Promise<string[]> {
  const client = s3Client();
  const listed = await client.send(new ListObjectsV2Command({ Bucket: env.bucket, Prefix: 'backer/' }));
  client.destroy();
  return (listed.Contents ?? []).map((o) => (o.Key ?? '').slice('backer/'.length));
}

/** Every artifact has its manifest (no half-stored backup is visible), and no temp file is left. */
function expectOnlyComplete(keys: string[], where: string): void {
  const artifacts = keys.filter((k) => !k.endsWith('.json'));
  const manifests = keys.filter((k) => k.endsWith('.manifest.json'));
  expect(artifacts.filter((k) => !k.includes('.partial-')).length, `${where}: ${keys.join(', ')}`).toBe(manifests.length);
  expect(keys.filter((k) => k.includes('.partial-')), where).toEqual([]);
}

async function backupJob(): Promise<AnyJob> {
  const { job } = await callApi<{ job: AnyJob }>(socket, 'POST', `/v1/mandates/${M}/backups`);
  return job;
}

/** Triggers a backup on a daemon that dies on the way (perhaps before it answers the request). */
function triggerDoomed(): void {
  callApi(socket, 'POST', `/v1/mandates/${M}/backups`).catch(() => undefined);
}

/** The newest job of the mandate: the one the dead daemon ran. */
async function newestJob(): Promise<AnyJob> {
  const { jobs } = await callApi<{ jobs: AnyJob[] }>(socket, 'GET', `/v1/jobs?mandate=${M}&limit=1`);
  const job = jobs[0];
  if (!job) throw new Error('no job of the mandate survived the restart');
  return job;
}

async function waitJob(id: string): Promise<{ job: AnyJob; history: JobEvent[] }> {
  return callApi<{ job: AnyJob; history: JobEvent[] }>(socket, 'GET', `/v1/jobs/${id}?wait=120`);
}

const POINTS = [
  'job.started',
  'backup.before-dump',
  'backup.mid-stream',
  // Deeper in the stream: the first 5 MiB part is on S3, the multipart upload is unfinished. The
  // point is passed once per chunk past the first MiB, and the pipeline hands on 256 KiB chunks
  // (src/pipeline/coalesce.ts): the 25th is at ~7 MiB of the 14.
  'backup.mid-stream#25',
  'backup.stored',
  'backup.before-manifest',
  // Between the two manifests: the local backup is complete, the S3 artifact has no manifest yet.
  'backup.before-manifest#2',
  'backup.before-retention',
  'retention.mid-delete',
  'job.before-finish',
];

describe('a daemon killed during a backup to local + S3', () => {
  it.each(POINTS)('at %s: the next daemon sweeps, re-runs the job to success and shows both attempts', async (point) => {
    // Two backups exist before, so that retention (keep 1) has something to delete.
    const first = await start(point === 'retention.mid-delete' ? undefined : point);
    if (point === 'retention.mid-delete') {
      expect((await waitJob((await backupJob()).id)).job.state).toBe('succeeded');
      await first.stop();
      const armed = await start(point);
      triggerDoomed();
      await killed(armed);
    } else {
      triggerDoomed();
      await killed(first);
    }

    const second = await start();
    try {
      const victim = await newestJob();
      const { job, history } = await waitJob(victim.id);
      expect(job.state, JSON.stringify(history)).toBe('succeeded');
      expect(job.attempts).toBe(2);
      const types = history.map((e) => `${e.attempt}:${e.type}`);
      expect(types).toContain('1:started');
      expect(types).toContain('1:interrupted');
      expect(types).toContain('2:started');
      expect(types[types.length - 1]).toBe('2:succeeded');
      const local = (await walk(join(env.dir, 'backups'))).map((f) => relative(join(env.dir, 'backups'), f));
      expectOnlyComplete(local, `local after ${point}`);
      expectOnlyComplete(await s3Keys(), `s3 after ${point}`);
      expect(await listUploads(env.bucket), `unfinished multipart uploads after ${point}`).toEqual([]);
      const health = await callApi<{ status: string }>(socket, 'GET', '/v1/health');
      expect(health.status).toBe('ok');
    } finally {
      expect(await second.stop()).toBe(0);
    }
  }, 180_000);
});

describe('a daemon killed during a restore', () => {
  const APP = `${M}-app`;
  const VOLUME = `${M}-data`;
  const IDLE = 'trap "exit 0" TERM; while :; do sleep 1 & wait $!; done';
  const dockerHost = (): string => inject('dockerHost');

  beforeAll(async () => {
    await docker(dockerHost(), ['run', '-d', '--name', APP, '--network', 'none', '-v', '/usr:/usr:ro', '-v', '/etc:/etc:ro', '-v', `${VOLUME}:/data`, HOST_IMAGE, 'bash', '-c', IDLE]);
    await docker(dockerHost(), ['exec', APP, 'bash', '-c', 'head -c 3000000 /dev/urandom > /data/blob && echo v1 > /data/conf']);
    const yaml = await readFile(env.configPath, 'utf8');
    await writeFile(env.configPath, `${yaml.replace('mandates:\n', `mandates:\n${volumeMandateYaml(APP, APP)}`)}${VOLUME_HELPER_YAML}`);
  }, 60_000);

  afterAll(async () => {
    await docker(dockerHost(), ['rm', '-f', APP]).catch(() => undefined);
    await docker(dockerHost(), ['volume', 'rm', '-f', VOLUME]).catch(() => undefined);
  });

  it('marks it interrupted with its safety backup, never runs it again, and starts the container again', async () => {
    const first = await start();
    const { job: backup } = await waitJob((await callApi<{ job: AnyJob }>(socket, 'POST', `/v1/mandates/${APP}/backups`)).job.id);
    expect(backup.state).toBe('succeeded');
    await docker(dockerHost(), ['exec', APP, 'bash', '-c', 'echo v2 > /data/conf']);
    await first.stop();

    const armed = await start('restore.mid-apply');
    const { job: restore } = await callApi<{ job: AnyJob }>(socket, 'POST', '/v1/restores', { mandate: APP, backup: 'latest', yes: true });
    await killed(armed);

    const second = await start();
    try {
      const { job, history } = await waitJob(restore.id);
      expect(job.state).toBe('interrupted');
      expect(job.attempts).toBe(1);
      expect(job.error?.code).toBe('JOB_INTERRUPTED');
      const safety = history.map((e) => /safety backup (\S+) taken/.exec(e.message ?? '')?.[1]).find((n) => n !== undefined);
      expect(safety).toBeDefined();
      expect(job.error?.message).toContain(`backer restore ${APP} ${safety ?? ''}`);
      expect(history.filter((e) => e.type === 'started')).toHaveLength(1);
      // The container the restore stopped runs again (the start-up recovery), with no helper left.
      await waitUntil(async () => (await docker(dockerHost(), ['inspect', '-f', '{{.State.Running}}', APP])) === 'true', 30_000, `${APP} running again`);
      expect(await docker(dockerHost(), ['ps', '-aq', '--filter', 'label=backer.helper=true', '--filter', `label=backer.helper.container=${APP}`])).toBe('');
      // Nothing runs it again, also not a minute later (a restore is the user's decision).
      await new Promise((r) => setTimeout(r, 1500));
      expect((await waitJob(restore.id)).history.filter((e) => e.type === 'started')).toHaveLength(1);
      expect((await callApi<{ status: string }>(socket, 'GET', '/v1/health')).status).toBe('ok');
    } finally {
      expect(await second.stop()).toBe(0);
    }
  }, 180_000);
});

async function waitUntil(check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}
