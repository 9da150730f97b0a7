/**
 * `backer jobs list|show|cancel`, `backer queue stats` and `backer mandates show` against a real
 * `backer daemon` process with static files mandates: one that succeeds, one whose directory does
 * not exist (a failed job with its reason), one that runs for minutes (a sparse 64 GiB file
 * through gzip) to cancel, and a labelled container skipped for a bad label. Every command with
 * and without --json, bad options, unknown ids, and no daemon at all (exit 3).
 */
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, open, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { callApi } from '../src/cli/client.js';
import type { QueueStats } from '../src/queue/queue.js';
import type { AnyJob, JobEvent, MandateStats } from '../src/queue/types.js';
import { cli, type CliResult } from './helpers/cli.js';
import { spawnDaemon, waitForHealth, type DaemonProcess } from './helpers/daemon-proc.js';
import { createTestEnv, filesMandateYaml, type TestEnv } from './helpers/env.js';
import { docker, HOST_IMAGE } from './setup/services.js';

const ID = randomBytes(3).toString('hex');
const GOOD = `jc-good-${ID}`;
const BAD = `jc-bad-${ID}`;
const SLOW = `jc-slow-${ID}`;
const SKIPPED = `jc-skip-${ID}`;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

let env: TestEnv;
let idle: TestEnv;
let daemon: DaemonProcess;
let socket: string;
let missingDir: string;
const dirs: Record<string, string> = {};
let good: AnyJob;
let bad: AnyJob;

const run = (args: string[], config = env.configPath): Promise<CliResult> => cli([...args, '--config', config], dirs);
const ok = (r: CliResult): string => {
  expect(r.code, r.stdout + r.stderr).toBe(0);
  return r.stdout;
};
const json = <T>(r: CliResult): T => JSON.parse(ok(r)) as T;

interface Page {
  jobs: AnyJob[];
  total: number;
  limit: number;
  offset: number;
}

interface Detail {
  mandate: Record<string, unknown>;
  next_run: string | null;
  next_verification: string | null;
  stats: MandateStats;
  recent_jobs: AnyJob[];
}

async function stillAnswers(): Promise<void> {
  expect((await callApi<{ status: string }>(socket, 'GET', '/v1/health')).status).toBe('ok');
  expect(ok(await run(['mandates', 'list']))).toContain(GOOD);
}

beforeAll(async () => {
  const goodDir = await mkdtemp(join(tmpdir(), 'jc-good-'));
  await mkdir(join(goodDir, 'sub'));
  await writeFile(join(goodDir, 'a.txt'), 'alpha\n'.repeat(5000));
  await writeFile(join(goodDir, 'sub', 'b.bin'), randomBytes(32 * 1024));
  missingDir = join(tmpdir(), `jc-missing-${ID}`);
  // A sparse file: no disk used, yet tar reads (and gzip compresses) 64 GiB of zeros: minutes.
  const slowDir = await mkdtemp(join(tmpdir(), 'jc-slow-'));
  const big = await open(join(slowDir, 'zeros.bin'), 'w');
  await big.truncate(64 * 2 ** 30);
  await big.close();
  Object.assign(dirs, { JC_GOOD_DIR: goodDir, JC_BAD_DIR: missingDir, JC_SLOW_DIR: slowDir });
  const mandates = [
    filesMandateYaml(GOOD, 'JC_GOOD_DIR', { target: 'local', middleware: 'compression' }),
    filesMandateYaml(BAD, 'JC_BAD_DIR', { target: 'local', middleware: 'compression' }),
    filesMandateYaml(SLOW, 'JC_SLOW_DIR', { target: 'local', middleware: 'compression' }),
  ].join('');
  await docker(inject('dockerHost'), [
    'create', '--name', SKIPPED, '--network', 'none',
    '--label', 'backer.enabled=true', '--label', 'backer.type=volume', '--label', 'backer.interval=sometimes',
    HOST_IMAGE, 'sleep', 'infinity',
  ]);
  env = await createTestEnv('jobs-cli', `mandates:\n${mandates}`);
  idle = await createTestEnv('jobs-cli-idle');
  socket = join(env.dir, 'data', 'backer.sock');
  daemon = spawnDaemon(env.configPath, { env: dirs });
  await waitForHealth(daemon, socket, 60_000);

  good = json<AnyJob>(await run(['backup', GOOD, '--wait', '--json']));
  const failed = await run(['backup', BAD, '--wait', '--json']);
  expect(failed.code, failed.stdout + failed.stderr).toBe(1);
  bad = JSON.parse(failed.stdout) as AnyJob;
}, 180_000);

