/**
 * The web UI end to end (issue 12, "Done means"): Debian's chromium through playwright-core against
 * a real `backer daemon` process (api.listen on a fixed free loopback port, a token of each scope)
 * with real labelled containers on the private engine, backed up to the s3rver target:
 * - a MariaDB whose password label refers to a variable holding a wrong password (its backup fails),
 * - a MariaDB backed up once before the page opens (ok), then again from the page,
 * - a PostgreSQL never backed up ("never succeeded").
 * Then: what each scope may press on the overview, a mandate and a backup (read: nothing, and a POST
 * forged from the page is 403), axe-core, "Back up now" followed live to the new backup, and the
 * "Disconnected" banner across a daemon restart. Other files' labelled containers share the engine:
 * only this file's rows are looked at.
 */
import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { newToken } from '../src/api/auth.js';
import type { Scope } from '../src/api/route.js';
import { callApi } from '../src/cli/client.js';
import type { AnyJob } from '../src/queue/types.js';
import { buildWebApp, freePort, launchChromium, seriousViolations, signInPage } from './helpers/browser.js';
import { spawnDaemon, waitForHealth, type DaemonProcess } from './helpers/daemon-proc.js';
import { createTestEnv, s3Client, type TestEnv } from './helpers/env.js';
import { seedShop, sql, startMariaDb } from './helpers/mariadb.js';
import { startPostgres } from './helpers/postgres.js';
import { docker } from './setup/services.js';

const ID = randomBytes(3).toString('hex');
const OK = `e2e-ok-${ID}`;
const BAD = `e2e-bad-${ID}`;
const NEVER = `e2e-never-${ID}`;
const host = (): string => inject('dockerHost');
/** Mutating controls: none of them may show for a read token. */
const MUTATING = /back up|verify|cancel|restore|download|forget|delete/i;

let env: TestEnv;
let daemon: DaemonProcess;
let socket: string;
let base: string;
let tokens: Record<Scope, string>;
let browser: Browser;
/** The ~80 MiB of rows added to OK in the background while the first tests run: the backup triggered from the page dumps them. */
let blobs: Promise<string>;

/** Labels of a mandate whose schedule never fires during the run (Feb 29 at midnight): the test triggers every backup. */
function labels(type: 'mysql' | 'postgres', extra: Record<string, string>): Record<string, string> {
  return { 'backer.enabled': 'true', 'backer.type': type, 'backer.interval': '0 0 29 2 *', 'backer.target': 's3', 'backer.middleware': 'compression', ...extra };
}

async function startContainers(): Promise<void> {
  await Promise.all([
    startMariaDb(host(), { name: OK, labels: labels('mysql', { 'backer.mysql.password': 'Env:MYSQL_ROOT_PASSWORD', 'backer.mysql.database': 'shop' }) }),
    // The reference resolves, to a password the server does not accept.
    startMariaDb(host(), { name: BAD, env: { OLD_PASSWORD: 'not-the-root-password' }, labels: labels('mysql', { 'backer.mysql.password': 'Env:OLD_PASSWORD', 'backer.mysql.database': 'shop' }) }),
    startPostgres(NEVER, labels('postgres', { 'backer.postgres.password': 'Env:POSTGRES_PASSWORD' })),
  ]);
  await seedShop(host(), OK);
}

async function writeConfig(): Promise<void> {
  env = await createTestEnv('web-e2e');
  const made = { read: newToken(), operate: newToken(), admin: newToken() };
  tokens = { read: made.read.token, operate: made.operate.token, admin: made.admin.token };
  const port = await freePort();
  const api = ['api:', `  listen: 127.0.0.1:${port}`, '  tokens:', ...(['read', 'operate', 'admin'] as const).map((s) => `    - { name: e2e-${s}, token_sha256: ${made[s].sha256}, scope: ${s} }`)].join('\n');
  // No retries (failing after its one attempt), no catch-up runs of other files' containers.
  const yaml = (await readFile(env.configPath, 'utf8')).replace('queue:\n  concurrency: 2', 'queue:\n  concurrency: 2\n  retries: 0');
  // The UI is built into this file's own ui.dir: other files rebuilding dist/web do not disturb its pages.
  await writeFile(env.configPath, `${yaml}\nschedule:\n  catch_up: skip\nui:\n  dir: ${join(env.dir, 'web')}\n${api}\n`);
  socket = join(env.dir, 'data', 'backer.sock');
  base = `http://127.0.0.1:${port}`;
}

