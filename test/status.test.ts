/**
 * Mandate status, size anomalies, target usage and readiness through real `backer daemon`
 * processes: files mandates on a local and an S3 target (s3rver), a labelled container on the
 * private Docker engine, the status read back from `GET /v1/mandates`, the log, `GET /v1/targets`
 * and `/readyz`.
 */
import { request } from 'node:http';
import { mkdir, mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { callApi } from '../src/cli/client.js';
import type { AnyJob } from '../src/queue/types.js';
import type { MandateHealth } from '../src/status/types.js';
import { spawnDaemon, waitForHealth, type DaemonProcess } from './helpers/daemon-proc.js';
import { createBucket, s3Client } from './helpers/env.js';
import { parseLines } from './helpers/logs.js';
import { docker, HOST_IMAGE } from './setup/services.js';
import { sleep, until } from './helpers/poll.js';

const SKIPPED = 'status-skipped-db';
const NEVER = '"0 0 29 2 *"';
let dir: string;
let socket: string;
let bucket: string;

const host = (): string => inject('dockerHost');

function config(checkInterval: string, dockerSocket = host().replace(/^unix:\/\//, '')): string {
  const s3 = inject('s3');
  const files = (name: string, extra: string, target = 'local'): string =>
    `  ${name}:\n    type: files\n    interval: ${NEVER}\n    target: ${target}\n${extra}    files:\n      path: ${dir}/${name}\n`;
  return [
    `data_dir: ${dir}/data`,
    'log:\n  level: debug',
    `docker:\n  socket_path: ${dockerSocket}`,
    'queue:\n  retries: 0',
    `status:\n  check_interval: ${checkInterval}`,
    `targets:\n  - name: local\n    type: local\n    path: ${dir}/backups\n    default: true`,
    `  - name: s3\n    type: s3\n    bucket: ${bucket}\n    endpoint: ${s3.endpoint}\n    region: ${s3.region}\n    force_path_style: true\n    access_key_id: ${s3.accessKeyId}\n    secret_access_key: \${TEST_S3_SECRET}`,
    // A bucket that does not exist: this target cannot be listed.
    `  - name: s3-missing\n    type: s3\n    bucket: ${bucket}-missing\n    endpoint: ${s3.endpoint}\n    region: ${s3.region}\n    force_path_style: true\n    access_key_id: ${s3.accessKeyId}\n    secret_access_key: \${TEST_S3_SECRET}`,
    'mandates:',
    files('st-ticker', '    max_age: 5s\n'),
    files('st-idle', ''),
    files('st-broken', ''),
    files('st-shrink', '    size_change_alert: 50\n    min_size: 100k\n', 'local,s3'),
  ].join('\n');
}

async function start(checkInterval: string, dockerSocket?: string): Promise<DaemonProcess> {
  await writeFile(join(dir, 'backer.yml'), `${config(checkInterval, dockerSocket)}\n`);
  const daemon = spawnDaemon(join(dir, 'backer.yml'));
  await waitForHealth(daemon, socket);
  return daemon;
}


interface Listing {
  mandates: { name: string; health?: MandateHealth }[];
  skipped: { name: string; status?: string }[];
}

async function health(name: string): Promise<MandateHealth | undefined> {
  const listing = await callApi<Listing>(socket, 'GET', '/v1/mandates');
  return listing.mandates.find((m) => m.name === name)?.health;
}

async function backup(mandate: string): Promise<AnyJob> {
  const { job } = await callApi<{ job: AnyJob }>(socket, 'POST', `/v1/mandates/${mandate}/backups`);
  return (await callApi<{ job: AnyJob }>(socket, 'GET', `/v1/jobs/${job.id}?wait=60`)).job;
}

/** The status changes the daemon logged (component status), in order. */
function announced(daemon: DaemonProcess, mandate: string): { status: string; previous: string | null }[] {
  return parseLines(daemon.output())
    .filter((l) => l.component === 'status' && l.mandate === mandate && typeof l.status === 'string')
    .map((l) => ({ status: l.status as string, previous: (l.previous ?? null) as string | null }));
}

/** GET over the socket without the client's error mapping: status and JSON body. */
function rawGet(path: string): Promise<{ status: number; body: unknown }> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath: socket, path, method: 'GET' }, (res) => {
      let text = '';
      res.on('data', (d: Buffer) => (text += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as unknown }));
    });
    req.on('error', reject);
    req.end();
  });
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bk-status-'));
  socket = join(dir, 'data', 'backer.sock');
  bucket = `bk-status-${Math.random().toString(36).slice(2, 8)}`;
  await createBucket(bucket);
  for (const name of ['st-ticker', 'st-idle', 'st-broken', 'st-shrink']) {
    await mkdir(join(dir, name));
    await writeFile(join(dir, name, 'data.txt'), `${name}\n`);
  }
  // Incompressible and large: the shrunk dump later is far below the median and min_size.
  await writeFile(join(dir, 'st-shrink', 'data.bin'), randomBytes(1024 * 1024));
  await docker(host(), [
    'run', '-d', '--name', SKIPPED, '--network', 'none', '-v', '/usr:/usr:ro', '-v', '/etc:/etc:ro',
    '--label', 'backer.enabled=true', '--label', 'backer.type=redis', '--label', 'backer.min_size=lots',
    HOST_IMAGE, 'sleep', '600',
  ]);
});

