/**
 * The web UI (README "Web UI") in Debian's chromium through playwright-core, against a real
 * `backer daemon` process with api.listen on a fixed free loopback port (so a restarted daemon comes
 * back where the page expects it), a token of each scope and three files mandates: one ok after a
 * backup, one failing (its directory is missing), one never run. Serving (CSP, caching, SPA
 * fallback, the API not shadowed), sign-in per scope, the overview, "Back up now" followed live,
 * the disconnected banner across a restart, axe-core, and the overview screenshot for the README.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newToken } from '../src/api/auth.js';
import type { Scope } from '../src/api/route.js';
import { callApi } from '../src/cli/client.js';
import { parseConfigText } from '../src/config/load.js';
import type { AnyJob } from '../src/queue/types.js';
import { startTcpDaemon, tcpRequest } from './helpers/api-tcp.js';
import { buildWebApp, freePort, launchChromium, seriousViolations, signInPage } from './helpers/browser.js';
import { spawnDaemon, waitForHealth, type DaemonProcess } from './helpers/daemon-proc.js';
import { createTestEnv, filesMandateYaml, type TestEnv } from './helpers/env.js';

const ID = randomBytes(3).toString('hex');
const OK = `web-ok-${ID}`;
const FAILING = `web-failing-${ID}`;
const NEVER = `web-never-${ID}`;
const ROOT = fileURLToPath(new URL('..', import.meta.url));

let env: TestEnv;
let daemon: DaemonProcess;
let socket: string;
let base: string;
let tokens: Record<Scope, string>;
let browser: Browser;
let buildReport: string;
const daemonEnv: Record<string, string> = {};

async function startDaemonProcess(): Promise<void> {
  daemon = spawnDaemon(env.configPath, { env: daemonEnv });
  await waitForHealth(daemon, socket, 60_000);
}

/** Runs a backup over the socket and waits for its end. */
async function backupOverSocket(mandate: string): Promise<AnyJob> {
  const { job } = await callApi<{ job: AnyJob }>(socket, 'POST', `/v1/mandates/${mandate}/backups`);
  return (await callApi<{ job: AnyJob }>(socket, 'GET', `/v1/jobs/${job.id}?wait=120`)).job;
}

beforeAll(async () => {
  buildReport = await buildWebApp();
  const okDir = await mkdtemp(join(tmpdir(), 'web-ok-'));
  // Random (incompressible) data through gzip: the backup runs long enough to show its progress.
  await writeFile(join(okDir, 'big.bin'), randomBytes(48 * 1024 * 1024));
  const neverDir = await mkdtemp(join(tmpdir(), 'web-never-'));
  await writeFile(join(neverDir, 'a.txt'), 'never\n');
  Object.assign(daemonEnv, { WEB_OK_DIR: okDir, WEB_NEVER_DIR: neverDir, WEB_FAILING_DIR: join(okDir, 'missing') });
  const mandates = [
    filesMandateYaml(OK, 'WEB_OK_DIR', { target: 'local', middleware: 'compression' }),
    filesMandateYaml(FAILING, 'WEB_FAILING_DIR', { target: 'local' }),
    filesMandateYaml(NEVER, 'WEB_NEVER_DIR', { target: 'local' }),
  ].join('');
  // Docker off: the counters must count this file's mandates, not other files' labelled containers.
  env = await createTestEnv('web-ui', `mandates:\n${mandates}`, '', { docker: false });
  const made = { read: newToken(), operate: newToken(), admin: newToken() };
  tokens = { read: made.read.token, operate: made.operate.token, admin: made.admin.token };
  const port = await freePort();
  const api = ['api:', `  listen: 127.0.0.1:${port}`, '  tokens:', ...(['read', 'operate', 'admin'] as const).map((s) => `    - { name: web-${s}, token_sha256: ${made[s].sha256}, scope: ${s} }`)].join('\n');
  // No retries: the failing mandate is failing after its one attempt.
  const yaml = (await readFile(env.configPath, 'utf8')).replace('queue:\n  concurrency: 2', 'queue:\n  concurrency: 2\n  retries: 0');
  await writeFile(env.configPath, `${yaml}\n${api}\n`);
  socket = join(env.dir, 'data', 'backer.sock');
  base = `http://127.0.0.1:${port}`;
  await startDaemonProcess();
  expect((await backupOverSocket(OK)).state).toBe('succeeded');
  expect((await backupOverSocket(FAILING)).state).toBe('failed');
  browser = await launchChromium();
}, 240_000);

