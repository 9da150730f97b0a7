/**
 * Scheduled verification (`backer.verify` / `verify` / the config's `verify`): the scheduler
 * queues `verify` jobs (`drill` jobs at level drill) beside the backup schedule. Through a real
 * `backer daemon` process whose verify schedules fire every 2-3 seconds (6-field cron), on static
 * `files` mandates and a labelled redis container: a passing verification with its record, a
 * damaged artifact that makes a FAILED job with the reason (the daemon still answering and still
 * scheduling), a drill, `off`, and the mandates API's `next_verify`. The scheduler itself with
 * real croner timers, paused and not, and the coalescing of a still-queued scheduled verification.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { callApi } from '../src/cli/client.js';
import type { Manifest } from '../src/manifests/schema.js';
import type { Verification } from '../src/manifests/verification.js';
import type { MandateSpec } from '../src/mandates/types.js';
import type { VerifyResult } from '../src/pipeline/run-verify.js';
import { createQueue } from '../src/queue/queue.js';
import type { AnyJob, Job } from '../src/queue/types.js';
import { createScheduler, type ScheduledRun } from '../src/scheduler/scheduler.js';
import { triggerScheduledVerify } from '../src/scheduler/verify-trigger.js';
import { cli } from './helpers/cli.js';
import { spawnDaemon, waitForHealth, type DaemonProcess } from './helpers/daemon-proc.js';
import { createTestEnv, testProcessEnv, type TestEnv } from './helpers/env.js';
import { emptyVerifyResult } from './helpers/queue.js';
import { seed, startRedis } from './helpers/redis.js';
import { docker } from './setup/services.js';

const ID = randomBytes(3).toString('hex');
const GOOD = `sv-good-${ID}`;
const BAD = `sv-bad-${ID}`;
const DRILL = `sv-drill-${ID}`;
const OFF = `sv-off-${ID}`;
const REDIS = `sv-redis-${ID}`;
const NEVER = '0 0 29 2 *';
const EVERY_2S = '*/2 * * * * *';
const logger = pino({ level: 'silent' });
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

let env: TestEnv;
let daemon: DaemonProcess;
let socket: string;

const run = (args: string[]): ReturnType<typeof cli> => cli([...args, '--config', env.configPath], testProcessEnv());

function filesMandate(name: string, dir: string, extra: string): string {
  return `  ${name}:\n    type: files\n    interval: "${NEVER}"\n    target: local\n    middleware: compression\n${extra}    files:\n      path: ${dir}\n`;
}

async function sourceDir(name: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), `${name}-`));
  await mkdir(join(dir, 'sub'));
  await writeFile(join(dir, 'a.txt'), `alpha ${name}\n`.repeat(2000));
  await writeFile(join(dir, 'sub', 'b.bin'), randomBytes(64 * 1024));
  return dir;
}

/** The daemon's jobs, newest first (`query`: the API's filters; 500 is its largest page). */
async function jobs(query = ''): Promise<AnyJob[]> {
  return (await callApi<{ jobs: AnyJob[] }>(socket, 'GET', `/v1/jobs?limit=500${query}`)).jobs;
}

/** Polls the daemon's jobs until one matches. */
async function waitForJob(what: string, match: (job: AnyJob) => boolean, timeoutMs = 90_000): Promise<AnyJob> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const found = (await jobs()).find(match);
    if (found !== undefined) return found;
    await sleep(250);
  }
  throw new Error(`no ${what} within ${timeoutMs} ms; jobs: ${JSON.stringify((await jobs()).slice(0, 8))}\n${daemon.output().slice(-4000)}`);
}

const scheduled = (mandate: string, kind: AnyJob['kind'], state: AnyJob['state'], after: number) => (job: AnyJob): boolean =>
  job.mandate === mandate && job.kind === kind && job.trigger === 'schedule' && job.state === state && Date.parse(job.created_at) > after;

async function backup(mandate: string): Promise<string> {
  const r = await run(['backup', mandate, '--wait', '--json']);
  expect(r.code, r.stdout + r.stderr).toBe(0);
  return (JSON.parse(r.stdout) as Job).result?.name ?? '';
}

async function record(job: AnyJob): Promise<Verification> {
  const key = (job.result as VerifyResult).verifications[0]?.record_key ?? '';
  expect(key).not.toBe('');
  return JSON.parse(await readFile(join(env.dir, 'backups', key), 'utf8')) as Verification;
}

async function stillAnswers(): Promise<void> {
  expect((await callApi<{ status: string }>(socket, 'GET', '/v1/health')).status).toBe('ok');
  const listed = await run(['mandates', 'list']);
  expect(listed.code, listed.stderr).toBe(0);
  expect(listed.stdout).toContain(BAD);
}

