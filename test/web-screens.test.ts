/**
 * The jobs/queue, targets and configuration problems screens of the web UI (README "Web UI") in
 * Debian's chromium through playwright-core, against real `backer daemon` processes with
 * api.listen and a token of each scope. Daemon "ops" (Docker off, queue.concurrency 1): a backup
 * that runs for minutes (a sparse 64 GiB file through gzip) followed on /jobs and cancelled from
 * the page, two jobs queued behind it with their positions, a failure; a local and an s3rver
 * target with a manifest edited by hand. Daemon "problems" (the shared Docker engine): a labelled
 * container with a bad label and a static mandate with a bad config value. axe-core on each
 * screen, light and dark; a 390 px wide screen.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, open, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { newToken } from '../src/api/auth.js';
import type { Scope } from '../src/api/route.js';
import { callApi } from '../src/cli/client.js';
import type { AnyJob } from '../src/queue/types.js';
import { startTcpDaemon, tcpRequest, type TcpDaemon } from './helpers/api-tcp.js';
import { buildWebApp, launchChromium, seriousViolations } from './helpers/browser.js';
import { spawnDaemon, waitForHealth, type DaemonProcess } from './helpers/daemon-proc.js';
import { createTestEnv, filesMandateYaml, s3Client, type TestEnv } from './helpers/env.js';
import { parseLines } from './helpers/logs.js';
import { docker, HOST_IMAGE } from './setup/services.js';

const ID = randomBytes(3).toString('hex');
const SLOW = `ws-slow-${ID}`;
const SLOW2 = `ws-slow2-${ID}`;
const SMALL = `ws-small-${ID}`;
const CLOUD = `ws-cloud-${ID}`;
const FAIL = `ws-fail-${ID}`;
const BAD_LABEL = `ws-badlabel-${ID}`;
const PLAIN = `ws-plain-${ID}`;
const STATIC = `ws-static-${ID}`;

interface UiDaemon { daemon: DaemonProcess; socket: string; base: string; tokens: Record<Scope, string> }

let env: TestEnv;
let ops: UiDaemon;
let problems: TcpDaemon;
let browser: Browser;
/** This file's own build of the UI (ui.dir): other files rebuild dist/web while this one runs. */
let uiDir: string;
const dirs: Record<string, string> = {};

/** What the page's scripts see (the root tsconfig has no DOM types; these run in the browser). */
interface PageGlobals {
  sessionStorage: { getItem(key: string): string | null };
  document: { documentElement: { scrollWidth: number; clientWidth: number } };
}

async function sparseDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  // No disk used, yet tar reads (and gzip compresses) 64 GiB of zeros: minutes.
  const big = await open(join(dir, 'zeros.bin'), 'w');
  await big.truncate(64 * 2 ** 30);
  await big.close();
  return dir;
}

/** The "ops" daemon: Docker off (only this file's mandates), one job at a time, no retries. */
async function startOps(): Promise<UiDaemon> {
  const smallDir = await mkdtemp(join(tmpdir(), 'ws-small-'));
  await writeFile(join(smallDir, 'data.bin'), randomBytes(256 * 1024));
  Object.assign(dirs, { WS_SLOW: await sparseDir('ws-slow-'), WS_SLOW2: await sparseDir('ws-slow2-'), WS_SMALL: smallDir, WS_FAIL: join(smallDir, 'missing') });
  const mandates = [
    filesMandateYaml(SLOW, 'WS_SLOW', { target: 'local', middleware: 'compression' }),
    filesMandateYaml(SLOW2, 'WS_SLOW2', { target: 'local', middleware: 'compression' }),
    // Kept beyond the default retention (10): the local target has more than a page of backups.
    `${filesMandateYaml(SMALL, 'WS_SMALL', { target: 'local' })}    retention: 20\n`,
    filesMandateYaml(CLOUD, 'WS_SMALL', { target: 's3' }),
    filesMandateYaml(FAIL, 'WS_FAIL', { target: 'local' }),
  ].join('');
  env = await createTestEnv('web-screens', `mandates:\n${mandates}`, '', { docker: false });
  const made = { read: newToken(), operate: newToken(), admin: newToken() };
  const api = ['api:', '  listen: 127.0.0.1:0', '  tokens:', ...(['read', 'operate', 'admin'] as const).map((s) => `    - { name: ws-${s}, token_sha256: ${made[s].sha256}, scope: ${s} }`)].join('\n');
  const yaml = (await readFile(env.configPath, 'utf8')).replace('queue:\n  concurrency: 2', 'queue:\n  concurrency: 1\n  retries: 0');
  await writeFile(env.configPath, `${yaml}\n${api}\nui:\n  dir: ${uiDir}\n`);
  const socket = join(env.dir, 'data', 'backer.sock');
  const daemon = spawnDaemon(env.configPath, { env: dirs });
  await waitForHealth(daemon, socket, 60_000);
  const url = parseLines(daemon.output()).find((l) => typeof l.url === 'string' && l.msg.startsWith('API listening on'))?.url;
  if (typeof url !== 'string') throw new Error(`no "API listening on" line:\n${daemon.output()}`);
  return { daemon, socket, base: url, tokens: { read: made.read.token, operate: made.operate.token, admin: made.admin.token } };
}

