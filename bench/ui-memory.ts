/**
 * Web UI memory benchmark (issue 12): the daemon's memory with the UI open. A real `backer daemon`
 * process (from source, through tsx, Docker off) with `api.listen` and one static files mandate
 * (random data through gzip to a local target) is backed up back to back for `--minutes`, so the
 * live stream carries job events and progress all along. Runs alternate: A, no browser (the
 * baseline); B, the UI open in Debian's chromium on the overview, signed in, following the stream
 * (each event makes the page re-read mandates, jobs, queue and targets). A B A B …, each run with
 * a fresh data_dir. Per run: the daemon's VmHWM, the median and the maximum of its VmRSS sampled
 * every second, the backups done; printed as median (min–max) over the rounds, with the load
 * average.
 *
 *   node --import tsx bench/ui-memory.ts [--minutes 2] [--rounds 2] [--size-mb 64]
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { Browser } from 'playwright-core';
import { newToken } from '../src/api/auth.js';
import { callApi } from '../src/cli/client.js';
import { buildWebApp, freePort, launchChromium, signInPage } from '../test/helpers/browser.js';

const { values } = parseArgs({
  options: {
    minutes: { type: 'string', default: '2' },
    rounds: { type: 'string', default: '2' },
    'size-mb': { type: 'string', default: '64' },
  },
});
const RUN_MS = Number(values.minutes) * 60_000;
const ROUNDS = Number(values.rounds);
const SIZE_MB = Number(values['size-mb']);
const MANDATE = 'ui-bench';

interface RunResult {
  hwmMiB: number;
  rssMedianMiB: number;
  rssMaxMiB: number;
  backups: number;
  /** API requests the page made during the run (re-reads after events): 0 without a browser. */
  requests: number;
  load: number;
}

interface Setup {
  root: string;
  filesDir: string;
  token: { token: string; sha256: string };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function statusKiB(pid: number, field: 'VmHWM' | 'VmRSS'): Promise<number> {
  const text = await readFile(`/proc/${pid}/status`, 'utf8');
  const kib = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text)?.[1];
  if (kib === undefined) throw new Error(`no ${field} in /proc/${pid}/status`);
  return Number(kib);
}

/** A fresh data_dir and config for one run, on a free port. */
async function writeConfig(setup: Setup, run: number): Promise<{ dir: string; port: number }> {
  const dir = join(setup.root, `run-${run}`);
  await mkdir(dir, { recursive: true });
  const port = await freePort();
  const yaml = [
    `data_dir: ${dir}/data`,
    'log:\n  level: warn',
    'docker:\n  enabled: false',
    `ui:\n  dir: ${setup.root}/web`,
    `api:\n  listen: 127.0.0.1:${port}\n  tokens:\n    - { name: bench-read, token_sha256: ${setup.token.sha256}, scope: read }`,
    `targets:\n  - name: local\n    type: local\n    path: ${dir}/backups\n    default: true`,
    'middleware:\n  - name: compression\n    type: gzip\n    level: 6',
    `mandates:\n  ${MANDATE}:\n    type: files\n    interval: "0 0 29 2 *"\n    target: local\n    middleware: compression\n    retention: 3\n    files:\n      path: ${setup.filesDir}`,
  ].join('\n');
  await writeFile(join(dir, 'backer.yml'), `${yaml}\n`);
  return { dir, port };
}

async function waitForHealth(socket: string): Promise<void> {
  for (let i = 0; ; i++) {
    if (await callApi<{ status: string }>(socket, 'GET', '/v1/health').then((h) => h.status === 'ok', () => false)) return;
    if (i > 600) throw new Error('the daemon did not answer');
    await sleep(100);
  }
}

/** Backs the mandate up again and again until `end`; the number of backups that succeeded. */
async function backupsUntil(socket: string, end: number): Promise<number> {
  let done = 0;
  while (Date.now() < end) {
    const { job } = await callApi<{ job: { id: string } }>(socket, 'POST', `/v1/mandates/${MANDATE}/backups`);
    let finished = { state: 'queued', error: null as { message: string } | null };
    while (finished.state === 'queued' || finished.state === 'running') {
      finished = (await callApi<{ job: typeof finished }>(socket, 'GET', `/v1/jobs/${job.id}?wait=300`)).job;
    }
    if (finished.state !== 'succeeded') throw new Error(`backup ${job.id} ${finished.state}: ${finished.error?.message ?? ''}`);
    done += 1;
  }
  return done;
}