async function startDaemonProcess(): Promise<void> {
  daemon = spawnDaemon(env.configPath);
  await waitForHealth(daemon, socket, 60_000);
}

/** Runs a backup over the socket once the daemon knows the container, and waits for its end. */
async function backupOverSocket(mandate: string): Promise<AnyJob> {
  for (let i = 0; ; i++) {
    const list = await callApi<{ mandates: { name: string }[] }>(socket, 'GET', '/v1/mandates');
    if (list.mandates.some((m) => m.name === mandate)) break;
    if (i > 100) throw new Error(`the daemon did not discover ${mandate}`);
    await new Promise((r) => setTimeout(r, 200));
  }
  const { job } = await callApi<{ job: AnyJob }>(socket, 'POST', `/v1/mandates/${mandate}/backups`);
  return (await callApi<{ job: AnyJob }>(socket, 'GET', `/v1/jobs/${job.id}?wait=120`)).job;
}

/** Manifests of `mandate` in the s3rver bucket. */
async function s3Manifests(mandate: string): Promise<string[]> {
  const client = s3Client();
  try {
    const page = await client.send(new ListObjectsV2Command({ Bucket: env.bucket, Prefix: `backer/${mandate}/` }));
    return (page.Contents ?? []).map((o) => o.Key ?? '').filter((k) => k.endsWith('.manifest.json'));
  } finally {
    client.destroy();
  }
}

beforeAll(async () => {
  await writeConfig();
  await Promise.all([buildWebApp(join(env.dir, 'web')), startContainers()]);
  await startDaemonProcess();
  expect((await backupOverSocket(OK)).state).toBe('succeeded');
  expect((await backupOverSocket(BAD)).state).toBe('failed');
  // Row-per-row text, about 80 MiB dumped: a backup that runs long enough (seconds) to be watched.
  blobs = sql(host(), OK, `USE shop; CREATE TABLE blobs (id INT PRIMARY KEY, body TEXT);
    INSERT INTO blobs SELECT seq, REPEAT(MD5(seq), 8) FROM seq_1_to_300000;`);
  // Awaited (and so reported) by the live test; this only keeps it from being "unhandled" meanwhile.
  blobs.catch(() => undefined);
  browser = await launchChromium();
}, 240_000);

afterAll(async () => {
  await browser?.close();
  await daemon?.stop();
  await docker(host(), ['rm', '-f', OK, BAD, NEVER]).catch(() => undefined);
});

const row = (page: Page, name: string) => page.locator(`tr[data-mandate="${name}"]`);

/** The last size shown in a row (the cell also holds the sparkline's text for screen readers). */
async function lastSize(page: Page, name: string): Promise<string> {
  const text = (await row(page, name).getByTestId('size').textContent()) ?? '';
  return /^\s*(\S+ \S+)/.exec(text)?.[1] ?? text;
}

/** A fresh page signed in with the token of `scope`, this file's rows shown. */
async function signedIn(scope: Scope, colorScheme: 'light' | 'dark' = 'light'): Promise<Page> {
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 }, colorScheme });
  await signInPage(page, base, tokens[scope]);
  await row(page, NEVER).waitFor();
  return page;
}

/** The names (aria-label, else text) of the page's buttons and links that change something or lead to it. */
async function mutatingControls(page: Page): Promise<string[]> {
  const names: string[] = [];
  for (const control of await page.locator('button, a').all()) {
    const name = ((await control.getAttribute('aria-label')) ?? (await control.textContent()) ?? '').trim();
    if (MUTATING.test(name)) names.push(name);
  }
  return names;
}