/** Runs a backup over the socket and waits for its end. */
async function backup(mandate: string): Promise<AnyJob> {
  const { job } = await callApi<{ job: AnyJob }>(ops.socket, 'POST', `/v1/mandates/${mandate}/backups`);
  return (await callApi<{ job: AnyJob }>(ops.socket, 'GET', `/v1/jobs/${job.id}?wait=120`)).job;
}

/** Edits one of CLOUD's manifests on s3rver as a careless hand would: its artifact size no longer matches. */
async function editManifestOnS3(): Promise<string> {
  const client = s3Client();
  try {
    const listed = await client.send(new ListObjectsV2Command({ Bucket: env.bucket, Prefix: `backer/${CLOUD}/` }));
    const key = (listed.Contents ?? []).map((o) => o.Key ?? '').find((k) => k.endsWith('.manifest.json'));
    if (key === undefined) throw new Error(`no manifest of ${CLOUD} on s3`);
    const got = await client.send(new GetObjectCommand({ Bucket: env.bucket, Key: key }));
    const manifest = JSON.parse((await got.Body?.transformToString()) ?? '{}') as { artifact: { size: number } };
    manifest.artifact.size += 1;
    await client.send(new PutObjectCommand({ Bucket: env.bucket, Key: key, Body: JSON.stringify(manifest) }));
    return key.slice('backer/'.length);
  } finally {
    client.destroy();
  }
}

let editedKey: string;
let failed: AnyJob;

beforeAll(async () => {
  uiDir = await mkdtemp(join(tmpdir(), 'ws-ui-'));
  await buildWebApp(uiDir);
  ops = await startOps();
  // 11 backups on local (12 with the queued one below): more than a page (10) of the target's backups.
  for (let i = 0; i < 11; i += 1) expect((await backup(SMALL)).state).toBe('succeeded');
  expect((await backup(CLOUD)).state).toBe('succeeded');
  editedKey = await editManifestOnS3();
  expect((await backup(CLOUD)).state).toBe('succeeded');
  failed = await backup(FAIL);
  expect(failed.state).toBe('failed');

  const host = inject('dockerHost');
  await docker(host, ['create', '--name', BAD_LABEL, '--network', 'none', '--label', 'backer.enabled=true', '--label', 'backer.type=volume', '--label', 'backer.interval=garbage', HOST_IMAGE, 'sleep', 'infinity']);
  const variable = `WS_PW_${ID.toUpperCase()}`;
  await docker(host, ['create', '--name', PLAIN, '--network', 'none', '-e', `${variable}=secret`, HOST_IMAGE, 'sleep', 'infinity']);
  const staticMandate = `mandates:\n  ${STATIC}:\n    container: ${PLAIN}\n    type: mysql\n    interval: "0 0 29 2 *"\n    target: local\n    mysql:\n      password: Env:${variable}\n`;
  // A static mandate with a problem in the file stops the daemon at start; one that appears later
  // (the container recreated without the variable) makes it skipped, reported at its config path.
  problems = await startTcpDaemon('web-screens-problems', { extra: `${staticMandate}ui:\n  dir: ${uiDir}\n` });
  await docker(host, ['rm', '-f', PLAIN]);
  await docker(host, ['create', '--name', PLAIN, '--network', 'none', HOST_IMAGE, 'sleep', 'infinity']);
  browser = await launchChromium();
}, 300_000);