afterAll(async () => {
  await daemon.stop();
  if (process.env.BACKER_TEST_DAEMON_LOG) await writeFile(process.env.BACKER_TEST_DAEMON_LOG, daemon.output());
  await docker(inject('dockerHost'), ['rm', '-f', SKIPPED]).catch(() => undefined);
  await rm(dirs.JC_SLOW_DIR ?? '', { recursive: true, force: true });
});

describe('jobs list', () => {
  it('prints a table of the jobs, newest first, with the failure reason', async () => {
    expect(good).toMatchObject({ mandate: GOOD, kind: 'backup', state: 'succeeded', attempts: 1 });
    expect(bad).toMatchObject({ mandate: BAD, kind: 'backup', state: 'failed', attempts: 1, error: { code: 'DUMP_FAILED' } });
    expect(bad.error?.message).toContain(`cannot read ${missingDir}`);
    const lines = ok(await run(['jobs', 'list'])).trimEnd().split('\n');
    expect(lines[0]).toMatch(/^ID +KIND +MANDATE +STATE +TRIGGER +ATTEMPTS +CREATED +WAIT +ERROR$/);
    expect(lines[1]).toMatch(new RegExp(`^${bad.id} +backup +${BAD} +failed +\\w+ +1 +\\S+ +\\S+ +cannot read ${missingDir}`));
    expect(lines[2]).toMatch(new RegExp(`^${good.id} +backup +${GOOD} +succeeded +\\w+ +1 +\\S+ +\\S+ +-$`));
    expect(lines[3]).toBe('1-2 of 2 jobs');
  });

  it('--json answers the page; --state, --mandate, --kind, --limit and --offset filter and page', async () => {
    const all = json<Page>(await run(['jobs', 'list', '--json']));
    expect(all).toMatchObject({ total: 2, limit: 50, offset: 0 });
    expect(all.jobs.map((j) => j.id)).toEqual([bad.id, good.id]);
    const [failed, byMandate, restores, first, second] = await Promise.all([
      run(['jobs', 'list', '--state', 'failed', '--json']),
      run(['jobs', 'list', '--mandate', GOOD, '--kind', 'backup', '--json']),
      run(['jobs', 'list', '--kind', 'restore', '--json']),
      run(['jobs', 'list', '--limit', '1', '--json']),
      run(['jobs', 'list', '--limit', '1', '--offset', '1']),
    ]);
    expect(json<Page>(failed).jobs.map((j) => j.id)).toEqual([bad.id]);
    expect(json<Page>(byMandate).jobs.map((j) => j.id)).toEqual([good.id]);
    expect(json<Page>(restores)).toEqual({ jobs: [], total: 0, limit: 50, offset: 0 });
    expect(json<Page>(first)).toMatchObject({ total: 2, limit: 1, jobs: [{ id: bad.id }] });
    expect(ok(second)).toContain(good.id);
    expect(ok(second)).toContain('2-2 of 2 jobs');
    expect(ok(await run(['jobs', 'list', '--state', 'interrupted']))).toBe('no jobs\n');
  });

  it('a bad option is exit 2 naming it, in JSON with --json', async () => {
    const [limit, state] = await Promise.all([run(['jobs', 'list', '--limit', '0']), run(['jobs', 'list', '--state', 'done', '--json'])]);
    expect(limit.code).toBe(2);
    expect(limit.stderr).toBe('backer: query parameter limit: must be at least 1\n');
    expect(state.code).toBe(2);
    expect(JSON.parse(state.stdout)).toEqual({
      error: { code: 'API_BAD_REQUEST', message: 'query parameter state: must be one of queued, running, succeeded, failed, cancelled, interrupted' },
    });
    await stillAnswers();
  });
});