/** The newest backup of `mandate`, from the API. */
async function lastBackup(mandate: string): Promise<string> {
  const list = await callApi<{ mandates: { name: string; last_backup: { name: string } | null }[] }>(socket, 'GET', '/v1/mandates');
  const name = list.mandates.find((m) => m.name === mandate)?.last_backup?.name;
  if (name === undefined) throw new Error(`${mandate} has no backup`);
  return name;
}

describe('the overview with real databases', () => {
  it('shows the wrong password as failing with its error, the backed-up MariaDB as ok, the never-run PostgreSQL as never succeeded', async () => {
    const page = await signedIn('read');
    await expect.poll(() => row(page, BAD).getByTestId('status').textContent()).toBe('failing');
    expect(await row(page, BAD).getByTestId('detail').textContent()).toMatch(/Access denied for user 'root'@'localhost'/);
    expect(await row(page, BAD).getByTestId('age').textContent()).toContain('never');
    expect(await row(page, OK).getByTestId('status').textContent()).toBe('ok');
    expect(await row(page, OK).getByTestId('detail').count()).toBe(0);
    expect(await lastSize(page, OK)).toMatch(/^\d+(\.\d)? KiB$/);
    expect(await row(page, OK).locator('th').textContent()).toContain(`mysql · ${OK} · s3`);
    expect(await row(page, NEVER).getByTestId('status').textContent()).toBe('never succeeded');
    expect(await row(page, NEVER).getByTestId('age').textContent()).toContain('never');
    expect(await row(page, NEVER).locator('th').textContent()).toContain(`postgres · ${NEVER} · s3`);
    expect(await s3Manifests(OK)).toHaveLength(1);
    expect(await s3Manifests(BAD)).toEqual([]);
    await page.close();
  });

  it('axe-core finds no serious or critical violation on the overview with these rows (light and dark)', async () => {
    for (const colorScheme of ['light', 'dark'] as const) {
      const page = await signedIn('operate', colorScheme);
      await expect.poll(() => row(page, BAD).getByTestId('status').textContent()).toBe('failing');
      expect(await seriousViolations(page), `overview, ${colorScheme}`).toEqual([]);
      await page.close();
    }
  });
});

describe('scopes', () => {
  it('read sees no mutating control and a POST forged from the page with its token is refused 403', async () => {
    const page = await signedIn('read');
    expect(await page.getByTestId('who').textContent()).toContain('(scope read)');
    expect(await mutatingControls(page)).toEqual([]);
    const status = await page.evaluate(async (name) => {
      const token = (globalThis as unknown as { sessionStorage: { getItem(key: string): string | null } }).sessionStorage.getItem('backer.token') ?? '';
      const r = await fetch(`/v1/mandates/${name}/backups`, { method: 'POST', headers: { authorization: `Bearer ${token}` } });
      return r.status;
    }, NEVER);
    expect(status).toBe(403);
    expect(await s3Manifests(NEVER)).toEqual([]);
    await page.close();
  });

  it('operate and admin get "Back up now" on each of the three mandates', async () => {
    for (const scope of ['operate', 'admin'] as const) {
      const page = await signedIn(scope);
      expect(await page.getByTestId('who').textContent()).toContain(`(scope ${scope})`);
      for (const name of [OK, BAD, NEVER]) expect(await row(page, name).getByRole('button', { name: `Back up now: ${name}` }).isEnabled()).toBe(true);
      await page.close();
    }
  });
});

