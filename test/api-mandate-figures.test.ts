/**
 * The mandate screen's and the overview's API figures (issue 12), against a real `backer daemon`
 * process on the private Docker engine: `settings_sources` of GET /v1/mandates/{name} (a labelled
 * container, a static mandate over a labelled container, a files mandate), `recent_sizes` and
 * `last_backup` of GET /v1/mandates after real backups. The stores' `recentBackups` (one query for
 * every mandate, issue 11) is checked against both job stores with the same jobs.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { callApi } from '../src/cli/client.js';
import { settingsSources } from '../src/mandates/provenance.js';
import { createMemoryJobStore } from '../src/queue/memory-store.js';
import type { AnyJob, JobStore } from '../src/queue/types.js';
import { openStateDb } from '../src/state/db.js';
import { createSqliteJobStore } from '../src/state/job-store.js';
import { spawnDaemon, waitForHealth, type DaemonProcess } from './helpers/daemon-proc.js';
import { createTestEnv, filesMandateYaml, type TestEnv } from './helpers/env.js';
import { until } from './helpers/poll.js';
import { startSqliteApp } from './helpers/sqlite.js';
import { docker } from './setup/services.js';
import { finished, makeJob } from './state/store-suite.js';

const ID = randomBytes(3).toString('hex');
const LABELLED = `mfig-lab-${ID}`;
const OVERLAID = `mfig-ovl-${ID}`;
const STATIC = `mfig-static-${ID}`;
const FILES = `mfig-files-${ID}`;

let env: TestEnv;
let daemon: DaemonProcess;
let socket: string;
let dir: string;

interface Summary {
  name: string;
  last_backup: { name: string; created_at: string; raw_bytes: number | null; stored_bytes: number | null } | null;
  recent_sizes: number[];
}

beforeAll(async () => {
  const sqliteLabels = { 'backer.type': 'sqlite', 'backer.sqlite.path': '/data/app.db' };
  await startSqliteApp(LABELLED, { ...sqliteLabels, 'backer.enabled': 'true', 'backer.interval': '0 4 * * *', 'backer.retention.keep_daily': '7', 'backer.target': 'local' });
  // Not enabled by label: only the static mandate below backs it up, with its labels overlaid.
  await startSqliteApp(OVERLAID, { ...sqliteLabels, 'backer.priority': 'high' });
  dir = await mkdtemp(join(tmpdir(), 'mfig-files-'));
  const staticYaml = `  ${STATIC}:\n    container: ${OVERLAID}\n    interval: "0 0 29 2 *"\n    target: local\n    middleware: compression\n`;
  env = await createTestEnv('mfig', `mandates:\n${staticYaml}${filesMandateYaml(FILES, 'MFIG_DIR', { target: 'local', middleware: 'compression' })}`);
  socket = join(env.dir, 'data', 'backer.sock');
  daemon = spawnDaemon(env.configPath, { env: { MFIG_DIR: dir } });
  await waitForHealth(daemon, socket, 60_000);
}, 120_000);

afterAll(async () => {
  await daemon?.stop();
  await docker(inject('dockerHost'), ['rm', '-f', LABELLED, OVERLAID]).catch(() => undefined);
});

const sourcesOf = async (name: string): Promise<Record<string, unknown>> =>
  (await callApi<{ settings_sources: Record<string, unknown> }>(socket, 'GET', `/v1/mandates/${name}`)).settings_sources;

describe('GET /v1/mandates/{name} settings_sources', () => {
  it('names the label of a labelled container’s settings, and default for the rest', async () => {
    await until(() => callApi<{ mandates: Summary[] }>(socket, 'GET', '/v1/mandates'), (l) => l.mandates.some((m) => m.name === LABELLED), 'labelled mandate discovered', 30_000);
    const sources = await sourcesOf(LABELLED);
    expect(sources).toMatchObject({
      type: { from: 'label', label: 'backer.type' },
      container: { from: 'label', label: 'backer.enabled' },
      interval: { from: 'label', label: 'backer.interval' },
      targets: { from: 'label', label: 'backer.target' },
      retention: { from: 'label', label: 'backer.retention.keep_daily' },
      middleware: { from: 'default' },
      priority: { from: 'default' },
      verify: { from: 'default' },
      max_age: { from: 'default' },
    });
  });

  it('names the config path of a static mandate’s keys and the label of the keys its container adds', async () => {
    expect(await sourcesOf(STATIC)).toMatchObject({
      type: { from: 'label', label: 'backer.type' },
      container: { from: 'config', path: `mandates.${STATIC}.container` },
      interval: { from: 'config', path: `mandates.${STATIC}.interval` },
      targets: { from: 'config', path: `mandates.${STATIC}.target` },
      middleware: { from: 'config', path: `mandates.${STATIC}.middleware` },
      priority: { from: 'label', label: 'backer.priority' },
      retention: { from: 'default' },
    });
    expect(await sourcesOf(FILES)).toMatchObject({ type: { from: 'config', path: `mandates.${FILES}.type` }, container: { from: 'default' }, retention: { from: 'default' } });
  });
});

describe('GET /v1/mandates recent_sizes and last_backup', () => {
  it('gives the raw sizes of the succeeded backups oldest first, and the newest as last_backup', async () => {
    const before = (await callApi<{ mandates: Summary[] }>(socket, 'GET', '/v1/mandates')).mandates.find((m) => m.name === FILES);
    expect(before).toMatchObject({ last_backup: null, recent_sizes: [] });
    const jobs: AnyJob[] = [];
    for (const size of [1000, 30_000, 90_000]) {
      await writeFile(join(dir, 'data.bin'), randomBytes(size));
      const { job } = await callApi<{ job: AnyJob }>(socket, 'POST', `/v1/mandates/${FILES}/backups`);
      jobs.push((await callApi<{ job: AnyJob }>(socket, 'GET', `/v1/jobs/${job.id}?wait=60`)).job);
    }
    expect(jobs.map((j) => j.state)).toEqual(['succeeded', 'succeeded', 'succeeded']);
    const raw = jobs.map((j) => (j.result as { raw_size: number }).raw_size);
    expect(raw[0]).toBeLessThan(raw[1] ?? 0);
    expect(raw[1]).toBeLessThan(raw[2] ?? 0);
    const list = await callApi<{ mandates: Summary[]; skipped: Summary[] }>(socket, 'GET', '/v1/mandates');
    const files = list.mandates.find((m) => m.name === FILES);
    const newest = jobs[2]?.result as { name: string; targets: { size: number | null }[] };
    expect(files?.recent_sizes).toEqual(raw);
    expect(files?.last_backup).toEqual({ name: newest.name, created_at: jobs[2]?.started_at, raw_bytes: raw[2], stored_bytes: newest.targets[0]?.size });
    for (const m of [...list.mandates, ...list.skipped]) expect(Array.isArray(m.recent_sizes)).toBe(true);
  }, 120_000);
});

/** A finished job with a result of the given shape (as the pipeline stores it). */
const withResult = (job: AnyJob, result: Record<string, unknown>): AnyJob => ({ ...job, result }) as unknown as AnyJob;

