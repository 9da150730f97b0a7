/**
 * The backup screen and the restore wizard (README "Web UI") in Debian's chromium through
 * playwright-core, against a real `backer daemon` process with a token of each scope, a REAL
 * labelled MariaDB container backed up through gzip to the s3rver target: the manifest rendered
 * (steps with checksums, the copy on s3, the verification record), the download (admin), the wizard
 * through to a restore into a new container whose data is checked with mariadb's own client; read
 * and operate tokens get no restore (no button, a forged POST is 403); axe-core on every screen and
 * step; docs/screenshots/backup.png and restore.png.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { Scope } from '../src/api/route.js';
import { callApi } from '../src/cli/client.js';
import type { Manifest } from '../src/manifests/schema.js';
import type { AnyJob } from '../src/queue/types.js';
import { startTcpDaemon, type TcpDaemon } from './helpers/api-tcp.js';
import { buildWebApp, launchChromium, seriousViolations } from './helpers/browser.js';
import { databaseFingerprint, seedShop, sql, startMariaDb } from './helpers/mariadb.js';
import { until } from './helpers/poll.js';
import { docker } from './setup/services.js';

const host = (): string => inject('dockerHost');
const ID = randomBytes(3).toString('hex');
const DB = `webrst-db-${ID}`;
const COPY = `webrst-copy-${ID}`;
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const LABELS = {
  'backer.enabled': 'true',
  'backer.type': 'mysql',
  'backer.interval': '0 0 29 2 *',
  'backer.target': 's3',
  'backer.middleware': 'compression',
  'backer.mysql.password': 'Env:MYSQL_ROOT_PASSWORD',
  'backer.mysql.database': 'Env:MYSQL_DATABASE',
};

let api: TcpDaemon;
let browser: Browser;
let backupName = '';
let manifest: Manifest;
let fingerprint = '';

/** Runs a job over the socket (admin) and waits for its end. */
async function waitJob(job: AnyJob): Promise<AnyJob> {
  return (await callApi<{ job: AnyJob }>(api.socket, 'GET', `/v1/jobs/${job.id}?wait=180`)).job;
}

beforeAll(async () => {
  // The test's own copy of the UI (ui.dir): another file's build empties dist/web first.
  const uiDir = await mkdtemp(join(tmpdir(), 'wr-ui-'));
  const built = buildWebApp(uiDir);
  await startMariaDb(host(), { name: DB, labels: LABELS });
  await seedShop(host(), DB, 300);
  fingerprint = await databaseFingerprint(host(), DB, 'shop');
  api = await startTcpDaemon('web-restore', { extra: `ui:\n  dir: ${uiDir}\n` });
  await until(() => callApi<{ mandates: { name: string }[] }>(api.socket, 'GET', '/v1/mandates'), (l) => l.mandates.some((m) => m.name === DB), `mandate ${DB}`, 60_000);
  const { job } = await callApi<{ job: AnyJob }>(api.socket, 'POST', `/v1/mandates/${DB}/backups`);
  const done = await waitJob(job);
  expect(done.state, JSON.stringify(done.error)).toBe('succeeded');
  backupName = String((done.result as { name?: string } | null)?.name);
  const { jobs } = await callApi<{ jobs: AnyJob[] }>(api.socket, 'POST', '/v1/verifications', { mandate: DB, backup: backupName, level: 'hash' });
  expect((await waitJob(jobs[0] as AnyJob)).state).toBe('succeeded');
  manifest = (await callApi<{ manifests: Manifest[] }>(api.socket, 'GET', `/v1/backups/${backupName}`)).manifests[0] as Manifest;
  await built;
  browser = await launchChromium();
}, 300_000);

afterAll(async () => {
  await browser?.close();
  await api?.daemon.stop();
  await docker(host(), ['rm', '-f', '-v', DB, COPY]).catch(() => undefined);
});

interface PageGlobals {
  sessionStorage: { getItem(key: string): string | null };
  document: { documentElement: { scrollWidth: number; clientWidth: number }; activeElement: { id: string } | null };
}

