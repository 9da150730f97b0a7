/**
 * Listing benchmark: a real `backer daemon` process (Docker off) with N static files mandates and
 * 10,000 stored backups on a local target (manifests and tiny artifacts written straight to the
 * directory). Per run: the latency of the first GET /v1/backups?limit=50 (cold: nothing cached),
 * then p50/p99 of GET /v1/backups?limit=50 and GET /v1/mandates over R requests each (warm), and
 * the daemon's peak RSS. Runs alternate without the manifest cache (A, the internal
 * BACKER_INTERNAL_MANIFEST_CACHE=off), with the cache but without the listing index (B,
 * BACKER_INTERNAL_LISTING_INDEX=off: every call lists the target) and with both (C, the default),
 * A B C A B C …; the median and the spread (min–max) over the rounds are printed, with the load
 * average.
 *
 *   node --import tsx bench/api-listing.ts [--backups 10000] [--mandates 50] [--requests 1000]
 *                                          [--baseline-requests 50] [--cache-requests 200] [--rounds 3]
 */
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { callApi } from '../src/cli/client.js';
import { latencies, timedCall, vmHwmMiB, writeBackups } from './listing-data.js';

const { values } = parseArgs({
  options: {
    backups: { type: 'string', default: '10000' },
    mandates: { type: 'string', default: '50' },
    requests: { type: 'string', default: '1000' },
    'baseline-requests': { type: 'string', default: '50' },
    'cache-requests': { type: 'string', default: '200' },
    rounds: { type: 'string', default: '3' },
  },
});
const BACKUPS = Number(values.backups);
const MANDATES = Number(values.mandates);
const REQUESTS = Number(values.requests);
const BASELINE_REQUESTS = Number(values['baseline-requests']);
const CACHE_REQUESTS = Number(values['cache-requests']);
const ROUNDS = Number(values.rounds);

interface RunResult {
  cold: number;
  backups: { p50: number; p99: number };
  mandates: { p50: number; p99: number };
  hwmMiB: number;
}

async function config(dir: string): Promise<void> {
  await mkdir(join(dir, 'files'), { recursive: true });
  const mandates = Array.from({ length: MANDATES }, (_, i) => `  m${i}:\n    type: files\n    interval: "0 0 29 2 *"\n    target: local\n    files:\n      path: ${dir}/files\n`).join('');
  const targets = `  - name: local\n    type: local\n    path: ${dir}/backups\n    default: true\n`;
  await writeFile(join(dir, 'backer.yml'), `data_dir: ${dir}/data\nlog:\n  level: warn\ndocker:\n  enabled: false\ntargets:\n${targets}mandates:\n${mandates}`);
}

type Variant = 'no cache' | 'cache only' | 'cache+index';
const VARIANTS: readonly Variant[] = ['no cache', 'cache only', 'cache+index'];

async function runDaemon(dir: string, variant: Variant): Promise<RunResult> {
  const socket = join(dir, 'data', 'backer.sock');
  const env = { ...process.env, BACKER_INTERNAL_MANIFEST_CACHE: variant === 'no cache' ? 'off' : 'on', BACKER_INTERNAL_LISTING_INDEX: variant === 'cache+index' ? 'on' : 'off' };
  const daemon = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, '..', 'src', 'cli', 'main.ts'), 'daemon', '--config', join(dir, 'backer.yml')], { stdio: 'inherit', env });
  const closed = new Promise((r) => daemon.on('close', r));
  try {
    for (let i = 0; ; i++) {
      if (await callApi<{ status: string }>(socket, 'GET', '/v1/health').then((h) => h.status === 'ok', () => false)) break;
      if (i > 300) throw new Error('the daemon did not answer');
      await new Promise((r) => setTimeout(r, 100));
    }
    const n = variant === 'cache+index' ? REQUESTS : variant === 'cache only' ? CACHE_REQUESTS : BASELINE_REQUESTS;
    const cold = await timedCall(socket, '/v1/backups?limit=50');
    const backups = await latencies(socket, '/v1/backups?limit=50', n);
    const mandates = await latencies(socket, '/v1/mandates', n);
    return { cold, backups, mandates, hwmMiB: await vmHwmMiB(daemon.pid ?? 0) };
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
      name.padEnd(12),
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
    await writeBackups(join(dir, 'backups'), BACKUPS, Array.from({ length: MANDATES }, (_, m) => `m${m}`));
    await config(dir);
    console.log(`${BACKUPS} backups of ${MANDATES} mandates written in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    const results = new Map<Variant, RunResult[]>(VARIANTS.map((v) => [v, []]));
    const loads: number[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      for (const v of VARIANTS) results.get(v)?.push(await runDaemon(dir, v));
      loads.push(loadavg()[0] ?? NaN);
      console.log(`round ${round + 1}/${ROUNDS} done (load average ${loads.at(-1)?.toFixed(2)})`);
    }
    console.log(
      `median (min–max) over ${ROUNDS} rounds; warm figures over ${BASELINE_REQUESTS} requests without the cache, ${CACHE_REQUESTS} with the cache only, ${REQUESTS} with cache and index; load average ${loads.map((l) => l.toFixed(2)).join(', ')}`,
    );
    for (const v of VARIANTS) report(v, results.get(v) ?? []);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
