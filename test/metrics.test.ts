/**
 * Prometheus metrics of a real `backer daemon` process: files mandates that succeed, fail, and
 * whose backup fails verification, a labelled container skipped for a bad label, an S3 target
 * whose bucket is gone. Scraped over the socket (`GET /metrics`) and over `metrics.listen`,
 * checked by `promtool check metrics`, scraped by a real Prometheus that evaluates
 * examples/prometheus/alerts.yml, and scraped again after a restart.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, open, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { callApi } from '../src/cli/client.js';
import type { AnyJob } from '../src/queue/types.js';
import type { BackupResult } from '../src/pipeline/run-backup.js';
import { cli, type CliResult } from './helpers/cli.js';
import { spawnDaemon, waitForHealth, type DaemonProcess } from './helpers/daemon-proc.js';
import { createTestEnv, type TestEnv } from './helpers/env.js';
import { eventually, freePort, httpText, metricNames, parseMetrics, runWithInput, startPrometheus, valueOf, type Sample } from './helpers/metrics.js';
import { readme } from './helpers/readme.js';
import { docker, HOST_IMAGE } from './setup/services.js';

const ID = randomBytes(3).toString('hex');
const GOOD = `mx-good-${ID}`;
const BAD = `mx-bad-${ID}`;
const ROT = `mx-rot-${ID}`;
const SKIPPED = `mx-skip-${ID}`;
const GONE = 'gone';
const DAY_S = 86_400;
const ALERTS = new URL('../examples/prometheus/alerts.yml', import.meta.url).pathname;

let env: TestEnv;
let daemon: DaemonProcess;
let socket: string;
let port: number;
let apiPort: number;
let tokenDir: string;
let tokenFile: string;
const READ_TOKEN = randomBytes(24).toString('hex');
const dirs: Record<string, string> = {};
let good: AnyJob;
let bad: AnyJob;

const run = (args: string[]): Promise<CliResult> => cli([...args, '--config', env.configPath], dirs);
const mandateYaml = (name: string, pathVar: string): string =>
  `  ${name}:\n    type: files\n    interval: "0 3 * * *"\n    target: local\n    middleware: compression\n    files:\n      path: \${${pathVar}}\n`;

async function scrape(): Promise<{ text: string; samples: Sample[] }> {
  const res = await httpText({ port }, '/metrics');
  expect(res.status, res.body).toBe(200);
  return { text: res.body, samples: parseMetrics(res.body) };
}

async function stillAnswers(): Promise<void> {
  expect((await callApi<{ status: string }>(socket, 'GET', '/v1/health')).status).toBe('ok');
  const list = await run(['mandates', 'list']);
  expect(list.code, list.stderr).toBe(0);
  expect(list.stdout).toContain(GOOD);
}

/** What the local target holds, read from the disk: manifests, and the bytes of the artifacts they name. */
async function localContents(): Promise<{ backups: number; bytes: number }> {
  const root = join(env.dir, 'backups');
  let backups = 0;
  let bytes = 0;
  for (const entry of await readdir(root, { recursive: true })) {
    if (!entry.endsWith('.manifest.json')) continue;
    const manifest = JSON.parse(await readFile(join(root, entry), 'utf8')) as { artifact: { key: string } };
    backups += 1;
    bytes += (await stat(join(root, manifest.artifact.key))).size;
  }
  return { backups, bytes };
}

async function backup(mandate: string, expectCode: number): Promise<AnyJob> {
  const r = await run(['backup', mandate, '--wait', '--json']);
  expect(r.code, r.stdout + r.stderr).toBe(expectCode);
  return JSON.parse(r.stdout) as AnyJob;
}

/** ROT's backup, then one byte of its artifact flipped (same size): its verification fails. */
async function rotAndVerify(): Promise<void> {
  const job = await backup(ROT, 0);
  const key = (job.result as BackupResult).targets[0]?.artifact_key ?? '';
  const file = await open(join(env.dir, 'backups', key), 'r+');
  const byte = Buffer.alloc(1);
  await file.read(byte, 0, 1, 100);
  byte[0] = (byte[0] ?? 0) ^ 0xff;
  await file.write(byte, 0, 1, 100);
  await file.close();
  const failed = await run(['verify', ROT, 'latest', '--level', 'hash', '--json']);
  expect(failed.code, failed.stdout + failed.stderr).not.toBe(0);
  const passed = await run(['verify', GOOD, 'latest', '--level', 'hash', '--json']);
  expect(passed.code, passed.stdout + passed.stderr).toBe(0);
}

