/**
 * The web UI's mandate screen and the overview's sparkline (issue 12) in Debian's chromium through
 * playwright-core, against a real `backer daemon` process (api.listen, a token per scope, Docker
 * off: files mandates only). One mandate has 10 succeeded backups of growing data and one failed
 * backup (its directory moved away), so the history has two pages. Settings with their sources,
 * health, the history with the failed job's error, paging, backups with links, buttons by scope,
 * "Verify" followed live to its end (also when the job ends before the answer to its request), an
 * unknown mandate, axe-core (light, dark, 390 px), and the
 * screenshot docs/screenshots/mandate.png.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rename, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newToken } from '../src/api/auth.js';
import type { Scope } from '../src/api/route.js';
import { callApi } from '../src/cli/client.js';
import type { AnyJob } from '../src/queue/types.js';
import { buildWebApp, freePort, launchChromium, seriousViolations, signInPage } from './helpers/browser.js';
import { spawnDaemon, waitForHealth, type DaemonProcess } from './helpers/daemon-proc.js';
import { createTestEnv, filesMandateYaml, type TestEnv } from './helpers/env.js';

const ID = randomBytes(3).toString('hex');
const MAIN = `wm-main-${ID}`;
const FRESH = `wm-fresh-${ID}`;
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const SUCCEEDED = 10;

let env: TestEnv;
let daemon: DaemonProcess;
let socket: string;
let base: string;
let tokens: Record<Scope, string>;
let browser: Browser;
let failedJob: AnyJob;

/** Runs a backup over the socket and waits for its end. */
async function backupOverSocket(mandate: string): Promise<AnyJob> {
  const { job } = await callApi<{ job: AnyJob }>(socket, 'POST', `/v1/mandates/${mandate}/backups`);
  return (await callApi<{ job: AnyJob }>(socket, 'GET', `/v1/jobs/${job.id}?wait=120`)).job;
}

beforeAll(async () => {
  // The test's own copy of the UI (ui.dir): another file's build empties dist/web first.
  const uiDir = await mkdtemp(join(tmpdir(), 'wm-ui-'));
  await buildWebApp(uiDir);
  const dir = await mkdtemp(join(tmpdir(), 'wm-main-'));
  const freshDir = await mkdtemp(join(tmpdir(), 'wm-fresh-'));
  await writeFile(join(freshDir, 'a.txt'), 'fresh\n');
  const mandates = [filesMandateYaml(MAIN, 'WM_DIR', { target: 'local', middleware: 'compression' }), filesMandateYaml(FRESH, 'WM_FRESH_DIR', { target: 'local' })].join('');
  env = await createTestEnv('web-mandate', `mandates:\n${mandates}`, '', { docker: false });
  const made = { read: newToken(), operate: newToken(), admin: newToken() };
  tokens = { read: made.read.token, operate: made.operate.token, admin: made.admin.token };
  const port = await freePort();
  const api = ['api:', `  listen: 127.0.0.1:${port}`, '  tokens:', ...(['read', 'operate', 'admin'] as const).map((s) => `    - { name: wm-${s}, token_sha256: ${made[s].sha256}, scope: ${s} }`)].join('\n');
  // No retries: the failed backup fails after its one attempt.
  const yaml = (await readFile(env.configPath, 'utf8')).replace('queue:\n  concurrency: 2', 'queue:\n  concurrency: 2\n  retries: 0');
  await writeFile(env.configPath, `${yaml}\n${api}\nui:\n  dir: ${uiDir}\n`);
  socket = join(env.dir, 'data', 'backer.sock');
  base = `http://127.0.0.1:${port}`;
  daemon = spawnDaemon(env.configPath, { env: { WM_DIR: dir, WM_FRESH_DIR: freshDir } });
  await waitForHealth(daemon, socket, 60_000);
  for (let i = 1; i <= SUCCEEDED; i += 1) {
    // Random data, growing: the sparkline and the size chart have something to show.
    await writeFile(join(dir, 'data.bin'), randomBytes(i * 40_000));
    expect((await backupOverSocket(MAIN)).state).toBe('succeeded');
  }
  await rename(dir, `${dir}-away`);
  failedJob = await backupOverSocket(MAIN);
  await rename(`${dir}-away`, dir);
  expect(failedJob.state).toBe('failed');
  browser = await launchChromium();
}, 300_000);

