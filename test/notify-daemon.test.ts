/**
 * Notifications from a real `backer daemon` process to real receivers: an SMTP server (its URL in
 * a url_file, password included), a generic JSON webhook, and a webhook whose receiver is down.
 * A files mandate whose directory is missing fails: exactly one mail and one webhook; failing
 * again sends nothing new; the success after sends backup_recovered; the down receiver is retried
 * and logged while backups and the API carry on; no secret in any log line; a restarted daemon
 * remembers what it already sent; a mandate past its max_age is `stale` once (the daemon's real
 * status monitor) and its next success `backup_recovered`; `backer notify test` reports each delivery.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { callApi } from '../src/cli/client.js';
import type { AnyJob } from '../src/queue/types.js';
import { cli, type CliResult } from './helpers/cli.js';
import { spawnDaemon, waitForHealth, type DaemonProcess } from './helpers/daemon-proc.js';
import { createTestEnv, filesMandateYaml, type TestEnv } from './helpers/env.js';
import { parseLines } from './helpers/logs.js';
import { closedPort, startHttpReceiver, startSmtpReceiver, type HttpReceiver, type SmtpReceiver } from './helpers/receivers.js';

const ID = randomBytes(3).toString('hex');
const MANDATE = `nd-files-${ID}`;
/** Stale 3 s after its last success (or after the daemon first saw it). */
const STALE = `nd-stale-${ID}`;
const SMTP_PASSWORD = `smtp-Pw-${randomBytes(6).toString('hex')}`;
const HOOK_TOKEN = `hook_${randomBytes(12).toString('hex')}`;
const DOWN_TOKEN = `down_${randomBytes(12).toString('hex')}`;
const dataDir = join(tmpdir(), `nd-dir-${ID}`);
const staleDir = join(tmpdir(), `nd-stale-dir-${ID}`);

let env: TestEnv;
let smtp: SmtpReceiver;
let http: HttpReceiver;
let daemon: DaemonProcess;
let socket: string;
const outputs: string[] = [];

const dirs = { ND_DIR: dataDir, ND_STALE_DIR: staleDir };
const run = (args: string[]): Promise<CliResult> => cli([...args, '--config', env.configPath], dirs);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function backup(expected: 'succeeded' | 'failed', mandate = MANDATE): Promise<AnyJob> {
  const r = await run(['backup', mandate, '--wait', '--json']);
  expect(r.code, r.stdout + r.stderr).toBe(expected === 'succeeded' ? 0 : 1);
  const job = JSON.parse(r.stdout) as AnyJob;
  expect(job.state).toBe(expected);
  return job;
}

async function startDaemon(): Promise<void> {
  daemon = spawnDaemon(env.configPath, { env: dirs });
  await waitForHealth(daemon, socket, 60_000);
}

async function stillAnswers(): Promise<void> {
  expect((await callApi<{ status: string }>(socket, 'GET', '/v1/health')).status).toBe('ok');
  const list = await run(['mandates', 'list']);
  expect(list.code, list.stderr).toBe(0);
  expect(list.stdout).toContain(MANDATE);
}

const mailsOf = (mandate: string): SmtpReceiver['mails'] => smtp.mails.filter((m) => m.mail.headers.get('x-backer-mandate') === mandate);

/** Webhook bodies received on /hooks/… about `mandate` (the down receiver never answers). */
const hookBodies = (mandate: string | null = MANDATE): Record<string, unknown>[] =>
  http.requests
    .filter((r) => r.path.startsWith('/hooks/'))
    .map((r) => JSON.parse(r.body) as Record<string, unknown>)
    .filter((b) => mandate === null || b.mandate === mandate);