/** Succeeded, failed and verify jobs of two mandates, saved in creation order. */
function history(): AnyJob[] {
  const jobs: AnyJob[] = [];
  for (let i = 0; i < 35; i++) {
    const at = new Date(Date.UTC(2026, 0, 1, 0, i)).toISOString();
    const job = finished(makeJob({ mandate: 'alpha', created_at: at }), i === 7 ? 'failed' : 'succeeded', at, 1000);
    jobs.push(job.state === 'succeeded' ? withResult(job, { name: `alpha-${i}`, raw_size: 100 + i, targets: [{ status: 'succeeded', size: 50 + i }] }) : job);
  }
  const at = '2026-01-02T00:00:00.000Z';
  jobs.push(withResult(finished(makeJob({ mandate: 'beta', created_at: at }), 'succeeded', at, 1000), { name: 'beta-0', targets: [{ status: 'failed', size: null }, { status: 'succeeded', size: 9 }] }));
  jobs.push(withResult(finished(makeJob({ mandate: 'beta', kind: 'verify', created_at: '2026-01-03T00:00:00.000Z' }), 'succeeded', at, 1000), { kind: 'verify', checked: 1 }));
  return jobs;
}

describe('JobStore.recentBackups (both stores, one query for every mandate)', () => {
  const stores: [string, () => { store: JobStore; close: () => void }][] = [
    ['memory', () => ({ store: createMemoryJobStore(), close: () => undefined })],
    [
      'sqlite',
      () => {
        const state = openStateDb(mkdtempSync(join(tmpdir(), 'mfig-store-')), pino({ level: 'silent' }));
        return { store: createSqliteJobStore(state), close: () => state.close() };
      },
    ],
  ];
  it.each(stores)('%s: per named mandate the newest succeeded backup and the raw sizes of the newest N, newest first', (_name, open) => {
    const { store, close } = open();
    for (const job of history()) store.save(job);
    const [alpha, beta, gamma] = store.recentBackups(['alpha', 'beta', 'gamma', 'alpha'], 30);
    expect(alpha).toEqual({
      mandate: 'alpha',
      newest: { name: 'alpha-34', created_at: '2026-01-01T00:34:00.000Z', started_at: '2026-01-01T00:34:00.000Z', raw_bytes: 134, stored_bytes: 84 },
      // Newest first, the failed job (107) left out, 30 of them.
      raw_sizes: Array.from({ length: 35 }, (_, i) => 134 - i).filter((n) => n !== 107).slice(0, 30),
    });
    // A result without raw_size is no backup result: no name; its stored size is the first succeeded target's.
    expect(beta).toEqual({ mandate: 'beta', newest: { name: null, created_at: '2026-01-02T00:00:00.000Z', started_at: '2026-01-02T00:00:00.000Z', raw_bytes: null, stored_bytes: 9 }, raw_sizes: [null] });
    expect(gamma).toEqual({ mandate: 'gamma', newest: null, raw_sizes: [] });
    expect(store.recentBackups(['beta', 'alpha'], 2).map((r) => [r.mandate, r.raw_sizes])).toEqual([['beta', [null]], ['alpha', [134, 133]]]);
    expect(store.recentBackups([], 30)).toEqual([]);
    store.close();
    close();
  });
});