afterAll(async () => {
  await browser?.close();
  await daemon?.stop();
});

/** A fresh page signed in with the token of `scope` at `path`; CSP violations reported by the browser are collected. */
async function openAs(scope: Scope, path: string, options: { width?: number; colorScheme?: 'light' | 'dark' } = {}): Promise<{ page: Page; cspErrors: string[] }> {
  const page = await browser.newPage({ viewport: { width: options.width ?? 1280, height: 900 }, colorScheme: options.colorScheme ?? 'light' });
  const cspErrors: string[] = [];
  page.on('console', (m) => {
    if (/Content Security Policy/i.test(m.text())) cspErrors.push(m.text());
  });
  await signInPage(page, base, tokens[scope]);
  if (path !== '/') await page.goto(`${base}${path}`);
  return { page, cspErrors };
}

const mandatePath = (name: string): string => `/mandates/${encodeURIComponent(name)}`;

async function mandatePage(scope: Scope, options: { width?: number; colorScheme?: 'light' | 'dark' } = {}): Promise<{ page: Page; cspErrors: string[] }> {
  const opened = await openAs(scope, mandatePath(MAIN), options);
  await opened.page.getByTestId('settings').waitFor();
  await opened.page.locator('[data-testid="jobs"] tbody tr[data-job]').first().waitFor();
  await opened.page.locator('[data-testid="backups"] tbody tr[data-backup]').first().waitFor();
  return opened;
}

const settingSource = (page: Page, key: string) => page.locator(`[data-setting="${key}"] [data-testid="source"]`).textContent();

describe('overview', () => {
  it('shows a sparkline of the recent sizes next to the last size, and links the name to the mandate screen', async () => {
    const { page, cspErrors } = await openAs('read', '/');
    const row = page.locator(`tr[data-mandate="${MAIN}"]`);
    const spark = row.getByTestId('sparkline');
    await spark.waitFor();
    const list = await callApi<{ mandates: { name: string; recent_sizes: number[] }[] }>(socket, 'GET', '/v1/mandates');
    const sizes = list.mandates.find((m) => m.name === MAIN)?.recent_sizes ?? [];
    expect(sizes).toHaveLength(SUCCEEDED);
    expect(await spark.getAttribute('aria-label')).toMatch(new RegExp(`^last ${SUCCEEDED} sizes, from \\d[\\d.]* KiB to \\d[\\d.]* KiB$`));
    expect(await spark.locator('polyline').getAttribute('points')).toMatch(/^(\d+\.\d,\d+\.\d ?){10}$/);
    // No backup yet: no sparkline.
    expect(await page.locator(`tr[data-mandate="${FRESH}"]`).getByTestId('sparkline').count()).toBe(0);
    await row.getByRole('link', { name: MAIN }).click();
    await page.waitForURL(`${base}${mandatePath(MAIN)}`);
    await page.getByTestId('settings').waitFor();
    expect(cspErrors).toEqual([]);
    await page.close();
  });
});