beforeAll(async () => {
  smtp = await startSmtpReceiver({ user: 'backer', password: SMTP_PASSWORD });
  http = await startHttpReceiver();
  const down = await closedPort();
  const notifications = `
notifications:
  - name: mail
    url_file: smtp.url
    events: [backup_failed, backup_recovered]
  - name: hook
    url: generic+http://${http.host}/hooks/${HOOK_TOKEN}
    mandates: ["nd-files-*", "nd-stale-*"]
  - name: down
    url: generic+http://127.0.0.1:${down}/hooks/${DOWN_TOKEN}
`;
  await mkdir(staleDir, { recursive: true });
  await writeFile(join(staleDir, 'b.txt'), 'stale\n');
  const stale = `${filesMandateYaml(STALE, 'ND_STALE_DIR', { target: 'local' })}    max_age: 3s\n`;
  const status = 'status:\n  check_interval: 1s\n';
  env = await createTestEnv('notify-daemon', `${status}mandates:\n${filesMandateYaml(MANDATE, 'ND_DIR', { target: 'local' })}${stale}${notifications}`);
  await writeFile(join(env.dir, 'smtp.url'), `smtp://backer:${SMTP_PASSWORD}@127.0.0.1:${smtp.port}/?from=backer@example.org&to=ops@example.org&starttls=no\n`);
  socket = join(env.dir, 'data', 'backer.sock');
  await startDaemon();
}, 120_000);

afterAll(async () => {
  outputs.push(daemon.output());
  await daemon.stop();
  await smtp.close();
  await http.close();
  await rm(dataDir, { recursive: true, force: true });
  await rm(staleDir, { recursive: true, force: true });
});

describe('a failing backup, through a real daemon', () => {
  let failed: AnyJob;

  it('sends exactly one backup_failed mail and one webhook', async () => {
    failed = await backup('failed');
    const [mail] = await smtp.waitFor(1);
    expect(mail?.user).toBe('backer');
    expect(mail?.mail.subject).toBe(`Backup of ${MANDATE} failed`);
    const text = mail?.mail.text ?? '';
    expect(text).toContain(`The backup of mandate ${MANDATE} to local failed: cannot read ${dataDir}`);
    expect(text).toContain(`Investigate: backer jobs show ${failed.id}`);
    await http.waitFor(1);
    expect(hookBodies()).toEqual([
      expect.objectContaining({ event: 'backup_failed', level: 'error', mandate: MANDATE, target: 'local', job_id: failed.id, error: failed.error, command: `backer jobs show ${failed.id}`, reminder: false }),
    ]);
    await stillAnswers();
  });

  it('a second failure sends nothing new', async () => {
    await backup('failed');
    await sleep(1500);
    expect(smtp.mails).toHaveLength(1);
    expect(hookBodies()).toHaveLength(1);
  });

  it('the success after sends backup_recovered', async () => {
    await mkdir(dataDir, { recursive: true });
    await writeFile(join(dataDir, 'a.txt'), 'hello\n');
    const ok = await backup('succeeded');
    const mails = await smtp.waitFor(2);
    expect(mails[1]?.mail.subject).toBe(`Backup of ${MANDATE} recovered`);
    expect(mails[1]?.mail.text).toContain(`succeeded again after failing since`);
    await http.waitFor(2);
    expect(hookBodies()[1]).toMatchObject({ event: 'backup_recovered', level: 'info', mandate: MANDATE, job_id: ok.id, error: null });
    await stillAnswers();
  });

  it('the receiver that is down is retried and logged; backups and the API are unaffected', async () => {
    const deadline = Date.now() + 40_000;
    const gaveUp = (): unknown[] => parseLines(daemon.output()).filter((l) => l.mandate === MANDATE && l.msg.startsWith('notification to down failed after 3 attempts'));
    while (gaveUp().length < 2 && Date.now() < deadline) await sleep(250);
    const lines = parseLines(daemon.output());
    const retries = lines.filter((l) => l.destination === 'down' && l.mandate === MANDATE && l.level === 40);
    expect(retries.length).toBeGreaterThanOrEqual(4);
    expect(retries[0]).toMatchObject({ component: 'notify', attempt: 1, url: expect.stringMatching(/^generic\+http:\/\/127\.0\.0\.1:\d+\/hooks\/\*\*\*$/) as unknown });
    expect(String(retries[0]?.error)).toMatch(/fetch failed|ECONNREFUSED/);
    expect(gaveUp().map((l) => (l as { event: string }).event)).toEqual(['backup_failed', 'backup_recovered']);
    const jobs = await run(['jobs', 'list', '--mandate', MANDATE, '--json']);
    expect((JSON.parse(jobs.stdout) as { jobs: AnyJob[] }).jobs.map((j) => j.state)).toEqual(['succeeded', 'failed', 'failed']);
    await stillAnswers();
  }, 60_000);

  it('a restarted daemon remembers: a new failure is sent once, not again after the restart', async () => {
    await rm(dataDir, { recursive: true, force: true });
    await backup('failed');
    await smtp.waitFor(3);
    outputs.push(daemon.output());
    expect(await daemon.stop()).toBe(0);
    await startDaemon();
    await backup('failed');
    await sleep(1500);
    expect(mailsOf(MANDATE).map((m) => m.mail.subject)).toEqual([`Backup of ${MANDATE} failed`, `Backup of ${MANDATE} recovered`, `Backup of ${MANDATE} failed`]);
    expect(hookBodies().map((b) => b.event)).toEqual(['backup_failed', 'backup_recovered', 'backup_failed']);
    await stillAnswers();
  }, 90_000);
});