afterAll(async () => {
  await browser?.close();
  await ops?.daemon.stop();
  await problems?.daemon.stop();
  await docker(inject('dockerHost'), ['rm', '-f', BAD_LABEL, PLAIN]).catch(() => undefined);
});

/** A fresh page signed in on `base` with `token`, on `path`. */
async function signedIn(base: string, token: string, path: string, options: { width?: number; colorScheme?: 'light' | 'dark' } = {}): Promise<Page> {
  const page = await browser.newPage({ viewport: { width: options.width ?? 1280, height: 800 }, colorScheme: options.colorScheme ?? 'light' });
  await page.goto(`${base}${path}`);
  await page.getByLabel('API token').fill(token);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByTestId('who').waitFor();
  return page;
}

const jobRow = (page: Page, table: string, mandate: string) => page.getByTestId(table).locator(`tr[data-mandate="${mandate}"]`);

async function trigger(mandate: string): Promise<AnyJob> {
  const reply = await tcpRequest(ops.base, 'POST', `/v1/mandates/${mandate}/backups`, { token: ops.tokens.operate });
  expect(reply.status).toBe(202);
  return (JSON.parse(reply.text) as { job: AnyJob }).job;
}

async function jobState(id: string, wait = 0): Promise<AnyJob & { queue_position?: number | null }> {
  return (await callApi<{ job: AnyJob & { queue_position?: number | null } }>(ops.socket, 'GET', `/v1/jobs/${id}${wait > 0 ? `?wait=${wait}` : ''}`)).job;
}

function horizontalOverflow(page: Page): Promise<number> {
  return page.evaluate(() => {
    const { documentElement } = (globalThis as unknown as PageGlobals).document;
    return documentElement.scrollWidth - documentElement.clientWidth;
  });
}