/** GOOD restored into a new directory; ROT's restore fails on its flipped byte. */
async function restores(): Promise<void> {
  const to = join(tmpdir(), `mx-restored-${ID}`);
  dirs.MX_RESTORED = to;
  const ok = await run(['restore', GOOD, '--to', `file:${to}`, '--wait']);
  expect(ok.code, ok.stdout + ok.stderr).toBe(0);
  const failed = await run(['restore', ROT, '--to', `file:${to}-rot`, '--wait']);
  expect(failed.code, failed.stdout + failed.stderr).toBe(5);
  // A hash mismatch, or gzip refusing the flipped byte first: either way nothing is restored.
  expect(failed.stdout + failed.stderr).toMatch(new RegExp(`restore job \\S+: failed: backup \\S+-${ROT} on local .*, nothing was restored`));
}

beforeAll(async () => {
  const goodDir = await mkdtemp(join(tmpdir(), 'mx-good-'));
  await mkdir(join(goodDir, 'sub'));
  await writeFile(join(goodDir, 'a.txt'), 'alpha\n'.repeat(5000));
  await writeFile(join(goodDir, 'sub', 'b.bin'), randomBytes(64 * 1024));
  Object.assign(dirs, { MX_GOOD_DIR: goodDir, MX_BAD_DIR: join(tmpdir(), `mx-missing-${ID}`), MX_ROT_DIR: goodDir });
  await docker(inject('dockerHost'), [
    'create', '--name', SKIPPED, '--network', 'none',
    '--label', 'backer.enabled=true', '--label', 'backer.type=volume', '--label', 'backer.interval=sometimes',
    HOST_IMAGE, 'sleep', 'infinity',
  ]);
  port = await freePort();
  apiPort = await freePort();
  tokenDir = await mkdtemp(join(tmpdir(), 'mx-token-'));
  tokenFile = join(tokenDir, 'read-token');
  await writeFile(tokenFile, `${READ_TOKEN}\n`, { mode: 0o600 });
  const api = `api:\n  listen: 127.0.0.1:${apiPort}\n  tokens:\n    - name: prometheus\n      token_file: ${tokenFile}\n      scope: read\n`;
  const s3 = inject('s3');
  const gone = `  - name: ${GONE}\n    type: s3\n    bucket: mx-gone-${ID}\n    endpoint: ${s3.endpoint}\n    region: ${s3.region}\n    force_path_style: true\n    access_key_id: ${s3.accessKeyId}\n    secret_access_key: \${TEST_S3_SECRET}\n`;
  const mandates = [mandateYaml(GOOD, 'MX_GOOD_DIR'), mandateYaml(BAD, 'MX_BAD_DIR'), mandateYaml(ROT, 'MX_ROT_DIR')].join('');
  env = await createTestEnv('metrics', `${api}schedule:\n  catch_up: skip\nmetrics:\n  listen: 127.0.0.1:${port}\nmandates:\n${mandates}`, gone);
  socket = join(env.dir, 'data', 'backer.sock');
  daemon = spawnDaemon(env.configPath, { env: dirs });
  await waitForHealth(daemon, socket, 60_000);
  good = await backup(GOOD, 0);
  bad = await backup(BAD, 1);
  await rotAndVerify();
  await restores();
}, 240_000);

afterAll(async () => {
  await daemon.stop();
  if (process.env.BACKER_TEST_DAEMON_LOG) await writeFile(process.env.BACKER_TEST_DAEMON_LOG, daemon.output());
  await docker(inject('dockerHost'), ['rm', '-f', SKIPPED]).catch(() => undefined);
  await rm(dirs.MX_GOOD_DIR ?? '', { recursive: true, force: true });
  for (const d of [dirs.MX_RESTORED, `${dirs.MX_RESTORED}-rot`]) if (d !== undefined) await rm(d, { recursive: true, force: true });
  await rm(tokenDir, { recursive: true, force: true });
});

