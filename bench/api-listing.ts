/**
 * Listing benchmark: a real `backer daemon` process (Docker off) with N static files mandates and
 * 10,000 stored backups on a local target (manifests and tiny artifacts written straight to the
 * directory). Per run: the latency of the first GET /v1/backups?limit=50 (cold: nothing cached),
 * then p50/p99 of GET /v1/backups?limit=50 and GET /v1/mandates over R requests each (warm), and
 * the daemon's peak RSS. Runs alternate without the manifest cache (A, the internal
 * BACKER_INTERNAL_MANIFEST_CACHE=off) and with it (B), A B A B …; the median and the spread
 * (min–max) over the rounds are printed.
 *
 *   node --import tsx bench/api-listing.ts [--backups 10000] [--mandates 50] [--requests 1000]
 *                                          [--baseline-requests 50] [--rounds 3]
 */
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { callApi } from '../src/cli/client.js';
import { manifestBytes, storedFixture } from '../test/helpers/stored-backups.js';

const { values } = parseArgs({
  options: {
    backups: { type: 'string', default: '10000' },
    mandates: { type: 'string', default: '50' },
    requests: { type: 'string', default: '1000' },
    'baseline-requests': { type: 'string', default: '50' },
    rounds: { type: 'string', default: '3' },
  },
});
const BACKUPS = Number(values.backups);
const MANDATES = Number(values.mandates);
const REQUESTS = Number(values.requests);
const BASELINE_REQUESTS = Number(values['baseline-requests']);
const ROUNDS = Number(values.rounds);

interface RunResult {
  cold: number;
  backups: { p50: number; p99: number };
  mandates: { p50: number; p99: number };
  hwmMiB: number;
}

async function writeBackups(dir: string): Promise<void> {
  for (let m = 0; m < MANDATES; m++) await mkdir(join(dir, 'backups', `m${m}`), { recursive: true });
  const start = Date.UTC(2025, 0, 1);
  const batch: Promise<void>[] = [];
  for (let i = 0; i < BACKUPS; i++) {
    const mandate = `m${i % MANDATES}`;
    const f = storedFixture(mandate, `${mandate}-b${i}`, Buffer.from(`artifact ${i}\n`), new Date(start + i * 60_000), { name: 'local', type: 'local' });
    batch.push(writeFile(join(dir, 'backups', f.artifactKey), f.artifact), writeFile(join(dir, 'backups', f.manifestKey), manifestBytes(f)));
    if (batch.length >= 512) await Promise.all(batch.splice(0));
  }
  await Promise.all(batch);
}

async function config(dir: string): Promise<void> {
  await mkdir(join(dir, 'files'), { recursive: true });
  const mandates = Array.from({ length: MANDATES }, (_, i) => `  m${i}:\n    type: files\n    interval: "0 0 29 2 *"\n    target: local\n    files:\n      path: ${dir}/files\n`).join('');
  const targets = `  - name: local\n    type: local\n    path: ${dir}/backups\n    default: true\n`;
  await writeFile(join(dir, 'backer.yml'), `data_dir: ${dir}/data\nlog:\n  level: warn\ndocker:\n  enabled: false\ntargets:\n${targets}mandates:\n${mandates}`);
}

const percentile = (sorted: number[], p: number): number => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? NaN;

async function timed(socket: string, path: string): Promise<number> {
  const t0 = performance.now();
  await callApi(socket, 'GET', path);
  return performance.now() - t0;
}

async function latencies(socket: string, path: string, n: number): Promise<{ p50: number; p99: number }> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push(await timed(socket, path));
  out.sort((a, b) => a - b);
  return { p50: percentile(out, 50), p99: percentile(out, 99) };
}

async function hwm(pid: number): Promise<number> {
  const text = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/^VmHWM:\s+(\d+) kB/m.exec(text)?.[1] ?? NaN) / 1024;
}

async function runDaemon(dir: string, cache: boolean): Promise<RunResult> {
  const socket = join(dir, 'data', 'backer.sock');
  const env = { ...process.env, BACKER_INTERNAL_MANIFEST_CACHE: cache ? 'on' : 'off' };
  const daemon = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, '..', 'src', 'cli', 'main.ts'), 'daemon', '--config', join(dir, 'backer.yml')], { stdio: 'inherit', env });
  const closed = new Promise((r) => daemon.on('close', r));
  try {
    for (let i = 0; ; i++) {
      if (await callApi<{ status: string }>(socket, 'GET', '/v1/health').then((h) => h.status === 'ok', () => false)) break;
      if (i > 300) throw new Error('the daemon did not answer');
      await new Promise((r) => setTimeout(r, 100));
    }
    const n = cache ? REQUESTS : BASELINE_REQUESTS;
    const cold = await timed(socket, '/v1/backups?limit=50');
    const backups = await latencies(socket, '/v1/backups?limit=50', n);
    const mandates = await latencies(socket, '/v1/mandates', n);
    return { cold, backups, mandates, hwmMiB: await hwm(daemon.pid ?? 0) };
  } finally {
    daemon.kill('SIGTERM');
    await closed;
  }
}

function summary(label: string, values: number[]): string {
  const sorted = [...values].sort((a, b) => a - b);
  const median = sorted[Math.floor(sorted.length / 2)] ?? NaN;
  return `${label} ${median.toFixed(1)} (${(sorted[0] ?? NaN).toFixed(1)}–${(sorted.at(-1) ?? NaN).toFixed(1)})`;
}

function report(name: string, runs: RunResult[]): void {
  console.log(
    [
      name.padEnd(10),
      summary('cold ms', runs.map((r) => r.cold)),
      summary('| backups p50', runs.map((r) => r.backups.p50)),
      summary('p99', runs.map((r) => r.backups.p99)),
      summary('| mandates p50', runs.map((r) => r.mandates.p50)),
      summary('p99', runs.map((r) => r.mandates.p99)),
      summary('| VmHWM MiB', runs.map((r) => r.hwmMiB)),
    ].join(' '),
  );
}

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'bk-bench-listing-'));
  try {
    const t0 = performance.now();
    await writeBackups(dir);
    await config(dir);
    console.log(`${BACKUPS} backups of ${MANDATES} mandates written in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    const results = { off: [] as RunResult[], on: [] as RunResult[] };
    for (let round = 0; round < ROUNDS; round++) {
      results.off.push(await runDaemon(dir, false));
      results.on.push(await runDaemon(dir, true));
      console.log(`round ${round + 1}/${ROUNDS} done`);
    }
    console.log(`median (min–max) over ${ROUNDS} rounds; warm figures over ${BASELINE_REQUESTS} requests without the cache, ${REQUESTS} with it`);
    report('no cache', results.off);
    report('cache', results.on);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
