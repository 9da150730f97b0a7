/**
 * Idempotent schedules and catch-up through real `backer daemon` processes on one data_dir: a
 * fire time missed while no daemon ran is made up once at the next start (schedule.catch_up:
 * once), never with `skip`; jobs, their history and the mandate's stats survive the restarts; no
 * fire time runs twice.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { callApi } from '../src/cli/client.js';
import type { AnyJob, JobEvent, MandateStats } from '../src/queue/types.js';
import { spawnDaemon, waitForHealth, type DaemonProcess } from './helpers/daemon-proc.js';
import { sleep, until } from './helpers/poll.js';

let dir: string;
let socket: string;

const config = (catchUp: 'once' | 'skip'): string =>
  [
    `data_dir: ${dir}/data`,
    'docker:\n  enabled: false',
    `schedule:\n  catch_up: ${catchUp}\n  catch_up_window: 1h`,
    `targets:\n  - name: local\n    type: local\n    path: ${dir}/backups`,
    // Every 4 seconds (six fields: seconds first).
    `mandates:\n  ticker:\n    type: files\n    interval: "*/4 * * * * *"\n    target: local\n    files:\n      path: ${dir}/files`,
  ].join('\n');

async function start(catchUp: 'once' | 'skip'): Promise<DaemonProcess> {
  await writeFile(join(dir, 'backer.yml'), `${config(catchUp)}\n`);
  const daemon = spawnDaemon(join(dir, 'backer.yml'));
  await waitForHealth(daemon, socket);
  return daemon;
}

const jobs = async (): Promise<AnyJob[]> => (await callApi<{ jobs: AnyJob[] }>(socket, 'GET', '/v1/jobs?mandate=ticker&limit=500')).jobs;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bk-catchup-'));
  await mkdir(join(dir, 'files'));
  await writeFile(join(dir, 'files', 'a.txt'), 'a\n');
  socket = join(dir, 'data', 'backer.sock');
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('schedule.catch_up', () => {
  it('once: a fire time missed while down runs once at start; skip: never; jobs survive restarts', async () => {
    const first = await start('once');
    const ran = await until(jobs, (js) => js.filter((j) => j.trigger === 'schedule' && j.state === 'succeeded').length >= 2, 'two scheduled backups');
    expect(await first.stop()).toBe(0);
    // At least one fire time (every 4 s) passes while no daemon runs.
    await sleep(5_000);

    const second = await start('once');
    try {
      // The stats of the first daemon's backups survived the restart.
      const { stats } = await callApi<{ stats: MandateStats }>(socket, 'GET', '/v1/mandates/ticker');
      expect(stats.successes).toBeGreaterThanOrEqual(2);
      expect(stats.last_success_at).not.toBeNull();
      const after = await until(jobs, (js) => js.some((j) => j.trigger === 'catch_up'), 'the catch-up run');
      expect(after.filter((j) => j.trigger === 'catch_up')).toHaveLength(1);
      // The jobs of the first daemon are still there, with their history.
      const old = ran.find((j) => j.trigger === 'schedule' && j.state === 'succeeded') as AnyJob;
      const { job, history } = await callApi<{ job: AnyJob; history: JobEvent[] }>(socket, 'GET', `/v1/jobs/${old.id}`);
      expect(job.state).toBe('succeeded');
      expect(history.map((e) => e.type)).toEqual(['queued', 'started', 'note', 'succeeded']);
    } finally {
      expect(await second.stop()).toBe(0);
    }
    await sleep(5_000);

    const third = await start('skip');
    try {
      // The next regular fire comes, but no second catch-up.
      await sleep(5_000);
      const all = await jobs();
      expect(all.filter((j) => j.trigger === 'catch_up')).toHaveLength(1);
      expect(all.some((j) => j.trigger === 'schedule' && Date.parse(j.created_at) > Date.now() - 5_500)).toBe(true);
      // Each fire time made one job: no two scheduled jobs in the same second, across three daemons.
      const seconds = all.filter((j) => j.trigger === 'schedule').map((j) => j.created_at.slice(0, 19));
      expect(new Set(seconds).size).toBe(seconds.length);
      expect((await callApi<{ status: string }>(socket, 'GET', '/v1/health')).status).toBe('ok');
    } finally {
      expect(await third.stop()).toBe(0);
    }
  }, 90_000);
});