describe('GET /metrics', () => {
  it('answers the same metrics over the socket (read scope) and over metrics.listen, in the text format promtool accepts', async () => {
    const viaSocket = await httpText({ socketPath: socket }, '/metrics');
    const viaListen = await httpText({ port }, '/metrics');
    for (const res of [viaSocket, viaListen]) {
      expect(res.status, res.body).toBe(200);
      expect(res.type).toBe('text/plain; version=0.0.4; charset=utf-8');
      const check = await runWithInput('promtool', ['check', 'metrics'], res.body);
      expect(check, check.out).toEqual({ code: 0, out: '' });
    }
    expect(metricNames(viaSocket.body).sort()).toEqual(metricNames(viaListen.body).sort());
    await stillAnswers();
  });

  it('answers over TCP with a read token only (401 without one or with a wrong one)', async () => {
    const [none, wrong, read] = await Promise.all([
      httpText({ port: apiPort }, '/metrics'),
      httpText({ port: apiPort }, '/metrics', 'GET', { authorization: `Bearer ${'0'.repeat(48)}` }),
      httpText({ port: apiPort }, '/metrics', 'GET', { authorization: `Bearer ${READ_TOKEN}` }),
    ]);
    expect(none.status).toBe(401);
    expect(wrong.status).toBe(401);
    expect(JSON.parse(none.body)).toMatchObject({ error: { code: 'API_UNAUTHORIZED' } });
    expect(read.status, read.body).toBe(200);
    expect(read.type).toBe('text/plain; version=0.0.4; charset=utf-8');
    expect(valueOf(parseMetrics(read.body), 'backer_backup_ever_succeeded', { mandate: GOOD })).toBe(1);
    expect(read.body).not.toContain(READ_TOKEN);
    await stillAnswers();
  });

  it('has the last success near now for a good mandate, ever_succeeded 0 for the failing one', async () => {
    const { samples } = await scrape();
    const now = Date.now() / 1000;
    expect(valueOf(samples, 'backer_backup_ever_succeeded', { mandate: GOOD })).toBe(1);
    expect(valueOf(samples, 'backer_backup_ever_succeeded', { mandate: BAD })).toBe(0);
    expect(valueOf(samples, 'backer_backup_ever_succeeded', { mandate: SKIPPED })).toBe(0);
    expect(valueOf(samples, 'backer_backup_last_success_timestamp_seconds', { mandate: GOOD })).toBe(Date.parse(good.finished_at ?? '') / 1000);
    expect(now - (valueOf(samples, 'backer_backup_last_success_timestamp_seconds', { mandate: GOOD }) ?? 0)).toBeLessThan(180);
    expect(valueOf(samples, 'backer_backup_last_success_timestamp_seconds', { mandate: BAD })).toBeUndefined();
    expect(valueOf(samples, 'backer_backup_last_attempt_timestamp_seconds', { mandate: BAD })).toBe(Date.parse(bad.finished_at ?? '') / 1000);
    expect(valueOf(samples, 'backer_backup_last_failure_timestamp_seconds', { mandate: BAD })).toBe(Date.parse(bad.finished_at ?? '') / 1000);
    expect(valueOf(samples, 'backer_backup_expected_interval_seconds', { mandate: GOOD })).toBe(DAY_S);
    expect(valueOf(samples, 'backer_backup_max_age_seconds', { mandate: GOOD })).toBe(1.5 * DAY_S);
  });

  it('has the sizes of the job result and the counts and bytes of what the targets hold', async () => {
    const { samples } = await scrape();
    const result = good.result as BackupResult;
    expect(valueOf(samples, 'backer_backup_size_bytes', { mandate: GOOD, kind: 'raw' })).toBe(result.raw_size);
    expect(valueOf(samples, 'backer_backup_size_bytes', { mandate: GOOD, kind: 'stored' })).toBe(result.targets[0]?.size);
    const local = await localContents();
    expect(local.backups).toBe(2);
    expect(valueOf(samples, 'backer_backups_stored', { target: 'local' })).toBe(local.backups);
    expect(valueOf(samples, 'backer_target_bytes', { target: 'local' })).toBe(local.bytes);
    expect(valueOf(samples, 'backer_target_healthy', { target: 'local' })).toBe(1);
    expect(valueOf(samples, 'backer_backups_stored', { target: 's3' })).toBe(0);
    expect(valueOf(samples, 'backer_target_healthy', { target: 's3' })).toBe(1);
  });

  it('counts jobs, results and waits from the job events', async () => {
    const { samples } = await scrape();
    expect(valueOf(samples, 'backer_backups_total', { mandate: GOOD, result: 'succeeded' })).toBe(1);
    expect(valueOf(samples, 'backer_backups_total', { mandate: GOOD, result: 'failed' })).toBe(0);
    expect(valueOf(samples, 'backer_backups_total', { mandate: BAD, result: 'failed' })).toBe(1);
    expect(valueOf(samples, 'backer_backup_duration_seconds_count', { mandate: GOOD })).toBe(1);
    expect(valueOf(samples, 'backer_backup_duration_seconds_bucket', { mandate: GOOD, le: '+Inf' })).toBe(1);
    expect(valueOf(samples, 'backer_restore_total', { mandate: GOOD, result: 'succeeded' })).toBe(1);
    expect(valueOf(samples, 'backer_restore_total', { mandate: ROT, result: 'failed' })).toBe(1);
    // Three backups, two verifications and two restores started, each once.
    expect(valueOf(samples, 'backer_job_wait_seconds_count', { kind: 'backup' })).toBe(3);
    expect(valueOf(samples, 'backer_job_wait_seconds_count', { kind: 'verify' })).toBe(2);
    expect(valueOf(samples, 'backer_job_wait_seconds_count', { kind: 'restore' })).toBe(2);
    for (const state of ['queued', 'running', 'retrying']) expect(valueOf(samples, 'backer_queue_jobs', { state })).toBe(0);
  });

  it('has the verification results, each mandate status, the problems of a skipped mandate, readiness and version', async () => {
    const { samples, text } = await scrape();
    expect(valueOf(samples, 'backer_verify_last_result', { mandate: GOOD })).toBe(1);
    expect(valueOf(samples, 'backer_verify_last_result', { mandate: ROT })).toBe(0);
    expect(Date.now() / 1000 - (valueOf(samples, 'backer_verify_last_success_timestamp_seconds', { mandate: GOOD }) ?? 0)).toBeLessThan(180);
    expect(valueOf(samples, 'backer_verify_last_success_timestamp_seconds', { mandate: ROT })).toBeUndefined();
    const statuses = (mandate: string): string[] => samples.filter((s) => s.name === 'backer_mandate_status' && s.labels.mandate === mandate && s.value === 1).map((s) => s.labels.status ?? '');
    expect(statuses(GOOD)).toEqual(['ok']);
    expect(statuses(BAD)).toEqual(['failing']);
    expect(statuses(SKIPPED)).toEqual(['skipped']);
    expect(samples.filter((s) => s.name === 'backer_mandate_status' && s.labels.mandate === GOOD)).toHaveLength(5);
    expect(valueOf(samples, 'backer_mandate_problems', { mandate: SKIPPED })).toBe(1);
    expect(valueOf(samples, 'backer_mandate_problems', { mandate: GOOD })).toBe(0);
    expect(valueOf(samples, 'backer_ready')).toBe(1);
    expect(samples.find((s) => s.name === 'backer_info')?.labels.version).toMatch(/^\d+\.\d+\.\d+/);
    expect(text).toMatch(/^process_cpu_seconds_total \d/m);
    expect(text).toMatch(/^nodejs_heap_size_used_bytes \d/m);
  });

  it('reports a target that cannot be listed as unhealthy, and the daemon still answers', async () => {
    const { samples } = await scrape();
    expect(valueOf(samples, 'backer_target_healthy', { target: GONE })).toBe(0);
    // Never listed: no figures rather than zeros that look real.
    expect(valueOf(samples, 'backer_backups_stored', { target: GONE })).toBeUndefined();
    expect(valueOf(samples, 'backer_target_bytes', { target: GONE })).toBeUndefined();
    await stillAnswers();
  });

  it('metrics.listen serves GET /metrics only', async () => {
    const [other, post] = await Promise.all([httpText({ port }, '/v1/health'), httpText({ port }, '/metrics', 'POST')]);
    expect(other.status).toBe(404);
    expect(post.status).toBe(405);
    await stillAnswers();
  });

  it('lists every metric it exports in the README', async () => {
    const { text } = await scrape();
    const section = readme.slice(readme.indexOf('### Metrics'), readme.indexOf('### Notifications'));
    const names = metricNames(text).filter((n) => n.startsWith('backer_'));
    expect(names.length).toBeGreaterThanOrEqual(20);
    for (const name of names) expect(section, name).toContain(`\`${name}\``);
    expect(section).toContain('`process_*`');
    expect(section).toContain('`nodejs_*`');
  });
});