beforeAll(async () => {
  const [good, bad, drill, off] = await Promise.all([GOOD, BAD, DRILL, OFF].map(sourceDir));
  const mandates = [
    filesMandate(GOOD, good ?? '', ''),
    filesMandate(BAD, bad ?? '', '    verify_level: hash\n'),
    filesMandate(DRILL, drill ?? '', '    verify: "*/3 * * * * *"\n    verify_level: drill\n'),
    filesMandate(OFF, off ?? '', '    verify: off\n'),
  ].join('');
  env = await createTestEnv('sched-verify', `verify:\n  interval: "${EVERY_2S}"\n  level: decode\nmandates:\n${mandates}`);
  socket = join(env.dir, 'data', 'backer.sock');
  const labels = {
    'backer.enabled': 'true',
    'backer.type': 'redis',
    'backer.interval': NEVER,
    'backer.target': 'local',
    'backer.redis.password': 'Env:REDIS_PASSWORD',
    'backer.verify': EVERY_2S,
    'backer.verify_level': 'size',
  };
  await startRedis(REDIS, { labels });
  await seed(REDIS);
  daemon = spawnDaemon(env.configPath);
  await waitForHealth(daemon, socket, 60_000);
});

afterAll(async () => {
  await daemon.stop();
  if (process.env.BACKER_TEST_DAEMON_LOG) await writeFile(process.env.BACKER_TEST_DAEMON_LOG, daemon.output());
  await docker(inject('dockerHost'), ['rm', '-f', REDIS]).catch(() => undefined);
});

describe('scheduled verification through the daemon', () => {
  it("shows each mandate's verify schedule and next verification beside the backup's next run", async () => {
    const { mandates } = await callApi<{ mandates: Record<string, unknown>[] }>(socket, 'GET', '/v1/mandates');
    const byName = new Map(mandates.map((m) => [m.name, m]));
    const shown = [GOOD, BAD, DRILL, OFF, REDIS].map((n) => [n, byName.get(n)?.verify, byName.get(n)?.verify_level]);
    expect(shown).toEqual([
      [GOOD, EVERY_2S, 'decode'],
      [BAD, EVERY_2S, 'hash'],
      [DRILL, '*/3 * * * * *', 'drill'],
      [OFF, null, 'decode'],
      [REDIS, EVERY_2S, 'size'],
    ]);
    const good = byName.get(GOOD) ?? {};
    expect(Date.parse(String(good.next_verify)) - Date.now()).toBeLessThan(3_000);
    // The backup's schedule stays its own (29 February).
    expect(String(good.next_run)).toMatch(/-02-29T00:00:00\.000Z$/);
    expect(byName.get(OFF)?.next_verify).toBeNull();
  });

  it('fails loudly while a mandate has no backup to verify', async () => {
    const job = await waitForJob('failed verify of a mandate without backups', scheduled(GOOD, 'verify', 'failed', 0));
    expect(job.params).toEqual({ level: 'decode', backup: 'latest' });
    expect(job.error?.code).toBe('BACKUP_NOT_FOUND');
    expect(job.error?.message).toContain(`no backup of mandate ${GOOD} on the targets of mandate ${GOOD}`);
  });

  it('verifies a stored backup on schedule: the job passes and writes its record next to the backup', async () => {
    const name = await backup(GOOD);
    const job = await waitForJob('passing scheduled verify', scheduled(GOOD, 'verify', 'succeeded', Date.now()));
    const result = job.result as VerifyResult;
    expect(result.verifications.map((v) => [v.backup, v.target, v.level, v.outcome])).toEqual([[name, 'local', 'decode', 'passed']]);
    expect(await record(job)).toMatchObject({ backup: name, mandate: GOOD, level: 'decode', outcome: 'passed', error: null });
  });

  it('a damaged artifact makes a FAILED scheduled verify job with the reason; the daemon answers and keeps scheduling', async () => {
    const name = await backup(BAD);
    const listed = await run(['backups', 'list', '--mandate', BAD, '--json']);
    const manifest = (JSON.parse(listed.stdout) as { backups: Manifest[] }).backups.find((m) => m.name === name);
    const path = join(env.dir, 'backups', manifest?.artifact.key ?? 'missing');
    const bytes = await readFile(path);
    const at = Math.floor(bytes.length / 2);
    bytes[at] = (bytes[at] ?? 0) ^ 0xff;
    await writeFile(path, bytes);
    const damagedAt = Date.now();

    const failed = await waitForJob('failed scheduled verify', scheduled(BAD, 'verify', 'failed', damagedAt));
    expect(failed.params).toEqual({ level: 'hash', backup: 'latest' });
    expect(failed.error?.code).toBe('VERIFY_FAILED');
    expect(failed.error?.message).toMatch(new RegExp(`^verification \\(hash\\) failed: ${name} on local: .*artifact .*(md5, sha256 differ|sha256 differs)`));
    expect(await record(failed)).toMatchObject({ backup: name, level: 'hash', outcome: 'failed', error: { code: 'VERIFY_FAILED' } });
    expect(daemon.output()).toMatch(new RegExp(`"level":50[^\\n]*"mandate":"${BAD}"[^\\n]*"msg":"verification failed"`));

    await stillAnswers();
    const finished = Date.parse(failed.finished_at ?? '');
    await waitForJob('next scheduled verify after a failure', scheduled(BAD, 'verify', 'failed', finished));
    await stillAnswers();
  });

  it('level drill queues drill jobs on its own schedule', async () => {
    const name = await backup(DRILL);
    const job = await waitForJob('passing scheduled drill', scheduled(DRILL, 'drill', 'succeeded', Date.now()));
    expect(job.params).toEqual({ level: 'drill', backup: 'latest' });
    const result = job.result as VerifyResult;
    expect(result.verifications.map((v) => [v.backup, v.level, v.outcome])).toEqual([[name, 'drill', 'passed']]);
    expect(await record(job)).toMatchObject({ backup: name, level: 'drill', outcome: 'passed' });
  });

  it('a container label schedules its own verification', async () => {
    const name = await backup(REDIS);
    const job = await waitForJob('passing scheduled verify of the labelled container', scheduled(REDIS, 'verify', 'succeeded', Date.now()));
    expect(job.params).toEqual({ level: 'size', backup: 'latest' });
    expect((job.result as VerifyResult).verifications.map((v) => [v.backup, v.level, v.outcome])).toEqual([[name, 'size', 'passed']]);
  });

  it('verify: off schedules nothing, while the config default schedules the others', async () => {
    expect(await jobs(`&mandate=${OFF}`)).toEqual([]);
    expect((await jobs(`&mandate=${GOOD}&kind=verify`)).filter((j) => j.trigger === 'schedule').length).toBeGreaterThan(1);
    // No scheduled backup fired: only the backups the tests asked for.
    expect((await jobs('&kind=backup')).map((j) => j.trigger)).toEqual(['api', 'api', 'api', 'api']);
  });
});