describe('mandate screen', () => {
  it('shows the settings with where each came from, and the health', async () => {
    const { page, cspErrors } = await mandatePage('read');
    expect(await page.getByRole('heading', { level: 2 }).textContent()).toBe(MAIN);
    expect(await settingSource(page, 'interval')).toBe(`config mandates.${MAIN}.interval`);
    expect(await settingSource(page, 'targets')).toBe(`config mandates.${MAIN}.target`);
    expect(await settingSource(page, 'middleware')).toBe(`config mandates.${MAIN}.middleware`);
    expect(await settingSource(page, 'retention')).toBe('default');
    expect(await page.locator('[data-setting="middleware"] td code').textContent()).toBe('compression');
    const health = page.getByTestId('health');
    expect(await health.getByTestId('status').textContent()).toBe('failing');
    expect(await health.getByTestId('reason').textContent()).toBe(failedJob.error?.message);
    expect(await health.textContent()).toContain(`${SUCCEEDED} succeeded, 1 failed`);
    expect(await page.getByTestId('duration-chart').locator('svg circle').count()).toBe(SUCCEEDED);
    expect(await page.getByTestId('size-chart').locator('table tbody tr').count()).toBe(SUCCEEDED);
    expect(cspErrors).toEqual([]);
    await page.close();
  });

  it('lists the job history with the failed job’s error, ten a page', async () => {
    const { page } = await mandatePage('read');
    const jobs = page.getByTestId('jobs');
    expect(await page.getByTestId('jobs-range').textContent()).toBe(`jobs 1–10 of ${SUCCEEDED + 1}`);
    const failed = jobs.locator(`tr[data-job="${failedJob.id}"]`);
    expect(await failed.getByTestId('job-state').textContent()).toBe('failed');
    expect(await failed.getByTestId('job-error').textContent()).toBe(`${failedJob.error?.code}: ${failedJob.error?.message}`);
    expect(await jobs.locator('tbody tr[data-job]').count()).toBe(10);
    await page.getByRole('button', { name: 'Older jobs' }).click();
    await expect.poll(() => page.getByTestId('jobs-range').textContent()).toBe(`jobs 11–11 of ${SUCCEEDED + 1}`);
    expect(await jobs.locator('tbody tr[data-job]').count()).toBe(1);
    expect(await page.getByRole('button', { name: 'Older jobs' }).isDisabled()).toBe(true);
    await page.getByRole('button', { name: 'Newer jobs' }).click();
    await expect.poll(() => page.getByTestId('jobs-range').textContent()).toBe(`jobs 1–10 of ${SUCCEEDED + 1}`);
    await page.close();
  });

  it('lists the backups with links to their screen; a read token sees no buttons', async () => {
    const { page } = await mandatePage('read');
    const listed = await callApi<{ backups: { name: string }[]; total: number }>(socket, 'GET', `/v1/mandates/${MAIN}/backups?limit=10`);
    expect(await page.getByTestId('backups-range').textContent()).toBe(`backups 1–10 of ${listed.total}`);
    const first = listed.backups[0]?.name ?? '';
    const link = page.locator(`[data-testid="backups"] tr[data-backup="${first}"]`).getByRole('link', { name: first });
    expect(await link.getAttribute('href')).toBe(`/backups/${encodeURIComponent(first)}`);
    expect(await page.locator(`[data-testid="backups"] tr[data-backup="${first}"]`).getByTestId('verification').textContent()).toBe('not verified');
    for (const name of ['Back up now', 'Verify']) expect(await page.getByRole('button', { name }).count()).toBe(0);
    expect(await page.getByRole('link', { name: /Restore/ }).count()).toBe(0);
    await page.close();
  });

  it('shows "Back up now" and "Verify" to operate, and "Restore…" links to the wizard for admin', async () => {
    const { page: operate } = await mandatePage('operate');
    await operate.getByRole('button', { name: 'Back up now' }).waitFor();
    expect(await operate.getByRole('button', { name: 'Verify' }).count()).toBe(1);
    expect(await operate.getByRole('link', { name: /Restore/ }).count()).toBe(0);
    await operate.close();
    const { page: admin } = await mandatePage('admin');
    expect(await admin.getByTestId('actions').getByRole('link', { name: 'Restore…' }).getAttribute('href')).toBe(`/restore?mandate=${MAIN}`);
    const newest = await admin.locator('[data-testid="backups"] tbody tr[data-backup]').first().getAttribute('data-backup');
    const perBackup = admin.getByRole('link', { name: `Restore ${newest ?? ''} from local` });
    expect(await perBackup.getAttribute('href')).toBe(`/restore?mandate=${MAIN}&backup=${encodeURIComponent(newest ?? '')}&target=local`);
    await admin.close();
  });

  it('"Verify" (operate) runs a verify job and follows it live to its end; the backups show it passed', async () => {
    const { page, cspErrors } = await mandatePage('operate');
    await page.evaluate(() => ((globalThis as unknown as { noReload: boolean }).noReload = true));
    await page.getByRole('button', { name: 'Verify' }).click();
    await expect.poll(() => page.getByTestId('action-message').textContent(), { timeout: 120_000 }).toBe(`Verification succeeded: ${SUCCEEDED} of ${SUCCEEDED} backup copies passed.`);
    const verification = page.locator('[data-testid="backups"] tbody tr[data-backup]').first().getByTestId('verification');
    await expect.poll(() => verification.textContent()).toMatch(/^passed \(decode, .+ ago\)$/);
    await expect.poll(() => page.locator('[data-testid="jobs"] tbody tr[data-kind="verify"]').count()).toBe(1);
    expect(await page.evaluate(() => (globalThis as unknown as { noReload?: boolean }).noReload)).toBe(true);
    expect(cspErrors).toEqual([]);
    await page.close();
  });

  it('"Verify" shows the end of a job that ended before the answer to the request that queued it came back', async () => {
    const { page } = await mandatePage('operate');
    let held = '';
    // The answer to POST /v1/verifications is held back until the job has ended and the page has
    // shown its last event in the jobs table: the page learns the job's id only after its events.
    await page.route('**/v1/verifications', async (route) => {
      const response = await route.fetch();
      const body = (await response.json()) as { jobs: { id: string }[] };
      const id = body.jobs[0]?.id ?? '';
      expect((await callApi<{ job: AnyJob }>(socket, 'GET', `/v1/jobs/${id}?wait=60`)).job.state).toBe('succeeded');
      await expect.poll(() => page.locator(`[data-testid="jobs"] tr[data-job="${id}"] [data-testid="job-state"]`).textContent(), { timeout: 20_000 }).toBe('succeeded');
      await route.fulfill({ response, json: body });
      held = id;
    });
    await page.getByRole('button', { name: 'Verify' }).click();
    await expect.poll(() => held, { timeout: 90_000 }).not.toBe('');
    await expect.poll(() => page.getByTestId('action-message').textContent(), { timeout: 20_000 }).toBe(`Verification succeeded: ${SUCCEEDED} of ${SUCCEEDED} backup copies passed.`);
    await page.close();
  });

  it('says so for an unknown mandate', async () => {
    const { page } = await openAs('read', mandatePath(`wm-nobody-${ID}`));
    await page.getByTestId('missing').waitFor();
    expect(await page.getByTestId('missing').textContent()).toBe(`There is no mandate named wm-nobody-${ID}.`);
    await page.close();
  });
});