describe('each scope on the mandate and backup screens of the backed-up MariaDB', () => {
  /** What each scope may press: read nothing; operate back up now and verify; admin also restore (the wizard, from the mandate, its backup list and the backup) and download. */
  const expected = (scope: Scope, backup: string): { mandate: string[]; backup: string[] } =>
    ({
      read: { mandate: [], backup: [] },
      operate: { mandate: ['Back up now', 'Verify'], backup: [] },
      admin: { mandate: ['Back up now', 'Verify', 'Restore…', `Restore ${backup} from s3`], backup: ['Restore…', 'Download from s3'] },
    })[scope];

  for (const scope of ['read', 'operate', 'admin'] as const) {
    it(`${scope} sees the mutating controls of its scope and no others${scope === 'admin' ? ' (and axe-core finds no serious violation there)' : ''}`, async () => {
      const backup = await lastBackup(OK);
      const page = await signedIn(scope);
      await page.goto(`${base}/mandates/${OK}`);
      await page.getByTestId('health').getByTestId('status').waitFor();
      expect(await page.getByTestId('health').getByTestId('status').textContent()).toBe('ok');
      await page.getByTestId('backups').locator(`tr[data-backup="${backup}"]`).waitFor();
      expect((await mutatingControls(page)).sort()).toEqual(expected(scope, backup).mandate.sort());
      if (scope === 'admin') expect(await seriousViolations(page), 'mandate screen').toEqual([]);
      await page.goto(`${base}/backups/${backup}`);
      await page.getByRole('heading', { name: 'Copies' }).waitFor();
      expect((await mutatingControls(page)).sort()).toEqual(expected(scope, backup).backup.sort());
      if (scope === 'admin') expect(await seriousViolations(page), 'backup screen').toEqual([]);
      await page.close();
    });
  }
});

describe('live', () => {
  it('"Back up now" (operate) shows the running dump\'s progress, then the new backup\'s size and age, without a reload', async () => {
    await blobs;
    const page = await signedIn('operate');
    const size = await lastSize(page, OK);
    const lastAt = await row(page, OK).getByTestId('age').getAttribute('data-last-at');
    expect(lastAt).toMatch(/^\d{4}-/);
    await page.evaluate(() => ((globalThis as unknown as { noReload: boolean }).noReload = true));
    await row(page, OK).getByRole('button', { name: `Back up now: ${OK}` }).click();
    await row(page, OK).locator('progress').waitFor({ timeout: 30_000 });
    expect(await row(page, OK).getByTestId('job').textContent()).toContain('running');
    // Bytes dumped so far, from the job.progress events of the stream.
    await expect.poll(() => row(page, OK).getByTestId('job').textContent(), { timeout: 60_000 }).toMatch(/running.*\d+(\.\d)? (KiB|MiB)/);
    await expect.poll(() => row(page, OK).getByTestId('age').getAttribute('data-last-at'), { timeout: 120_000 }).not.toBe(lastAt);
    await expect.poll(() => row(page, OK).getByTestId('job').textContent()).toBe('—');
    expect(await lastSize(page, OK)).toMatch(/^\d+(\.\d)? MiB$/);
    expect(await lastSize(page, OK)).not.toBe(size);
    // The sparkline now has the two sizes, said in words too.
    expect(await row(page, OK).getByTestId('sparkline').getAttribute('aria-label')).toBe(`last 2 sizes, from ${size} to ${await lastSize(page, OK)}`);
    expect(await row(page, OK).getByTestId('status').textContent()).toBe('ok');
    expect(await page.evaluate(() => (globalThis as unknown as { noReload?: boolean }).noReload)).toBe(true);
    expect(await s3Manifests(OK)).toHaveLength(2);
    await page.close();
  }, 240_000);

  it('a stopped daemon shows "Disconnected"; started again, the page recovers by itself', async () => {
    const page = await signedIn('read');
    await daemon.stop();
    await page.getByTestId('disconnected').waitFor({ timeout: 15_000 });
    expect(await page.getByTestId('disconnected').textContent()).toContain('Disconnected');
    await startDaemonProcess();
    await page.getByTestId('disconnected').waitFor({ state: 'detached', timeout: 30_000 });
    await expect.poll(() => row(page, BAD).getByTestId('status').textContent(), { timeout: 30_000 }).toBe('failing');
    expect(await row(page, OK).getByTestId('status').textContent()).toBe('ok');
    await page.close();
  });
});