describe('jobs show', () => {
  it("prints the failed job's fields and its history", async () => {
    const out = ok(await run(['jobs', 'show', bad.id]));
    expect(out).toContain(`job ${bad.id}\n`);
    expect(out).toMatch(new RegExp(`\\n {2}mandate: +${BAD}\\n`));
    expect(out).toMatch(/\n {2}state: +failed\n/);
    expect(out).toMatch(/\n {2}attempts: +1\n/);
    expect(out).toContain(`error:      DUMP_FAILED: cannot read ${missingDir}`);
    expect(out).toMatch(/\nATTEMPT +TIME +EVENT +MESSAGE\n0 +\S+ +queued +/);
    expect(out).toMatch(/\n1 +\S+ +started +/);
    expect(out).toMatch(new RegExp(`\\n1 +\\S+ +failed +.*cannot read ${missingDir}`));
  });

  it('--json answers the job and its history, oldest first', async () => {
    const detail = json<{ job: AnyJob; history: JobEvent[] }>(await run(['jobs', 'show', good.id, '--json']));
    expect(detail.job).toMatchObject({ id: good.id, state: 'succeeded', mandate: GOOD });
    // Queued before any attempt (0), then the one attempt's start, its notes (what it wrote where), its end.
    const events = detail.history.map((e) => [e.attempt, e.type]);
    expect(events.slice(0, 2)).toEqual([
      [0, 'queued'],
      [1, 'started'],
    ]);
    expect(events.at(-1)).toEqual([1, 'succeeded']);
    expect(events.slice(2, -1).every(([attempt, type]) => attempt === 1 && type === 'note')).toBe(true);
    const times = detail.history.map((e) => e.at);
    expect([...times].sort()).toEqual(times);
  });

  it('an unknown job is exit 4', async () => {
    const [human, machine] = await Promise.all([run(['jobs', 'show', 'no-such-job']), run(['jobs', 'show', 'no-such-job', '--json'])]);
    expect(human.code).toBe(4);
    expect(human.stderr).toBe('backer: no job no-such-job\n');
    expect(machine.code).toBe(4);
    expect(JSON.parse(machine.stdout)).toEqual({ error: { code: 'JOB_NOT_FOUND', message: 'no job no-such-job' } });
  });
});

describe('queue stats', () => {
  it('prints running, waiting, wait times, failures and overloaded mandates', async () => {
    const stats = json<QueueStats>(await run(['queue', 'stats', '--json']));
    expect(stats).toMatchObject({ running: 0, queued: 0, retrying: 0, concurrency: 2, failures_24h: 1, overloaded: [] });
    expect(stats.wait_ms_p50).toEqual(expect.any(Number));
    expect(stats.wait_ms_p95).toBeGreaterThanOrEqual(stats.wait_ms_p50 ?? 0);
    const out = ok(await run(['queue', 'stats']));
    expect(out).toContain('running:       0 (concurrency 2)\n');
    expect(out).toContain('queued:        0\n');
    expect(out).toContain('retrying:      0\n');
    expect(out).toMatch(/wait p50\/p95: +\S+ \/ \S+ \(jobs started in the last 24 h\)\n/);
    expect(out).toContain('failures 24h:  1\n');
    expect(out).toContain('overloaded:    none\n');
  });
});

describe('mandates show', () => {
  it('prints the settings, next run, stats and recent jobs', async () => {
    const out = ok(await run(['mandates', 'show', GOOD]));
    expect(out).toContain(`mandate ${GOOD}\n`);
    expect(out).toMatch(/\n {2}type: +files\n/);
    expect(out).toMatch(/\n {2}middleware: +compression\n/);
    expect(out).toMatch(/\n {2}next run: +20\d\d-02-29T00:00:00.000Z\n/);
    expect(out).toMatch(/\n {2}successes: +1\n {2}failures: +0\n/);
    expect(out).toContain('recent jobs:\n');
    expect(out).toContain(good.id);
  });

  it('--json answers the mandate, its stats (kept by the queue) and its newest jobs', async () => {
    const [goodDetail, badDetail] = await Promise.all([run(['mandates', 'show', GOOD, '--json']), run(['mandates', 'show', BAD, '--json'])]);
    const detail = json<Detail>(goodDetail);
    expect(detail.mandate).toMatchObject({ name: GOOD, type: 'files', container: null, targets: ['local'], middleware: ['compression'], interval: '0 0 29 2 *' });
    expect(detail.next_run).toMatch(/^20\d\d-02-29T00:00:00.000Z$/);
    expect(detail.stats).toMatchObject({ mandate: GOOD, successes: 1, failures: 0, last_success_at: good.finished_at, last_error: null });
    expect(detail.stats.last_stored_bytes).toBeGreaterThan(0);
    expect(detail.stats.last_raw_bytes).toBeGreaterThan(30_000);
    expect(detail.recent_jobs.map((j) => j.id)).toEqual([good.id]);
    const failed = json<Detail>(badDetail);
    expect(failed.stats).toMatchObject({ successes: 0, failures: 1, last_success_at: null, last_failure_at: bad.finished_at, last_error: { code: 'DUMP_FAILED' } });
    expect(failed.recent_jobs.map((j) => j.id)).toEqual([bad.id]);
  });

  it('a skipped mandate is exit 2 with its problems; an unknown one exit 4', async () => {
    const [skipped, skippedJson, unknown] = await Promise.all([
      run(['mandates', 'show', SKIPPED]),
      run(['mandates', 'show', SKIPPED, '--json']),
      run(['mandates', 'show', 'no-such-mandate']),
    ]);
    expect(skipped.code).toBe(2);
    expect(skipped.stderr).toContain(`mandate ${SKIPPED} exists but is skipped`);
    expect(skipped.stderr).toContain(`container ${SKIPPED} label backer.interval`);
    expect(skippedJson.code).toBe(2);
    expect((JSON.parse(skippedJson.stdout) as { error: { code: string } }).error.code).toBe('MANDATE_SKIPPED');
    expect(unknown.code).toBe(4);
    // Known: this file's mandates, and labelled containers of other test files on the shared engine.
    expect(unknown.stderr).toMatch(/^backer: no mandate named no-such-mandate; known: .+\n$/);
    const known = (unknown.stderr.split('known: ')[1] ?? '').trim().split(', ');
    expect(known).toEqual(expect.arrayContaining([BAD, GOOD, SLOW]));
    await stillAnswers();
  });
});