afterAll(async () => {
  await browser?.close();
  await daemon?.stop();
});

/** A fresh page signed in with the token of `scope`; CSP violations reported by the browser are collected. */
async function signedIn(scope: Scope, viewport = { width: 1280, height: 800 }): Promise<{ page: Page; cspErrors: string[] }> {
  const page = await browser.newPage({ viewport });
  const cspErrors: string[] = [];
  page.on('console', (m) => {
    if (/Content Security Policy/i.test(m.text())) cspErrors.push(m.text());
  });
  await signInPage(page, base, tokens[scope]);
  await page.locator(`tr[data-mandate="${FAILING}"]`).waitFor();
  return { page, cspErrors };
}

const row = (page: Page, name: string) => page.locator(`tr[data-mandate="${name}"]`);

/** What the page's scripts see (the root tsconfig has no DOM types; these run in the browser). */
interface PageGlobals {
  sessionStorage: { length: number; getItem(key: string): string | null };
  document: { documentElement: { scrollWidth: number; clientWidth: number }; activeElement: { tagName: string; textContent: string | null; getAttribute(name: string): string | null } | null };
}


describe('serving the UI on the API listener', () => {
  it('/ is the app with a strict CSP and nosniff; hashed assets are immutable; other paths fall back to index.html', async () => {
    const index = await tcpRequest(base, 'GET', '/');
    expect(index.status).toBe(200);
    expect(index.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(index.headers['content-security-policy']).toContain("script-src 'self'");
    expect(index.headers['content-security-policy']).not.toContain('unsafe-inline');
    expect(index.headers['x-content-type-options']).toBe('nosniff');
    expect(index.text).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/); // no inline script
    const asset = /src="(\/assets\/[^"]+\.js)"/.exec(index.text)?.[1];
    expect(asset).toBeDefined();
    const js = await tcpRequest(base, 'GET', asset ?? '');
    expect(js.status).toBe(200);
    expect(js.headers['content-type']).toBe('text/javascript; charset=utf-8');
    expect(js.headers['cache-control']).toBe('public, max-age=31536000, immutable');
    const spa = await tcpRequest(base, 'GET', '/mandates/some-name');
    expect(spa.status).toBe(200);
    expect(spa.text).toBe(index.text);
    expect((await tcpRequest(base, 'GET', '/assets/gone-1234.js')).status).toBe(404);
    expect((await tcpRequest(base, 'GET', '/../../etc/passwd')).text).toBe(index.text);
  });

  it('API paths are still the API: a token is needed, and GET /v1/whoami names the token and its scope', async () => {
    const refused = await tcpRequest(base, 'GET', '/v1/mandates');
    expect(refused.status).toBe(401);
    expect(JSON.parse(refused.text)).toMatchObject({ error: { code: 'API_UNAUTHORIZED' } });
    expect((await tcpRequest(base, 'GET', '/v1/nothing-here', { token: tokens.read })).status).toBe(404);
    const who = await tcpRequest(base, 'GET', '/v1/whoami', { token: tokens.operate });
    expect(JSON.parse(who.text)).toEqual({ name: 'web-operate', scope: 'operate', via: 'token' });
  });
});

describe('ui config', () => {
  it('ui.enabled defaults to true; ui.dir must be absolute; unknown keys are refused', () => {
    const load = (ui: string) => parseConfigText(`ui:\n${ui}`, 'backer.yml', {}, '/etc/backer');
    expect(load('  enabled: false\n').config.ui).toEqual({ enabled: false });
    expect(parseConfigText('data_dir: /tmp/x\n', 'backer.yml', {}, '/etc/backer').config.ui).toEqual({ enabled: true });
    expect(load('  dir: web/dist\n').problems.map((p) => `${p.where}: ${p.message}`).join('\n')).toMatch(/ui\.dir: must be an absolute path/);
    expect(load('  colour: blue\n').problems.map((p) => `${p.where}: ${p.message}`).join('\n')).toMatch(/ui.*colour/);
  });

  it('ui.enabled: false serves the API only on api.listen: / is the API\'s 404', async () => {
    const off = await startTcpDaemon('web-off', { extra: 'ui:\n  enabled: false\n' });
    try {
      const reply = await tcpRequest(off.url, 'GET', '/');
      expect(reply.status).toBe(404);
      expect(JSON.parse(reply.text)).toMatchObject({ error: { code: 'API_BAD_REQUEST' } });
      expect(reply.headers['content-security-policy']).toBeUndefined();
    } finally {
      await off.daemon.stop();
    }
  });
});