describe('a real Prometheus', () => {
  it('scrapes metrics.listen and fires the example alerts for the failing mandate and the failed verification', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'mx-prom-'));
    const config = join(dir, 'prometheus.yml');
    await writeFile(config, [
      'global:', '  scrape_interval: 1s', '  evaluation_interval: 1s',
      'rule_files:', `  - ${ALERTS}`,
      'scrape_configs:', '  - job_name: backer', '    static_configs:', `      - targets: ["127.0.0.1:${port}"]`,
      // The API's GET /metrics with the read token from a file, as examples/prometheus/prometheus.yml shows.
      '  - job_name: backer-api', '    authorization:', '      type: Bearer', `      credentials_file: ${tokenFile}`,
      '    static_configs:', `      - targets: ["127.0.0.1:${apiPort}"]`, '',
    ].join('\n'));
    const prometheus = await startPrometheus(config, join(dir, 'data'));
    try {
      const ever = await eventually<{ metric: Record<string, string>; value: number }[]>(async () => {
        const series = await prometheus.query(`backer_backup_ever_succeeded{job="backer",mandate=~"mx-.*-${ID}"}`);
        return series.length === 4 ? series : undefined;
      }, 'backer_backup_ever_succeeded in Prometheus');
      const byMandate = Object.fromEntries(ever.map((s) => [s.metric.mandate ?? '', s.value] as const));
      expect(byMandate).toEqual({ [GOOD]: 1, [BAD]: 0, [ROT]: 1, [SKIPPED]: 0 });
      expect(ever[0]?.metric).toMatchObject({ job: 'backer', instance: `127.0.0.1:${port}` });
      const firing = await eventually<string[]>(async () => {
        const alerts = (await prometheus.alerts()).filter((a) => a.state === 'firing').map((a) => `${a.labels.alertname}:${a.labels.mandate}`);
        return alerts.includes(`BackerBackupFailed:${BAD}`) && alerts.includes(`BackerVerificationFailing:${ROT}`) ? alerts : undefined;
      }, 'the example alerts to fire');
      expect(firing).not.toContain(`BackerBackupFailed:${GOOD}`);
      expect(firing).not.toContain(`BackerBackupStale:${GOOD}`);
      expect((await prometheus.query('up{job="backer"}'))[0]?.value).toBe(1);
      const viaApi = await eventually(async () => {
        const series = await prometheus.query(`backer_backup_ever_succeeded{job="backer-api",mandate="${GOOD}"}`);
        return series.length === 1 ? series : undefined;
      }, 'the scrape of the API with the read token');
      expect(viaApi[0]?.value).toBe(1);
      expect((await prometheus.query('up{job="backer-api"}'))[0]?.value).toBe(1);
    } finally {
      await prometheus.stop();
      await rm(dir, { recursive: true, force: true });
    }
  }, 90_000);
});