/** Opens `path` (the UI answers 200: the app's files or its index.html). */
async function open(page: Page, path: string): Promise<void> {
  const response = await page.goto(`${api.url}${path}`);
  expect(response?.status(), path).toBe(200);
}

/** A fresh page signed in with the token of `scope`, then at `path` (a reload keeps the session). */
async function signedIn(scope: Scope, path: string, viewport = { width: 1280, height: 900 }): Promise<Page> {
  const page = await browser.newPage({ viewport });
  await open(page, '/');
  await page.getByLabel('API token').fill(api.tokens[scope]);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByTestId('who').waitFor();
  await open(page, path);
  await page.getByTestId('who').waitFor();
  return page;
}

/** POST /v1/restores from the page with its own token: what a forged request gets. */
function forgedRestore(page: Page): Promise<number> {
  return page.evaluate(async (mandate) => {
    const token = (globalThis as unknown as PageGlobals).sessionStorage.getItem('backer.token') ?? '';
    const body = JSON.stringify({ mandate, to: 'new:forged-restore', yes: true });
    const r = await fetch('/v1/restores', { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body });
    return r.status;
  }, DB);
}

const overflow = (page: Page): Promise<number> =>
  page.evaluate(() => {
    const { documentElement } = (globalThis as unknown as PageGlobals).document;
    return documentElement.scrollWidth - documentElement.clientWidth;
  });

describe('backup screen', () => {
  it('GET /v1/backups/{name} gives the copies (present on s3) and the verification records next to the manifests', async () => {
    const detail = await callApi<{ copies: unknown[]; verifications: { target: string; level: string; outcome: string; backup: string }[] }>(api.socket, 'GET', `/v1/backups/${backupName}`);
    expect(detail.copies).toEqual([{ target: 's3', manifest_key: `${DB}/${backupName}.manifest.json`, artifact_key: manifest.artifact.key, size: manifest.artifact.size, present: true, problem: null }]);
    expect(detail.verifications.map((v) => [v.target, v.level, v.outcome, v.backup])).toEqual([['s3', 'hash', 'passed', backupName]]);
  });

  it('renders the manifest: source, steps with sizes and checksums, the copy on s3, the verification record', async () => {
    const page = await signedIn('read', `/backups/${backupName}`);
    await page.getByTestId('steps').waitFor();
    expect(await page.getByTestId('mandate').textContent()).toBe(DB);
    expect(await page.getByTestId('source').textContent()).toContain(`mysql · ${DB}`);
    expect(manifest.steps.map((s) => s.processor)).toEqual(['source:mysql', 'middleware:gzip:compression']);
    for (const step of manifest.steps) {
      const row = page.locator(`tr[data-step="${step.processor}"]`);
      expect(await row.getByTestId('md5').textContent()).toBe(step.md5);
      expect(await row.getByTestId('sha256').textContent()).toBe(step.sha256);
      expect(await row.getByTestId('step-size').textContent()).toContain(`(${step.size} bytes)`);
    }
    const copy = page.locator('tr[data-copy="s3"]');
    expect(await copy.getByTestId('copy-state').textContent()).toBe('present');
    expect(await copy.getByTestId('copy-key').textContent()).toBe(manifest.artifact.key);
    expect(await page.getByTestId('stats').textContent()).toContain('shop.products: 300');
    const record = page.locator('[data-verification="s3"]');
    expect(await record.innerText()).toMatch(/^passed\s+hash on s3, /);
    expect(await seriousViolations(page), 'light').toEqual([]);
    await page.emulateMedia({ colorScheme: 'dark' });
    expect(await seriousViolations(page), 'dark').toEqual([]);
    await page.close();
  });

  it('read and operate tokens see no Restore or Download, the wizard says why, and a forged POST /v1/restores is 403', async () => {
    for (const scope of ['read', 'operate'] as const) {
      const page = await signedIn(scope, `/backups/${backupName}`);
      await page.getByTestId('steps').waitFor();
      expect(await page.getByTestId('scope-note').textContent()).toContain(`scope ${scope}`);
      expect(await page.getByTestId('restore-link').count()).toBe(0);
      expect(await page.getByRole('button', { name: /^Download/ }).count()).toBe(0);
      expect(await forgedRestore(page)).toBe(403);
      await open(page, `/restore?mandate=${DB}&backup=${backupName}&target=s3`);
      expect(await page.getByTestId('restore-forbidden').textContent()).toContain(`scope ${scope}`);
      expect(await page.getByTestId('wizard-steps').count()).toBe(0);
      await page.close();
    }
    expect((await docker(host(), ['ps', '-aq', '--filter', 'name=forged-restore'])).trim()).toBe('');
  });

  it('admin downloads the artifact as stored (bearer header, saved through a Blob) and takes the screenshot', async () => {
    const page = await signedIn('admin', `/backups/${backupName}`);
    await page.getByTestId('steps').waitFor();
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Download from s3' }).click()]);
    expect(download.suggestedFilename()).toBe(manifest.artifact.key.split('/').pop());
    const saved = await readFile(await download.path());
    expect(saved.length).toBe(manifest.artifact.size);
    expect(createHash('sha256').update(saved).digest('hex')).toBe(manifest.artifact.sha256);
    expect(page.url()).not.toContain(api.tokens.admin);
    await page.getByTestId('download-status').filter({ hasText: 'Saved' }).waitFor();
    await mkdir(join(ROOT, 'docs', 'screenshots'), { recursive: true });
    await page.screenshot({ path: join(ROOT, 'docs', 'screenshots', 'backup.png'), fullPage: true });
    await page.close();
  });

  it('works at 390 px wide: the page does not scroll sideways', async () => {
    const page = await signedIn('admin', `/backups/${backupName}`, { width: 390, height: 800 });
    await page.getByTestId('steps').waitFor();
    expect(await overflow(page)).toBe(0);
    await open(page, `/restore?mandate=${DB}&backup=${backupName}&target=s3`);
    await page.getByTestId('step-choose').waitFor();
    expect(await overflow(page)).toBe(0);
    await page.close();
  });
});

