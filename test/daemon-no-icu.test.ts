/**
 * The daemon loads none of ICU's locale data (issue 11, memory): croner's `timezone` builds an
 * Intl.DateTimeFormat (ICU's time zones, ~7 MiB of RSS) and `localeCompare` ICU's collation
 * (~3 MiB), and both made the daemon's sorts and schedules depend on the machine's locale.
 * eslint.config.js keeps them out of src/; this test keeps them out of what the daemon runs,
 * libraries included: a real `backer daemon` process (Docker discovery on) with a probe that
 * records every use of Intl and of the locale methods (test/helpers/icu-probe.ts) backs up to a
 * local target and to S3 (gzip + ccrypt, zstd + age), twice each, verifies, and answers every
 * listing of the API and /metrics. The probe must have recorded nothing.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { callApi } from '../src/cli/client.js';
import type { Job } from '../src/queue/types.js';
import { backupThroughApi, jobEnded, spawnDaemon, waitForHealth, type DaemonProcess } from './helpers/daemon-proc.js';
import { createTestEnv, filesMandateYaml, type TestEnv } from './helpers/env.js';
import { httpText } from './helpers/metrics.js';

const PROBE = fileURLToPath(new URL('./helpers/icu-probe.ts', import.meta.url));
const ID = randomBytes(3).toString('hex');
const LOCAL = `noicu-local-${ID}`;
const S3 = `noicu-s3-${ID}`;
let env: TestEnv;
let socket: string;
let probeOut: string;
let daemon: DaemonProcess;

beforeAll(async () => {
  const mandates = [filesMandateYaml(LOCAL, 'NOICU_DIR', { target: 'local', middleware: 'compression,encryption' }), filesMandateYaml(S3, 'NOICU_DIR', { target: 's3', middleware: 'zstd,age' })];
  env = await createTestEnv('noicu', `mandates:\n${mandates.join('')}`);
  const files = join(env.dir, 'files');
  await mkdir(files, { recursive: true });
  await writeFile(join(files, 'data.bin'), randomBytes(3 * 1024 * 1024));
  socket = join(env.dir, 'data', 'backer.sock');
  probeOut = join(env.dir, 'icu-probe.jsonl');
  daemon = spawnDaemon(env.configPath, { imports: [PROBE], env: { NOICU_DIR: files, ICU_PROBE_OUT: probeOut } });
  await waitForHealth(daemon, socket, 60_000);
}, 90_000);

afterAll(async () => {
  expect(await daemon.stop()).toBe(0);
  await rm(env.dir, { recursive: true, force: true });
});

/** What the probe recorded (JSON lines), or nothing. */
async function recorded(): Promise<{ what: string; at: string[] }[]> {
  if (!existsSync(probeOut)) return [];
  return (await readFile(probeOut, 'utf8'))
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as { what: string; at: string[] });
}

it('the probe records what it is meant to (the test can fail)', async () => {
  // The daemon has started and discovered containers, recording nothing; the probe in a process
  // that does use them records both.
  expect(await recorded()).toEqual([]);
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--import', PROBE, '-e', "'a'.localeCompare('b'); new Intl.DateTimeFormat('en-US', { timeZone: 'UTC' })"], { env: { ...process.env, ICU_PROBE_OUT: `${probeOut}.self` }, encoding: 'utf8' });
  expect(r.status).toBe(0);
  const self = (await readFile(`${probeOut}.self`, 'utf8')).split('\n').filter((l) => l !== '').map((l) => (JSON.parse(l) as { what: string }).what);
  expect(self).toEqual(['String.prototype.localeCompare', 'Intl.DateTimeFormat']);
}, 30_000);

it('backs up, verifies and answers the API without loading ICU data', async () => {
  for (const mandate of [LOCAL, S3, LOCAL, S3]) expect((await backupThroughApi(socket, mandate)).state).toBe('succeeded');
  const { jobs } = await callApi<{ jobs: Job[] }>(socket, 'POST', '/v1/verifications', { mandate: LOCAL });
  for (const job of jobs) expect((await jobEnded(socket, job.id)).state).toBe('succeeded');
  const { backups } = await callApi<{ backups: { name: string; mandate: string }[] }>(socket, 'GET', '/v1/backups');
  // Only ours: discovery also sees other test files' containers.
  const ours = backups.filter((b) => b.mandate === LOCAL || b.mandate === S3);
  expect(ours.length).toBe(4);
  const first = ours[0]?.name ?? '';
  const paths = ['/v1/health', '/v1/whoami', '/v1/mandates', `/v1/mandates/${LOCAL}`, `/v1/mandates/${S3}/backups`, '/v1/backups', `/v1/backups/${first}`, '/v1/jobs', `/v1/jobs/${jobs[0]?.id ?? ''}`];
  paths.push('/v1/queue/stats', '/v1/targets', '/v1/targets/s3', '/v1/targets/local/backups', '/v1/openapi.json');
  for (const path of paths) await callApi(socket, 'GET', path);
  for (const path of ['/metrics', '/healthz', '/readyz']) expect((await httpText({ socketPath: socket }, path)).status).toBe(200);
  expect(await recorded()).toEqual([]);
  expect((await callApi<{ status: string }>(socket, 'GET', '/v1/health')).status).toBe('ok');
}, 180_000);