describe('after a restart', () => {
  it('still has the last success, ever_succeeded and sizes (from the persisted stats)', async () => {
    const before = (await scrape()).samples;
    expect(await daemon.stop()).toBe(0);
    daemon = spawnDaemon(env.configPath, { env: dirs });
    await waitForHealth(daemon, socket, 60_000);
    const after = (await scrape()).samples;
    for (const name of ['backer_backup_last_success_timestamp_seconds', 'backer_backup_ever_succeeded', 'backer_backup_last_attempt_timestamp_seconds']) {
      for (const mandate of [GOOD, BAD, ROT]) expect(valueOf(after, name, { mandate }), `${name} ${mandate}`).toBe(valueOf(before, name, { mandate }));
    }
    expect(valueOf(after, 'backer_backup_ever_succeeded', { mandate: GOOD })).toBe(1);
    expect(valueOf(after, 'backer_backup_size_bytes', { mandate: GOOD, kind: 'raw' })).toBe((good.result as BackupResult).raw_size);
    expect(valueOf(after, 'backer_verify_last_result', { mandate: ROT })).toBe(0);
    // Counters start again from 0 in a new process (Prometheus handles counter resets).
    expect(valueOf(after, 'backer_backups_total', { mandate: GOOD, result: 'succeeded' })).toBe(0);
    await stillAnswers();
  }, 90_000);
});
