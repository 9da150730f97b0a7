/**
 * GFS retention end to end: a static files mandate with `keep_last: 2, keep_daily: 2` to local and
 * S3. Older backups (copies of a real one, dated days back) are planned by `backer retention plan`
 * without being deleted, then deleted by the next successful `backup --once` exactly as planned;
 * the daemon's API gives the same plan; bad retention keys are named where they were written.
 */
import { chmod, copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { callApi } from '../src/cli/client.js';
import type { ConfigProblem } from '../src/config/problems.js';
import { manifestKey, type Manifest } from '../src/manifests/schema.js';
import type { BackupResult } from '../src/pipeline/run-backup.js';
import type { RetentionPlan } from '../src/retention/report.js';
import { cli, spawnCli } from './helpers/cli.js';
import { spawnDaemon, waitForHealth } from './helpers/daemon-proc.js';
import { createTestEnv, type TestEnv } from './helpers/env.js';
import { docker, HOST_IMAGE } from './setup/services.js';

const MANDATE = 'gfs-files';
const BAD_CONTAINER = 'retention-gfs-bad';
const host = (): string => inject('dockerHost');
let env: TestEnv;
let filesDir: string;

const run = (args: string[]) => cli([...args, '--config', env.configPath], { GFS_FILES_DIR: filesDir });

beforeAll(async () => {
  env = await createTestEnv(
    'retgfs',
    `mandates:
  ${MANDATE}:
    type: files
    interval: "0 0 29 2 *"
    target: [local, s3]
    retention:
      keep_last: 2
      keep_daily: 2
    files:
      path: \${GFS_FILES_DIR}
`,
  );
  filesDir = join(env.dir, 'files');
  await mkdir(filesDir, { recursive: true });
  await writeFile(join(filesDir, 'a.txt'), 'alpha\n');
  await docker(host(), ['create', '--name', BAD_CONTAINER, '--network', 'none', '--label', 'backer.enabled=true', '--label', 'backer.type=redis', '--label', 'backer.retention.keep_weekly=-2', '--label', 'backer.retention.keep_within=6mo', HOST_IMAGE, 'sleep', 'infinity']);
});

afterAll(async () => {
  await docker(host(), ['rm', '-f', BAD_CONTAINER]).catch(() => undefined);
});

/** Copies a real backup on the local target under another name and creation time (days back). */
async function cloneBackup(real: Manifest, name: string, createdAt: string, artifactBase = `${MANDATE}/${name}`): Promise<void> {
  const root = join(env.dir, 'backups');
  const extension = real.artifact.key.slice(`${MANDATE}/${real.name}`.length);
  const artifactKey = `${artifactBase}${extension}`;
  await copyFile(join(root, real.artifact.key), join(root, artifactKey));
  const clone: Manifest = { ...real, name, uuid: crypto.randomUUID(), created_at: createdAt, completed_at: createdAt, artifact: { ...real.artifact, key: artifactKey } };
  await writeFile(join(root, manifestKey(MANDATE, name)), JSON.stringify(clone));
}

async function backupOnce(): Promise<BackupResult> {
  const r = await run(['backup', MANDATE, '--once', '--json']);
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as BackupResult;
}

async function plan(target: string): Promise<RetentionPlan> {
  const r = await run(['retention', 'plan', MANDATE, '--target', target, '--json']);
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as RetentionPlan;
}

const names = (p: RetentionPlan, action: 'keep' | 'remove'): string[] =>
  (p.targets[0]?.backups ?? []).filter((b) => b.action === action).map((b) => b.name).sort();

describe('GFS retention', () => {
  it('plans without deleting, then deletes exactly the planned backups after the next backup', async () => {
    // Both real backups must fall on the same UTC day (the daily buckets): not in the last two minutes before midnight.
    const toMidnight = 86_400_000 - (Date.now() % 86_400_000);
    if (toMidnight < 120_000) await new Promise((r) => setTimeout(r, toMidnight + 1000));
    const first = await backupOnce();
    const listed = JSON.parse((await run(['backups', 'list', '--mandate', MANDATE, '--target', 'local', '--json'])).stdout) as { backups: Manifest[] };
    const real = listed.backups[0];
    if (real === undefined) throw new Error('no backup after backup --once');
    const day = (back: number, hour: number): string => new Date(Date.parse(real.created_at) - back * 86_400_000).toISOString().slice(0, 11) + `${String(hour).padStart(2, '0')}:00:00.000Z`;
    await cloneBackup(real, 'old-1a', day(1, 10));
    await cloneBackup(real, 'old-1b', day(1, 11));
    await cloneBackup(real, 'old-2', day(2, 9));
    await cloneBackup(real, 'old-10', day(10, 9));

    const before = await plan('local');
    expect(before.rules).toEqual({ keep_last: 2, keep_daily: 2 });
    expect(names(before, 'keep')).toEqual([first.name, 'old-1b'].sort());
    expect(names(before, 'remove')).toEqual(['old-10', 'old-1a', 'old-2']);
    const reasons = Object.fromEntries((before.targets[0]?.backups ?? []).map((b) => [b.name, b.reasons]));
    expect(reasons['old-1b']).toEqual(['last 2', `daily ${day(1, 0).slice(0, 10)}`]);
    expect(reasons['old-2']).toEqual(['no rule keeps it']);
    // The text form, and nothing was deleted.
    const text = await run(['retention', 'plan', MANDATE]);
    expect(text.stdout).toMatch(/keep_last=2 keep_daily=2/);
    expect(text.stdout).toMatch(/old-2 .* remove .*no rule keeps it/);
    expect((await plan('local')).targets[0]?.backups).toHaveLength(5);

    const second = await backupOnce();
    const local = second.targets.find((t) => t.target === 'local');
    expect(local?.retention_error).toBeNull();
    expect([...(local?.retention_deleted ?? [])].sort()).toEqual(names(before, 'remove'));
    expect(second.targets.find((t) => t.target === 's3')?.retention_deleted).toEqual([]);
    const after = await plan('local');
    expect(names(after, 'keep')).toEqual([second.name, first.name, 'old-1b'].sort());
    expect(names(after, 'remove')).toEqual([]);
    // The newest is never deleted; S3 keeps both real backups.
    expect(names(await plan('s3'), 'keep')).toEqual([second.name, first.name].sort());
  });

  it('answers the same plan over the API of a running daemon, and skips a mandate with a bad retention label', async () => {
    const daemon = spawnDaemon(env.configPath, { env: { GFS_FILES_DIR: filesDir } });
    const socket = join(env.dir, 'data', 'backer.sock');
    try {
      await waitForHealth(daemon, socket);
      const api = await callApi<RetentionPlan>(socket, 'GET', `/v1/mandates/${MANDATE}/retention?target=local`);
      expect(api).toEqual(await plan('local'));
      const listed = await callApi<{ problems: ConfigProblem[] }>(socket, 'GET', '/v1/mandates');
      expect(listed.problems.filter((p) => p.where.includes(BAD_CONTAINER))).toEqual([
        { where: `container ${BAD_CONTAINER} label backer.retention.keep_weekly`, message: 'expected a whole number of buckets to keep (0 or more), received "-2"' },
        // The shared duration parser's message (months are no unit), with a hint for this key.
        {
          where: `container ${BAD_CONTAINER} label backer.retention.keep_within`,
          message: 'expected a duration like 30s, 5m, 26h or 7d, got "6mo"; months and years are not units: write days (180d, 365d)',
        },
      ]);
      const unknown = await callApi(socket, 'GET', `/v1/mandates/${BAD_CONTAINER}/retention`).then(() => 'answered', (err: Error) => err.message);
      expect(unknown).toMatch(/skipped: container retention-gfs-bad label backer\.retention\.keep_weekly/);
      expect((await callApi<{ status: string }>(socket, 'GET', '/v1/health')).status).toBe('ok');
    } finally {
      expect(await daemon.stop()).toBe(0);
    }
  });

  it('reports a failed deletion in the result of a running daemon\'s job, deletes the rest and keeps answering', async () => {
    const root = join(env.dir, 'backups');
    const listed = JSON.parse((await run(['backups', 'list', '--mandate', MANDATE, '--target', 'local', '--json'])).stdout) as { backups: Manifest[] };
    const real = listed.backups[0];
    if (real === undefined) throw new Error('no backup to copy');
    // An expired backup whose artifact lies in a read-only directory: without CAP_DAC_OVERRIDE it cannot be removed.
    const locked = join(root, MANDATE, 'old-locked');
    await mkdir(locked);
    await cloneBackup(real, 'old-locked', new Date(Date.parse(real.created_at) - 20 * 86_400_000).toISOString(), `${MANDATE}/old-locked/artifact`);
    await chmod(locked, 0o555);
    const daemon = spawnCli(['daemon', '--config', env.configPath], { GFS_FILES_DIR: filesDir }, ['setpriv', '--bounding-set', '-dac_override,-dac_read_search', '--']);
    const socket = join(env.dir, 'data', 'backer.sock');
    try {
      await waitForHealth({ ...daemon, stop: () => Promise.resolve(null) }, socket);
      const r = await run(['backup', MANDATE, '--wait', '--json']);
      const job = JSON.parse(r.stdout) as { state: string; result: BackupResult };
      expect(job.state, r.stdout).toBe('succeeded');
      const local = job.result.targets.find((t) => t.target === 'local');
      expect(local?.retention_error).toMatch(/^retention could not delete everything .*old-locked: .*could not remove "gfs-files\/old-locked\/artifact/);
      expect(local?.retention_deleted).not.toContain('old-locked');
      expect(daemon.output()).toContain('retention could not delete backup');
      expect((await callApi<{ status: string }>(socket, 'GET', '/v1/health')).status).toBe('ok');
      // The manifest went first: the half-deleted backup is no backup any more.
      expect(names(await plan('local'), 'keep')).not.toContain('old-locked');
    } finally {
      await chmod(locked, 0o755);
      daemon.child.kill('SIGTERM');
      await new Promise((resolve) => daemon.child.once('close', resolve));
    }
  });

  it('refuses an empty policy or a bad keep_within in the config, naming the key', async () => {
    const bad = `${(await readFile(env.configPath, 'utf8')).replace('keep_last: 2\n      keep_daily: 2', 'keep_last: 0\n      keep_daily: 0')}`;
    const badPath = join(env.dir, 'bad.yml');
    await writeFile(badPath, bad.replace(`path: \${GFS_FILES_DIR}`, 'path: /tmp'));
    const checked = await cli(['config', 'check', '--json', '--config', badPath]);
    const problems = (JSON.parse(checked.stdout) as { problems: ConfigProblem[] }).problems.filter((p) => p.where.includes(badPath));
    expect(problems).toEqual([
      {
        where: `${badPath}: mandates.${MANDATE}.retention.keep_last`,
        message: 'empty retention policy: retention.keep_last, retention.keep_daily are all 0, so nothing would be kept; set at least one retention.keep_* above 0 (e.g. retention.keep_daily: 7)',
      },
    ]);
    const once = await cli(['backup', MANDATE, '--once', '--config', badPath]);
    expect(once.code).toBe(2);
    expect(once.stdout + once.stderr).toContain(`mandates.${MANDATE}.retention.keep_last: empty retention policy`);
    const daemon = await cli(['daemon', '--config', badPath]);
    expect(daemon.code).toBe(2);
    expect(daemon.stdout + daemon.stderr).toContain(`mandates.${MANDATE}.retention.keep_last: empty retention policy`);
    // keep_within is a duration as everywhere else: `1y` is refused at its key, by config check and the daemon alike.
    const yearsPath = join(env.dir, 'years.yml');
    await writeFile(yearsPath, bad.replace('keep_last: 0\n      keep_daily: 0', 'keep_within: 1y').replace(`path: \${GFS_FILES_DIR}`, 'path: /tmp'));
    const years = `${yearsPath}: mandates.${MANDATE}.retention.keep_within: expected a duration like 30s, 5m, 26h or 7d, got "1y"; months and years are not units: write days (180d, 365d)`;
    const yearsChecked = await cli(['config', 'check', '--json', '--config', yearsPath]);
    expect((JSON.parse(yearsChecked.stdout) as { problems: ConfigProblem[] }).problems.filter((p) => p.where.includes(yearsPath)).map((p) => `${p.where}: ${p.message}`)).toEqual([years]);
    const yearsDaemon = await cli(['daemon', '--config', yearsPath]);
    expect(yearsDaemon.code).toBe(2);
    expect(yearsDaemon.stdout + yearsDaemon.stderr).toContain(years);
    const missing = await run(['retention', 'plan', 'no-such-mandate']);
    expect(missing.code).not.toBe(0);
    expect(missing.stdout + missing.stderr).toMatch(/no mandate named no-such-mandate/);
  });
});