describe('jobs cancel', () => {
  it('cancels a queued job at once and aborts a running one', async () => {
    const { job: slow } = await callApi<{ job: AnyJob }>(socket, 'POST', `/v1/mandates/${SLOW}/backups`);
    for (let i = 0; i < 200 && (await callApi<{ job: AnyJob }>(socket, 'GET', `/v1/jobs/${slow.id}`)).job.state !== 'running'; i++) await sleep(100);
    // Never two jobs of one mandate at once: the second waits behind the running one.
    const { job: waiting } = await callApi<{ job: AnyJob }>(socket, 'POST', `/v1/mandates/${SLOW}/backups`);
    expect(waiting.id).not.toBe(slow.id);
    expect(waiting.state).toBe('queued');

    expect(ok(await run(['jobs', 'cancel', waiting.id]))).toBe(`cancelled job ${waiting.id} (backup ${SLOW})\n`);
    const running = json<{ job: AnyJob }>(await run(['jobs', 'cancel', slow.id, '--json']));
    expect(running.job).toMatchObject({ id: slow.id, kind: 'backup', mandate: SLOW });
    const ended = await callApi<{ job: AnyJob }>(socket, 'GET', `/v1/jobs/${slow.id}?wait=60`);
    expect(ended.job).toMatchObject({ state: 'cancelled', error: { code: 'JOB_CANCELLED' } });

    const cancelled = json<Page>(await run(['jobs', 'list', '--state', 'cancelled', '--mandate', SLOW, '--json']));
    expect(cancelled.jobs.map((j) => j.id)).toEqual([waiting.id, slow.id]);
    await stillAnswers();
  }, 120_000);

  it('a job that already ended is left as it is; an unknown job is exit 4', async () => {
    expect(ok(await run(['jobs', 'cancel', good.id]))).toBe(`job ${good.id} (backup ${GOOD}) had already ended: succeeded\n`);
    const unknown = await run(['jobs', 'cancel', 'no-such-job', '--json']);
    expect(unknown.code).toBe(4);
    expect(JSON.parse(unknown.stdout)).toEqual({ error: { code: 'JOB_NOT_FOUND', message: 'no job no-such-job' } });
    expect(json<{ job: AnyJob }>(await run(['jobs', 'show', good.id, '--json'])).job.state).toBe('succeeded');
  });
});

describe('without a daemon', () => {
  it('every command exits 3', async () => {
    const results = await Promise.all(
      [['jobs', 'list'], ['jobs', 'show', 'x'], ['jobs', 'cancel', 'x', '--json'], ['queue', 'stats'], ['mandates', 'show', GOOD, '--json']].map((args) => run(args, idle.configPath)),
    );
    for (const r of results) {
      expect(r.code, r.stdout + r.stderr).toBe(3);
      expect(r.stdout + r.stderr).toContain('cannot reach the Backer daemon');
    }
  });
});