describe('a daemon whose web UI is not built', () => {
  it('logs a warning, answers / with 503 and a hint, and the API still answers', async () => {
    const unbuilt = await startTcpDaemon('web-unbuilt', { extra: `ui:\n  dir: ${join(tmpdir(), `web-unbuilt-${ID}`)}\n` });
    try {
      const reply = await tcpRequest(unbuilt.url, 'GET', '/');
      expect(reply.status).toBe(503);
      expect(reply.text).toContain('npm run build');
      expect(unbuilt.daemon.output()).toMatch(/web UI not built: .*index\.html is missing/);
      expect((await tcpRequest(unbuilt.url, 'GET', '/v1/mandates', { token: unbuilt.tokens.read })).status).toBe(200);
      expect((await callApi<{ status: string }>(unbuilt.socket, 'GET', '/v1/health')).status).toBe('ok');
    } finally {
      await unbuilt.daemon.stop();
    }
  });
});

describe('sign-in and scopes', () => {
  it('a wrong token is not accepted; nothing is kept', async () => {
    const page = await browser.newPage();
    await page.goto(`${base}/`);
    await page.getByLabel('API token').fill('bk_not-a-real-token');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect.poll(() => page.getByTestId('sign-in-error').textContent()).toBe('Token not accepted.');
    expect(await page.evaluate(() => (globalThis as unknown as PageGlobals).sessionStorage.length)).toBe(0);
    await page.close();
  });

  it('each scope signs in; read sees no "Back up now" and a forged POST with its token is refused 403', async () => {
    for (const scope of ['read', 'operate', 'admin'] as const) {
      const { page } = await signedIn(scope);
      expect(await page.getByTestId('who').textContent()).toContain(`(scope ${scope})`);
      expect(page.url()).not.toContain(tokens[scope]);
      const buttons = await page.getByRole('button', { name: /^Back up now: / }).count();
      if (scope === 'read') expect(buttons).toBe(0);
      else expect(buttons).toBe(3);
      if (scope === 'read') {
        const status = await page.evaluate(async (name) => {
          const token = (globalThis as unknown as PageGlobals).sessionStorage.getItem('backer.token') ?? '';
          const r = await fetch(`/v1/mandates/${name}/backups`, { method: 'POST', headers: { authorization: `Bearer ${token}` } });
          return r.status;
        }, OK);
        expect(status).toBe(403);
      }
      await page.getByRole('button', { name: 'Sign out' }).click();
      await page.getByLabel('API token').waitFor();
      expect(await page.evaluate(() => (globalThis as unknown as PageGlobals).sessionStorage.getItem('backer.token'))).toBeNull();
      await page.close();
    }
  });
});

describe('overview', () => {
  it('shows failing with its error, ok, never succeeded, and the counters', async () => {
    const { page, cspErrors } = await signedIn('read');
    await expect.poll(() => row(page, FAILING).getByTestId('status').textContent()).toBe('failing');
    expect(await row(page, FAILING).getByTestId('detail').textContent()).toMatch(/missing/);
    expect(await row(page, OK).getByTestId('status').textContent()).toBe('ok');
    expect((await row(page, OK).getByTestId('size').textContent())?.trim()).toBe('48.0 MiB');
    expect(await row(page, NEVER).getByTestId('status').textContent()).toBe('never succeeded');
    expect(await row(page, NEVER).getByTestId('age').textContent()).toContain('never');
    expect(await page.locator('[data-counter="mandates"]').textContent()).toContain('3');
    expect(await page.locator('[data-counter="failing"]').textContent()).toContain('1');
    await page.getByLabel('Filter').fill('never succeeded');
    await expect.poll(() => page.locator('tbody tr[data-mandate]').count()).toBe(1);
    expect(cspErrors).toEqual([]);
    await page.close();
  });

  it('axe-core finds no serious or critical violation on the sign-in and overview screens (light and dark)', async () => {
    for (const colorScheme of ['light', 'dark'] as const) {
      const page = await browser.newPage({ colorScheme });
      await page.goto(`${base}/`);
      await page.getByLabel('API token').waitFor();
      expect(await seriousViolations(page), `sign-in, ${colorScheme}`).toEqual([]);
      await page.close();
      const { page: overview } = await signedIn('operate');
      await overview.emulateMedia({ colorScheme });
      expect(await seriousViolations(overview), `overview, ${colorScheme}`).toEqual([]);
      await overview.close();
    }
  });

  it('works on a phone-sized screen: the matrix scrolls inside its box, the page does not', async () => {
    const { page } = await signedIn('operate', { width: 375, height: 740 });
    const overflow = await page.evaluate(() => {
      const { documentElement } = (globalThis as unknown as PageGlobals).document;
      return documentElement.scrollWidth - documentElement.clientWidth;
    });
    expect(overflow).toBe(0);
    // Keyboard reachable: Tab walks to the sign-out button, the filter and each "Back up now" button
    // (past the nav's links and each mandate's link; enough presses to go round once).
    const reached = new Set<string>();
    for (let i = 0; i < 24; i += 1) {
      await page.keyboard.press('Tab');
      reached.add(await page.evaluate(() => {
        const active = (globalThis as unknown as PageGlobals).document.activeElement;
        return active === null ? '' : `${active.tagName}:${active.getAttribute('aria-label') ?? active.textContent?.trim() ?? ''}`;
      }));
    }
    expect([...reached]).toEqual(expect.arrayContaining(['BUTTON:Sign out', 'INPUT:', `BUTTON:Back up now: ${OK}`, `BUTTON:Back up now: ${NEVER}`]));
    await page.close();
  });
});