describe('staleness, from the daemon\'s status monitor', () => {
  const staleBodies = (): Record<string, unknown>[] => hookBodies(STALE);
  async function waitForEvents(count: number): Promise<Record<string, unknown>[]> {
    const deadline = Date.now() + 30_000;
    while (staleBodies().length < count && Date.now() < deadline) await sleep(200);
    return staleBodies();
  }

  it('a mandate without a success within max_age is stale once; its next success is backup_recovered', async () => {
    const [stale] = await waitForEvents(1);
    expect(stale).toMatchObject({ event: 'stale', level: 'warning', mandate: STALE, target: 'local', job_id: null, command: `backer mandates show ${STALE}`, reminder: false });
    expect(String(stale?.message)).toContain(`Mandate ${STALE} has no recent successful backup`);
    await sleep(2500);
    expect(staleBodies()).toHaveLength(1);
    const ok = await backup('succeeded', STALE);
    const bodies = await waitForEvents(2);
    expect(bodies[1]).toMatchObject({ event: 'backup_recovered', mandate: STALE, job_id: ok.id });
    expect(String(bodies[1]?.message)).toContain('succeeded again after being stale since');
    await stillAnswers();
  }, 60_000);
});

describe('backer notify test', () => {
  it('sends to each destination and reports each delivery; exit 1 when one failed', async () => {
    const isTest = (subject: string | undefined): boolean => subject === 'Backer test notification';
    const r = await run(['notify', 'test']);
    expect(r.code, r.stderr).toBe(1);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^mail +smtp +ok$/);
    expect(lines[1]).toMatch(/^hook +generic\+http +ok$/);
    expect(lines[2]).toMatch(/^down +generic\+http +error: fetch failed/);
    const deadline = Date.now() + 10_000;
    while (!smtp.mails.some((m) => isTest(m.mail.subject)) && Date.now() < deadline) await sleep(100);
    expect(smtp.mails.filter((m) => isTest(m.mail.subject))).toHaveLength(1);
    expect(hookBodies(null).filter((b) => b.event === 'test')).toHaveLength(1);
  });

  it('NAME sends to that destination only; --json reports it; an unknown NAME is exit 2', async () => {
    const tests = (): number => hookBodies(null).filter((b) => b.event === 'test').length;
    const before = tests();
    const r = await run(['notify', 'test', 'hook', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ ok: true, deliveries: [{ name: 'hook', scheme: 'generic+http', url: `generic+http://${http.host}/hooks/***`, ok: true, error: null }] });
    expect(tests()).toBe(before + 1);
    // Only the hook: no second test mail.
    expect(smtp.mails.filter((m) => m.mail.subject === 'Backer test notification')).toHaveLength(1);
    const unknown = await run(['notify', 'test', 'pager']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toBe('backer: no notification destination named pager; known: mail, hook, down\n');
    for (const out of [r.stdout, r.stderr]) for (const secret of [SMTP_PASSWORD, HOOK_TOKEN, DOWN_TOKEN]) expect(out).not.toContain(secret);
  });
});

describe('secrets', () => {
  it('the SMTP password and the webhook tokens are in no log line of either daemon', () => {
    const all = [...outputs, daemon.output()].join('\n');
    expect(all).toContain('notification sent');
    for (const secret of [SMTP_PASSWORD, HOOK_TOKEN, DOWN_TOKEN]) expect(all).not.toContain(secret);
  });
});