describe('restore wizard', () => {
  it('restores into a new container: backup, destination, plan, typed confirmation, followed live to success', async () => {
    const page = await signedIn('admin', `/backups/${backupName}`);
    await page.getByTestId('restore-link').click();
    await page.getByTestId('step-choose').waitFor();
    await expect.poll(() => page.getByLabel('Backup').inputValue()).toBe(backupName);
    expect(await page.getByLabel('Read the copy on target').inputValue()).toBe('s3');
    expect(await seriousViolations(page), 'step 1').toEqual([]);
    await page.getByRole('button', { name: 'Next: destination' }).click();

    await page.getByTestId('step-destination').waitFor();
    await page.getByLabel('A new container').check();
    await page.getByLabel('Name of the new container').fill(COPY);
    expect(await seriousViolations(page), 'step 2').toEqual([]);
    await page.getByRole('button', { name: 'Next: see the plan' }).click();

    await page.getByTestId('plan-steps').waitFor({ timeout: 30_000 });
    expect(await page.getByTestId('plan-to').textContent()).toBe(`new:${COPY}`);
    expect(await page.getByTestId('plan-safety').textContent()).toBe('none');
    expect(await page.getByTestId('plan-stops').textContent()).toBe('nothing is stopped');
    expect(await page.getByTestId('plan-sizes').textContent()).toMatch(/ read, .* applied$/);
    expect(await page.getByTestId('plan-steps').textContent()).toContain(`read ${backupName} (${manifest.artifact.size} bytes) from target s3`);
    expect(await seriousViolations(page), 'step 3').toEqual([]);
    await page.emulateMedia({ colorScheme: 'dark' });
    expect(await seriousViolations(page), 'step 3, dark').toEqual([]);
    await page.emulateMedia({ colorScheme: 'light' });
    await mkdir(join(ROOT, 'docs', 'screenshots'), { recursive: true });
    await page.setViewportSize({ width: 1280, height: 640 });
    await page.screenshot({ path: join(ROOT, 'docs', 'screenshots', 'restore.png'), fullPage: true });
    await page.getByRole('button', { name: 'Next: confirm' }).click();

    // Step 4 by keyboard: the heading has focus; Tab reaches the name field; the button waits for the exact name.
    await page.getByTestId('step-confirm').waitFor();
    const start = page.getByRole('button', { name: 'Start the restore' });
    expect(await start.isDisabled()).toBe(true);
    await page.keyboard.press('Tab');
    expect(await page.evaluate(() => (globalThis as unknown as PageGlobals).document.activeElement?.id)).toBe('confirm-name');
    await page.keyboard.type(DB.slice(0, -1));
    expect(await start.isDisabled()).toBe(true);
    expect(await seriousViolations(page), 'step 4').toEqual([]);
    await page.keyboard.type(DB.slice(-1));
    expect(await start.isDisabled()).toBe(false);
    await page.keyboard.press('Enter');

    await page.getByTestId('step-progress').waitFor();
    await page.getByTestId('outcome').waitFor({ timeout: 180_000 });
    expect(await page.getByTestId('job-state').textContent()).toBe('succeeded');
    expect(await page.getByTestId('outcome').textContent()).toContain('Restore succeeded.');
    expect(await page.getByTestId('safety-backup').textContent()).toBe('Safety backup: none');
    expect(await seriousViolations(page), 'step 5').toEqual([]);
    await page.close();

    // The data is in the new container, read with mariadb's own client inside it.
    expect(await sql(host(), COPY, 'SELECT COUNT(*) FROM shop.products; SELECT COUNT(*) FROM shop.orders;')).toBe('300\n600');
    expect(await databaseFingerprint(host(), COPY, 'shop')).toBe(fingerprint);
    const { jobs } = await callApi<{ jobs: AnyJob[] }>(api.socket, 'GET', `/v1/jobs?mandate=${DB}&kind=restore`);
    expect(jobs.map((j) => [j.state, (j.params as { to?: string } | null)?.to])).toEqual([['succeeded', `new:${COPY}`]]);
    expect(await docker(host(), ['inspect', '-f', '{{index .Config.Labels "backer.scratch"}}', COPY])).toBe(jobs[0]?.id);
  });

  it('plans only: into the original with a safety backup first; a destination the daemon refuses (the name of the source container) shows why, and nothing starts', async () => {
    const restores = async (): Promise<number> => (await callApi<{ total: number }>(api.socket, 'GET', `/v1/jobs?mandate=${DB}&kind=restore`)).total;
    const before = await restores();
    const page = await signedIn('admin', `/restore?mandate=${DB}&backup=${backupName}&target=s3`);
    await expect.poll(() => page.getByLabel('Backup').inputValue()).toBe(backupName);
    await page.getByRole('button', { name: 'Next: destination' }).click();
    expect(await page.getByLabel(`The original container (${DB})`).isChecked()).toBe(true);
    expect(await page.getByLabel(/^Take a safety backup/).isChecked()).toBe(true);
    await page.getByRole('button', { name: 'Next: see the plan' }).click();
    await page.getByTestId('plan-steps').waitFor({ timeout: 30_000 });
    expect(await page.getByTestId('plan-to').textContent()).toBe('original');
    expect(await page.getByTestId('plan-safety').textContent()).toMatch(/^yes/);
    expect(await page.getByTestId('plan-steps').textContent()).toContain(`back up the current state of ${DB} first (tagged safety)`);
    await page.getByRole('button', { name: 'Back' }).click();
    await page.getByLabel('A new container').check();
    await page.getByLabel('Name of the new container').fill(DB);
    await page.getByRole('button', { name: 'Next: see the plan' }).click();
    await page.getByTestId('plan-error').waitFor({ timeout: 30_000 });
    expect(await page.getByTestId('plan-error').textContent()).toContain(`--to new:${DB} names the backed-up container itself`);
    expect(await page.getByRole('button', { name: 'Next: confirm' }).isDisabled()).toBe(true);
    expect(await seriousViolations(page)).toEqual([]);
    await page.close();
    expect(await restores()).toBe(before);
  });
});