/** VmRSS every second while `work` runs: the samples in KiB. */
async function sampleRss(pid: number, work: Promise<number>): Promise<{ samples: number[]; backups: number }> {
  const samples: number[] = [];
  let finished = false;
  const tracked = work.finally(() => (finished = true));
  while (!finished) {
    samples.push(await statusKiB(pid, 'VmRSS'));
    await Promise.race([sleep(1000), tracked.catch(() => undefined)]);
  }
  return { samples, backups: await tracked };
}

async function run(setup: Setup, index: number, browser: Browser | null): Promise<RunResult> {
  const { dir, port } = await writeConfig(setup, index);
  const socket = join(dir, 'data', 'backer.sock');
  const main = join(import.meta.dirname, '..', 'src', 'cli', 'main.ts');
  const daemon = spawn(process.execPath, ['--import', 'tsx', main, 'daemon', '--config', join(dir, 'backer.yml')], { stdio: 'inherit' });
  const closed = new Promise((r) => daemon.on('close', r));
  const page = browser === null ? null : await browser.newPage({ viewport: { width: 1280, height: 800 } });
  try {
    await waitForHealth(socket);
    let requests = 0;
    if (page !== null) {
      await signInPage(page, `http://127.0.0.1:${port}`, setup.token.token);
      await page.locator(`tr[data-mandate="${MANDATE}"]`).waitFor();
      page.on('request', (r) => (requests += new URL(r.url()).pathname.startsWith('/v1/') ? 1 : 0));
    }
    const pid = daemon.pid ?? 0;
    const { samples, backups } = await sampleRss(pid, backupsUntil(socket, Date.now() + RUN_MS));
    if (page !== null && (await page.getByTestId('disconnected').count()) > 0) throw new Error('the page lost its stream during the run');
    const sorted = samples.sort((a, b) => a - b);
    const median = sorted[Math.floor(sorted.length / 2)] ?? NaN;
    return { hwmMiB: (await statusKiB(pid, 'VmHWM')) / 1024, rssMedianMiB: median / 1024, rssMaxMiB: (sorted.at(-1) ?? NaN) / 1024, backups, requests, load: loadavg()[0] ?? NaN };
  } finally {
    await page?.close();
    daemon.kill('SIGTERM');
    await closed;
  }
}

function summary(values: number[], digits = 0): string {
  const sorted = [...values].sort((a, b) => a - b);
  const median = sorted[Math.floor(sorted.length / 2)] ?? NaN;
  return `${median.toFixed(digits)} (${(sorted[0] ?? NaN).toFixed(digits)}–${(sorted.at(-1) ?? NaN).toFixed(digits)})`.padEnd(20);
}

function report(name: string, runs: RunResult[]): void {
  const columns = [summary(runs.map((r) => r.hwmMiB)), summary(runs.map((r) => r.rssMedianMiB)), summary(runs.map((r) => r.rssMaxMiB)), summary(runs.map((r) => r.backups)), summary(runs.map((r) => r.requests)), summary(runs.map((r) => r.load), 1)];
  console.log(`${name.padEnd(12)} ${columns.join(' ')}`);
}

async function main(): Promise<void> {
  const root = await mkdtemp(join(tmpdir(), 'bk-bench-ui-'));
  const setup: Setup = { root, filesDir: join(root, 'files'), token: newToken() };
  let browser: Browser | null = null;
  try {
    await mkdir(setup.filesDir);
    // Random (incompressible) data: each backup streams SIZE_MB through gzip and the hashes.
    await writeFile(join(setup.filesDir, 'random.bin'), randomBytes(SIZE_MB * 1024 * 1024));
    // A private build (ui.dir): other work rebuilding dist/web meanwhile does not disturb the page.
    await buildWebApp(join(root, 'web'));
    browser = await launchChromium();
    const results = { off: [] as RunResult[], on: [] as RunResult[] };
    for (let round = 0; round < ROUNDS; round++) {
      results.off.push(await run(setup, round * 2, null));
      results.on.push(await run(setup, round * 2 + 1, browser));
      console.log(`round ${round + 1}/${ROUNDS} done (load average ${loadavg().map((l) => l.toFixed(2)).join(' ')})`);
    }
    console.log(`median (min–max) over ${ROUNDS} rounds of ${values.minutes} min, backups of ${SIZE_MB} MiB back to back (gzip, local target)`);
    console.log(`${''.padEnd(12)} ${['VmHWM MiB', 'RSS median MiB', 'RSS max MiB', 'backups', 'page API requests', 'load (1 min)'].map((h) => h.padEnd(20)).join(' ')}`);
    report('no browser', results.off);
    report('UI open', results.on);
  } finally {
    await browser?.close();
    await rm(root, { recursive: true, force: true });
  }
}

await main();