describe('jobs and queue (/jobs)', () => {
  let slow: AnyJob;
  let slow2: AnyJob;
  let small: AnyJob;

  it('shows a running backup with bytes and rate, and two queued jobs with their position and priority', async () => {
    slow = await trigger(SLOW);
    const page = await signedIn(ops.base, ops.tokens.operate, '/jobs');
    await jobRow(page, 'running', SLOW).waitFor({ timeout: 30_000 });
    slow2 = await trigger(SLOW2);
    small = await trigger(SMALL);
    await expect.poll(() => jobRow(page, 'queued', SLOW2).getByTestId('position').textContent(), { timeout: 15_000 }).toBe('#1');
    expect(await jobRow(page, 'queued', SMALL).getByTestId('position').textContent()).toBe('#2');
    expect(await jobRow(page, 'queued', SMALL).getByTestId('priority').textContent()).toBe('5');
    expect((await jobState(small.id)).queue_position).toBe(2);
    // Bytes and a rate arrive live from job.progress events.
    await expect.poll(() => jobRow(page, 'running', SLOW).getByTestId('bytes').textContent(), { timeout: 30_000 }).toMatch(/^[1-9][\d.]* (KiB|MiB|GiB)$/);
    await expect.poll(() => jobRow(page, 'running', SLOW).getByTestId('rate').textContent(), { timeout: 30_000 }).toMatch(/^[\d.]+ (B|KiB|MiB|GiB)\/s$/);
    expect(await jobRow(page, 'running', SLOW).getByTestId('eta').textContent()).toBe('unknown (no total)');
    expect(await page.locator('[data-counter="queued"]').textContent()).toContain('2');
    // 390 px wide with rows and Cancel buttons in every table: they scroll in their boxes, the page does not.
    const phone = await signedIn(ops.base, ops.tokens.operate, '/jobs', { width: 390 });
    await jobRow(phone, 'queued', SMALL).waitFor();
    await jobRow(phone, 'running', SLOW).waitFor();
    expect(await horizontalOverflow(phone)).toBe(0);
    await phone.close();
    await page.close();
  });

  it('a read token sees the jobs but no Cancel, and a cancel forged from the page is refused 403', async () => {
    const page = await signedIn(ops.base, ops.tokens.read, '/jobs');
    await jobRow(page, 'running', SLOW).waitFor();
    await jobRow(page, 'queued', SMALL).waitFor();
    expect(await page.getByRole('button', { name: /^Cancel / }).count()).toBe(0);
    const status = await page.evaluate(async (id) => {
      const token = (globalThis as unknown as PageGlobals).sessionStorage.getItem('backer.token') ?? '';
      return (await fetch(`/v1/jobs/${id}/cancel`, { method: 'POST', headers: { authorization: `Bearer ${token}` } })).status;
    }, slow.id);
    expect(status).toBe(403);
    expect((await jobState(slow.id)).state).toBe('running');
    await page.close();
  });

  it('lists the failure of the last 24 h with its error', async () => {
    const page = await signedIn(ops.base, ops.tokens.read, '/jobs');
    const row = jobRow(page, 'failures', FAIL);
    await row.waitFor();
    expect(await row.getByTestId('error').textContent()).toContain(failed.error?.message ?? 'no error');
    expect(failed.error?.message).toContain('missing');
    await page.close();
  });

  it('operate cancels the running backup from the page after a confirmation; the queue moves on live', async () => {
    const page = await signedIn(ops.base, ops.tokens.operate, '/jobs');
    await page.getByRole('button', { name: `Cancel backup of ${SLOW}` }).click();
    // Nothing happens before the confirmation; "Keep it" would back out.
    expect((await jobState(slow.id)).state).toBe('running');
    await page.getByRole('button', { name: 'Yes, cancel' }).click();
    expect((await jobState(slow.id, 60)).state).toBe('cancelled');
    await jobRow(page, 'running', SLOW2).waitFor({ timeout: 30_000 });
    await expect.poll(() => jobRow(page, 'queued', SMALL).getByTestId('position').textContent(), { timeout: 15_000 }).toBe('#1');
    expect(await jobRow(page, 'running', SLOW).count()).toBe(0);
    expect(await page.getByTestId('cancel-error').count()).toBe(0);
    // Clean-up through the API: the second long backup goes too, the small one then runs.
    expect((await tcpRequest(ops.base, 'POST', `/v1/jobs/${slow2.id}/cancel`, { token: ops.tokens.operate })).status).toBe(200);
    expect((await jobState(small.id, 60)).state).toBe('succeeded');
    await expect.poll(() => page.getByTestId('running').textContent(), { timeout: 15_000 }).toContain('No job is running.');
    await page.close();
  });
});