describe('live', () => {
  it('"Back up now" (operate) shows the job running with progress, then the new backup, without a reload', async () => {
    const { page } = await signedIn('operate');
    const before = await row(page, OK).getByTestId('age').getAttribute('data-last-at');
    expect(before).toMatch(/^\d{4}-/);
    await page.evaluate(() => ((globalThis as unknown as { noReload: boolean }).noReload = true));
    await page.getByRole('button', { name: `Back up now: ${OK}` }).click();
    await row(page, OK).locator('progress').waitFor({ timeout: 30_000 });
    expect(await row(page, OK).getByTestId('job').textContent()).toContain('running');
    await expect.poll(() => row(page, OK).getByTestId('age').getAttribute('data-last-at'), { timeout: 60_000 }).not.toBe(before);
    await expect.poll(() => row(page, OK).getByTestId('job').textContent()).toBe('—');
    expect(await page.evaluate(() => (globalThis as unknown as { noReload?: boolean }).noReload)).toBe(true);
    await page.close();
  });

  it('a stopped daemon shows "disconnected"; started again, the page recovers by itself', async () => {
    const { page } = await signedIn('read');
    await page.getByTestId('matrix').waitFor();
    await daemon.stop();
    await page.getByTestId('disconnected').waitFor({ timeout: 15_000 });
    await startDaemonProcess();
    await page.getByTestId('disconnected').waitFor({ state: 'detached', timeout: 30_000 });
    await expect.poll(() => row(page, FAILING).getByTestId('status').textContent()).toBe('failing');
    // The daemon still answers its socket after the page's stream reconnected.
    expect((await callApi<{ status: string }>(socket, 'GET', '/v1/health')).status).toBe('ok');
    await page.close();
  });

  it('takes the overview screenshot for the README (docs/screenshots/overview.png)', async () => {
    const { page } = await signedIn('operate', { width: 1280, height: 560 });
    await expect.poll(() => row(page, OK).getByTestId('job').textContent()).toBe('—');
    await mkdir(join(ROOT, 'docs', 'screenshots'), { recursive: true });
    await page.screenshot({ path: join(ROOT, 'docs', 'screenshots', 'overview.png'), fullPage: true });
    await page.close();
  });
});

describe('bundle', () => {
  it('the README states the gzip size vite reports for the built app', async () => {
    const assets = join(ROOT, 'dist', 'web', 'assets');
    let gzip = 0;
    for (const file of await readdir(assets)) gzip += gzipSync(await readFile(join(assets, file))).length;
    expect(buildReport).toMatch(/gzip:/);
    const readme = await readFile(join(ROOT, 'README.md'), 'utf8');
    const stated = /web UI is about (\d+) KiB gzip/.exec(readme)?.[1];
    expect(stated, 'README "Web UI" states the bundle size').toBeDefined();
    expect(Math.abs(Number(stated) - gzip / 1024)).toBeLessThanOrEqual(Math.max(2, Number(stated) * 0.1));
  });
});