describe('accessibility and screenshot', () => {
  it('axe-core finds no serious or critical violation (light, dark, 390 px); the page does not scroll sideways at 390 px', async () => {
    for (const colorScheme of ['light', 'dark'] as const) {
      for (const width of [1280, 390]) {
        const { page } = await mandatePage('admin', { width, colorScheme });
        expect(await seriousViolations(page), `mandate screen, ${colorScheme}, ${width} px`).toEqual([]);
        const { overflow, wide } = await page.evaluate(() => {
          interface El { tagName: string; className: unknown; parentElement: El | null; getBoundingClientRect(): { right: number } }
          const { document, getComputedStyle } = globalThis as unknown as {
            document: { documentElement: { scrollWidth: number; clientWidth: number }; querySelectorAll(s: string): Iterable<El> };
            getComputedStyle(this: void, e: El): { overflowX: string };
          };
          const { scrollWidth, clientWidth } = document.documentElement;
          const clipped = (e: El): boolean => e.parentElement !== null && (getComputedStyle(e.parentElement).overflowX !== 'visible' || clipped(e.parentElement));
          // The elements sticking out of the page (not inside a box that scrolls), to name in the failure.
          const out = [...document.querySelectorAll('body *')].filter((e) => e.getBoundingClientRect().right > clientWidth + 1 && !clipped(e)).slice(0, 5);
          return { overflow: scrollWidth - clientWidth, wide: out.map((e) => `${e.tagName}.${String(e.className)}`) };
        });
        expect(overflow, `${colorScheme}, ${width} px: ${wide.join(' | ')}`).toBe(0);
        await page.close();
      }
    }
  });

  it('takes the mandate screenshot for the README (docs/screenshots/mandate.png)', async () => {
    const { page } = await mandatePage('admin');
    await mkdir(join(ROOT, 'docs', 'screenshots'), { recursive: true });
    await page.screenshot({ path: join(ROOT, 'docs', 'screenshots', 'mandate.png'), fullPage: true });
    await page.close();
  });
});