describe('targets (/targets)', () => {
  it('shows the local and the s3rver target with their bytes, writers, paged backups and the hand-edited manifest', async () => {
    const page = await signedIn(ops.base, ops.tokens.read, '/targets');
    const local = page.locator('article[data-target="local"]');
    const s3 = page.locator('article[data-target="s3"]');
    await expect.poll(() => local.getByTestId('health').textContent(), { timeout: 30_000 }).toBe('healthy');
    expect(await s3.getByTestId('health').textContent()).toBe('healthy');
    expect(await s3.locator('h3').textContent()).toBe('s3');
    await expect.poll(() => s3.getByTestId('usage-bytes').textContent(), { timeout: 30_000 }).toMatch(/^[\d.]+ (B|KiB|MiB)$/);
    expect(await local.getByTestId('usage-bytes').textContent()).toMatch(/^[\d.]+ (KiB|MiB)$/);
    await expect.poll(() => s3.getByTestId('mandates').textContent()).toContain(CLOUD);
    await expect.poll(() => local.getByTestId('mandates').textContent()).toContain(SMALL);
    // The edited manifest is a problem, not a backup: s3 holds one trusted backup of CLOUD.
    const problem = s3.getByTestId('manifest-problem');
    await problem.waitFor();
    expect(await problem.textContent()).toContain(editedKey);
    expect(await problem.textContent()).toContain('untrusted manifest');
    expect(await s3.getByTestId('backups-s3').locator('tr[data-backup]').count()).toBe(1);
    // 12 backups of SMALL (11 at the start, 1 from the queue; the cancelled ones left none): pages of 10.
    expect(await local.getByTestId('page-range').textContent()).toBe('1–10 of 12');
    expect(await local.getByText('No problem found in its manifests.').count()).toBe(1);
    await local.getByRole('button', { name: 'Older' }).click();
    await expect.poll(() => local.getByTestId('page-range').textContent()).toBe('11–12 of 12');
    expect(await local.locator('tr[data-backup]').count()).toBe(2);
    const link = local.locator('tr[data-backup] a').first();
    const name = (await link.textContent()) ?? '';
    await link.click();
    await page.waitForURL(`**/backups/${encodeURIComponent(name)}`);
    await page.close();
  });
});

describe('configuration problems (/problems)', () => {
  it('shows the bad label with its container and label, and the bad static mandate with its config path', async () => {
    const page = await signedIn(problems.url, problems.tokens.read, '/problems');
    const label = page.locator(`li[data-where="container ${BAD_LABEL} label backer.interval"]`);
    await label.waitFor({ timeout: 30_000 });
    expect(await label.getByTestId('container').textContent()).toBe(BAD_LABEL);
    expect(await label.getByTestId('key').textContent()).toBe('backer.interval');
    expect(await label.getByTestId('message').textContent()).toMatch(/cron expression/);
    expect(await label.getByTestId('effect').textContent()).toContain(`mandate ${BAD_LABEL} is not backed up`);
    const path = `mandates.${STATIC}.mysql.password`;
    const config = page.locator(`li[data-where="${problems.env.configPath}: ${path}"]`);
    await config.waitFor({ timeout: 30_000 });
    expect(await config.getByTestId('file').textContent()).toBe(problems.env.configPath);
    expect(await config.getByTestId('key').textContent()).toBe(path);
    expect(await config.getByTestId('message').textContent()).toContain(`is not set in container ${PLAIN}`);
    expect(await config.getByTestId('effect').textContent()).toContain(`mandate ${STATIC} is not backed up`);
    await page.close();
  });

  it('with nothing wrong: "No problems"', async () => {
    const page = await signedIn(ops.base, ops.tokens.read, '/problems');
    await page.getByTestId('no-problems').waitFor();
    expect(await page.getByTestId('no-problems').textContent()).toBe('No problems.');
    await page.close();
  });
});

describe('accessibility and small screens', () => {
  const screens = (): { path: string; base: string; token: string; ready: string }[] => [
    { path: '/jobs', base: ops.base, token: ops.tokens.operate, ready: 'failures' },
    { path: '/targets', base: ops.base, token: ops.tokens.operate, ready: 'backups-s3' },
    { path: '/problems', base: problems.url, token: problems.tokens.read, ready: 'problems' },
  ];

  it('axe-core finds no serious or critical violation on each screen, light and dark', async () => {
    for (const colorScheme of ['light', 'dark'] as const) {
      for (const s of screens()) {
        const page = await signedIn(s.base, s.token, s.path, { colorScheme });
        await page.getByTestId(s.ready).waitFor();
        expect(await seriousViolations(page), `${s.path}, ${colorScheme}`).toEqual([]);
        await page.close();
      }
    }
  });

  it('each screen fits 390 px: the page does not scroll sideways (tables scroll in their box)', async () => {
    for (const s of screens()) {
      const page = await signedIn(s.base, s.token, s.path, { width: 390 });
      await page.getByTestId(s.ready).waitFor();
      expect(await horizontalOverflow(page), s.path).toBe(0);
      await page.close();
    }
  });
});