afterAll(async () => {
  await docker(host(), ['rm', '-f', SKIPPED]).catch(() => undefined);
  await rm(dir, { recursive: true, force: true });
});

async function artifactBytes(dirPath: string): Promise<{ count: number; bytes: number }> {
  let count = 0;
  let bytes = 0;
  for (const mandate of await readdir(dirPath)) {
    for (const file of await readdir(join(dirPath, mandate))) {
      if (file.endsWith('.manifest.json')) count += 1;
      else bytes += (await stat(join(dirPath, mandate, file))).size;
    }
  }
  return { count, bytes };
}

async function s3ArtifactBytes(): Promise<{ count: number; bytes: number }> {
  const listed = await s3Client().send(new ListObjectsV2Command({ Bucket: bucket }));
  const objects = listed.Contents ?? [];
  return {
    count: objects.filter((o) => o.Key?.endsWith('.manifest.json')).length,
    bytes: objects.filter((o) => !(o.Key ?? '').endsWith('.manifest.json')).reduce((sum, o) => sum + (o.Size ?? 0), 0),
  };
}

describe('mandate status', () => {
  it('goes stale and recovers, fails with its error, never succeeded, skipped; size anomaly; target usage', async () => {
    const daemon = await start('1s');
    try {
      expect(await health('st-idle')).toMatchObject({ status: 'never_succeeded', running: false, last_success_at: null });
      // The labelled container with a bad backer.min_size: skipped, the label named in the reason.
      const listing = await callApi<Listing>(socket, 'GET', '/v1/mandates');
      expect(listing.skipped.find((m) => m.name === SKIPPED)).toMatchObject({ status: 'skipped' });
      expect(announced(daemon, SKIPPED)).toEqual([{ status: 'skipped', previous: null }]);
      const reason = parseLines(daemon.output()).find((l) => l.component === 'status' && l.mandate === SKIPPED)?.reason;
      expect(reason).toContain(`container ${SKIPPED} label backer.min_size: expected a size like 500k`);

      // A success, then nothing for longer than max_age (5s): stale at a tick; a backup makes it ok again.
      expect((await backup('st-ticker')).state).toBe('succeeded');
      expect(await health('st-ticker')).toMatchObject({ status: 'ok', max_age_ms: 5000, reason: null });
      const stale = await until(() => health('st-ticker'), (h) => h?.status === 'stale', 'st-ticker stale', 15_000);
      expect(stale?.reason).toMatch(/^no successful backup for \d+s \(max age 5s\)$/);
      expect((await backup('st-ticker')).state).toBe('succeeded');
      expect((await health('st-ticker'))?.status).toBe('ok');
      expect(announced(daemon, 'st-ticker')).toEqual([
        { status: 'never_succeeded', previous: null },
        { status: 'ok', previous: 'never_succeeded' },
        { status: 'stale', previous: 'ok' },
        { status: 'ok', previous: 'stale' },
      ]);

      // Its folder gone: the backup fails, the mandate is failing with the job's error.
      await rm(join(dir, 'st-broken'), { recursive: true });
      const failed = await backup('st-broken');
      expect(failed.state).toBe('failed');
      const failing = await health('st-broken');
      expect(failing).toMatchObject({ status: 'failing', last_error: failed.error, reason: failed.error?.message });
      expect(failing?.reason).toContain(join(dir, 'st-broken'));

      // Two big backups, then a shrunk one: a size anomaly (below min_size and the median).
      for (let i = 0; i < 2; i++) expect((await backup('st-shrink')).state).toBe('succeeded');
      expect(parseLines(daemon.output()).filter((l) => /size anomaly/.test(l.msg))).toEqual([]);
      await rm(join(dir, 'st-shrink', 'data.bin'));
      const shrunk = await backup('st-shrink');
      expect(shrunk.state).toBe('succeeded');
      const anomaly = parseLines(daemon.output()).find((l) => l.msg.startsWith('backup size anomaly of st-shrink'));
      expect(anomaly).toMatchObject({ mandate: 'st-shrink', job_id: shrunk.id, level: 40 });
      expect(anomaly?.msg).toMatch(/is below min_size 97\.7 KiB; raw size .* shrank 9\d% from the median 1\.0 MiB of the last 2 backups \(size_change_alert 50%\)/);

      // Target usage: what the targets hold, once the debounced listing after the last job ran.
      const local = await artifactBytes(join(dir, 'backups'));
      const remote = await s3ArtifactBytes();
      expect(local.count).toBe(5);
      expect(remote.count).toBe(3);
      const usage = async (): Promise<{ name: string; usage: { backups: number; bytes: number } | null; health: { healthy: boolean } }[]> =>
        (await callApi<{ targets: { name: string; usage: { backups: number; bytes: number } | null; health: { healthy: boolean } }[] }>(socket, 'GET', '/v1/targets')).targets;
      const targets = await until(usage, (ts) => ts.find((t) => t.name === 'local')?.usage?.backups === local.count && ts.find((t) => t.name === 's3')?.usage?.backups === remote.count, 'usage after the jobs');
      expect(targets.find((t) => t.name === 'local')).toMatchObject({ usage: { backups: local.count, bytes: local.bytes }, health: { healthy: true } });
      expect(targets.find((t) => t.name === 's3')).toMatchObject({ usage: { backups: remote.count, bytes: remote.bytes }, health: { healthy: true } });
      // A target that cannot be listed is unhealthy with the error; the others are not held up by it.
      expect(targets.find((t) => t.name === 's3-missing')).toMatchObject({ usage: null, health: { healthy: false, error: { message: expect.stringMatching(/bucket/i) as string } } });
      expect(daemon.output()).toContain('target s3-missing cannot be listed');
      expect((await callApi<{ status: string }>(socket, 'GET', '/v1/health')).status).toBe('ok');
    } finally {
      expect(await daemon.stop()).toBe(0);
    }
  }, 120_000);

  it('after a restart, a mandate whose max_age ran out during the downtime is stale at once, announced once', async () => {
    // st-ticker was ok when the first daemon stopped; its 5 s pass while none runs.
    await sleep(6_000);
    // A check interval of an hour: only the check at start can see it.
    const daemon = await start('1h');
    try {
      expect(await health('st-ticker')).toMatchObject({ status: 'stale' });
      expect(announced(daemon, 'st-ticker')).toEqual([{ status: 'stale', previous: 'ok' }]);
      // Unchanged statuses are not announced again after a restart.
      expect(announced(daemon, 'st-idle')).toEqual([]);
      expect(announced(daemon, 'st-broken')).toEqual([]);
      expect((await health('st-broken'))?.status).toBe('failing');
      expect((await health('st-idle'))?.first_seen_at).toBeDefined();
    } finally {
      expect(await daemon.stop()).toBe(0);
    }
  }, 60_000);

  it('readiness is 503 while the Docker socket is dead; the daemon still answers /healthz and lists mandates', async () => {
    const daemon = await start('1s', join(dir, 'no-docker.sock'));
    try {
      const ready = await rawGet('/readyz');
      expect(ready.status).toBe(503);
      expect(ready.body).toMatchObject({ ready: false, checks: { docker: { status: 'failed', message: expect.stringContaining('Docker is not reachable') as string }, state: { status: 'ok' } } });
      expect((await rawGet('/healthz')).status).toBe(200);
      expect((await health('st-idle'))?.status).toBe('never_succeeded');
    } finally {
      expect(await daemon.stop()).toBe(0);
    }
    // With a live engine the same daemon is ready.
    const live = await start('1s');
    try {
      expect(await rawGet('/readyz')).toMatchObject({ status: 200, body: { ready: true, checks: { docker: { status: 'ok' }, state: { status: 'ok' } } } });
    } finally {
      expect(await live.stop()).toBe(0);
    }
  }, 60_000);
});