function spec(name: string, verify: MandateSpec['verify']): MandateSpec {
  const source = { type: 'files', container: null, options: {} };
  return { name, origin: 'config', source, interval: NEVER, targets: ['local'], middleware: [], retention: 1, priority: 5, name_pattern: '<DATE>', verify, alerts: { max_age_ms: null, min_size_bytes: null, size_change_percent: null } };
}

describe('the scheduler', () => {
  it('fires verify schedules with their level beside the backup schedule, and follows changes', async () => {
    const fired: [string, ScheduledRun][] = [];
    const scheduler = createScheduler({ trigger: (m, r) => fired.push([m, r]), logger });
    scheduler.update([spec('a', { interval: '* * * * * *', level: 'hash' }), spec('b', { interval: null, level: 'decode' })]);
    expect(scheduler.nextRun('a')?.toISOString()).toMatch(/-02-29T00:00:00\.000Z$/);
    expect(scheduler.nextRun('a', 'verify')).toBeInstanceOf(Date);
    expect(scheduler.nextRun('b', 'verify')).toBeNull();
    await sleep(2_300);
    expect(fired.length).toBeGreaterThanOrEqual(2);
    expect(new Set(fired.map((f) => JSON.stringify(f)))).toEqual(new Set([JSON.stringify(['a', { kind: 'verify', level: 'hash' }])]));

    scheduler.update([spec('a', { interval: '* * * * * *', level: 'drill' })]);
    fired.length = 0;
    await sleep(1_300);
    expect(fired.at(-1)).toEqual(['a', { kind: 'verify', level: 'drill' }]);
    scheduler.update([spec('a', { interval: null, level: 'drill' })]);
    expect(scheduler.nextRun('a', 'verify')).toBeNull();
    fired.length = 0;
    await sleep(1_300);
    expect(fired).toEqual([]);
    await scheduler.close();
  });

  it('paused, it computes verify schedules but never fires them', async () => {
    const fired: string[] = [];
    const scheduler = createScheduler({ trigger: (m) => fired.push(m), logger, paused: true });
    scheduler.update([spec('a', { interval: '* * * * * *', level: 'decode' })]);
    expect(scheduler.nextRun('a', 'verify')).toBeInstanceOf(Date);
    await sleep(1_500);
    expect(fired).toEqual([]);
    await scheduler.close();
  });

  it('skips a tick while the previous scheduled verification of the mandate is still queued', async () => {
    let release = (): void => undefined;
    const blocked = new Promise<void>((r) => (release = r));
    const queue = createQueue({
      concurrency: 1,
      logger,
      run: async (job) => {
        await blocked;
        return { status: 'succeeded', error: null, result: emptyVerifyResult(job.kind === 'drill' ? 'drill' : 'decode') };
      },
    });
    queue.start();
    // The first runs (and blocks), the second waits in the queue, the third tick is skipped.
    for (let i = 0; i < 3; i++) triggerScheduledVerify(queue, 'a', 'decode', logger);
    triggerScheduledVerify(queue, 'a', 'drill', logger);
    expect(queue.list({ mandate: 'a' }).map((j) => [j.kind, j.state, j.trigger, j.params]).reverse()).toEqual([
      ['verify', 'running', 'schedule', { level: 'decode', backup: 'latest' }],
      ['verify', 'queued', 'schedule', { level: 'decode', backup: 'latest' }],
      ['drill', 'queued', 'schedule', { level: 'drill', backup: 'latest' }],
    ]);
    release();
    await queue.close();
  });
});