describe('settingsSources (pure)', () => {
  it('labels, config paths (odd names quoted), label keys under a static mandate, GFS retention keys, defaults', () => {
    const fromLabels = settingsSources({ name: 'db', origin: 'labels', container: 'db', raw: { type: 'mysql', 'retention.keep_weekly': '4', min_size: '1MiB' } });
    expect(fromLabels).toMatchObject({
      type: { from: 'label', label: 'backer.type' },
      container: { from: 'label', label: 'backer.enabled' },
      retention: { from: 'label', label: 'backer.retention.keep_weekly' },
      min_size: { from: 'label', label: 'backer.min_size' },
      interval: { from: 'default' },
      size_change_alert: { from: 'default' },
    });
    const overlaid = settingsSources({ name: 'shop db', origin: 'config', container: 'shop', raw: { type: 'mysql', interval: '0 3 * * *', retention: '3' }, labelKeys: new Set(['type']) });
    expect(overlaid).toMatchObject({
      type: { from: 'label', label: 'backer.type' },
      container: { from: 'config', path: 'mandates["shop db"].container' },
      interval: { from: 'config', path: 'mandates["shop db"].interval' },
      retention: { from: 'config', path: 'mandates["shop db"].retention' },
      targets: { from: 'default' },
    });
    expect(settingsSources({ name: 'files', origin: 'config', container: null, raw: { type: 'files' } }).container).toEqual({ from: 'default' });
  });
});
