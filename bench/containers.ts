/**
 * Benchmark 8 (issue 11): 500 labelled containers. A private dockerd with N cheap `sleep`
 * containers labelled as sqlite mandates (never run: their schedule fires on 29 February), a local
 * target holding 10,000 stored backups, and a real `backer daemon` process (from source, through
 * tsx). Per round, interleaved with a baseline daemon (Docker off, no mandate, no backup):
 *
 * - start-up: spawn → API answering (GET /v1/health) → all N mandates scheduled (GET /v1/mandates
 *   lists each with a next_run);
 * - reconcile: one container relabelled (removed, created again with another backer.interval,
 *   started) → GET /v1/mandates/NAME shows the new interval with a next run; `--changes` times;
 * - p50/p99 of GET /v1/mandates, GET /v1/backups?limit=50 and GET /v1/health (the baseline of the
 *   API's own cost) over `--requests` sequential requests each;
 * - the daemon's CPU while idle for `--idle-seconds` (/proc/PID/stat utime+stime), in % of one
 *   core; the baseline daemon's idle CPU the same way.
 *
 *   node --import tsx bench/containers.ts [--containers 500] [--backups 10000] [--requests 1000]
 *                                         [--idle-seconds 60] [--changes 5] [--rounds 3]
 *                                         [--cpu-prof DIR] [--log-level info] [--inspect-concurrency 4,8,16,32]
 *
 * `--before-src DIR` adds a variant, interleaved with the others in every round: the daemon of
 * another checkout (e.g. a copy of src/ before a change, with node_modules linked), with the
 * listing index off (BACKER_INTERNAL_LISTING_INDEX=off) and `--before-requests` requests per
 * figure: the "before" of bench/README.md, measured on the same containers in the same run
 * (`--before-listing-index on` keeps the index on: a before of other changes).
 *
 * Starts its own dockerd and stops it; needs what ./scripts/install-deps installs (docker.io).
 */
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import Docker from 'dockerode';
import { callApi } from '../src/cli/client.js';
import { buildHostImage, HOST_IMAGE, startDockerd } from '../test/setup/services.js';
import { cpuSeconds, latencies, writeBackups } from './listing-data.js';

const { values } = parseArgs({
  options: {
    containers: { type: 'string', default: '500' },
    backups: { type: 'string', default: '10000' },
    requests: { type: 'string', default: '1000' },
    'idle-seconds': { type: 'string', default: '60' },
    changes: { type: 'string', default: '5' },
    rounds: { type: 'string', default: '3' },
    'before-src': { type: 'string' },
    'before-requests': { type: 'string', default: '100' },
    /** The before variant's listing index (BACKER_INTERNAL_LISTING_INDEX): off (the "before" of the listing index) or on. */
    'before-listing-index': { type: 'string', default: 'off' },
    /** Which daemon starts first in each round after the baseline: `before` (default) or `now`. */
    order: { type: 'string', default: 'before' },
    /** Each container daemon runs with `node --cpu-prof --cpu-prof-dir DIR` (profiles written when it stops). */
    'cpu-prof': { type: 'string' },
    /** Before the rounds: list + inspect every labelled container at each of these concurrencies (e.g. 4,8,16,32), interleaved, 5 times. */
    'inspect-concurrency': { type: 'string' },
    /** The daemons' log level; `info` shows the start-up time marks (`startup: … ms`). */
    'log-level': { type: 'string', default: 'warn' },
  },
});
const N = Number(values.containers);
const BACKUPS = Number(values.backups);
const REQUESTS = Number(values.requests);
const IDLE_S = Number(values['idle-seconds']);
const CHANGES = Number(values.changes);
const ROUNDS = Number(values.rounds);
const CPU_PROF = values['cpu-prof'];
const LOG_LEVEL = values['log-level'];
const NEVER = '0 0 29 2 *';
const names = Array.from({ length: N }, (_, i) => `bc-${String(i).padStart(3, '0')}`);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function runContainer(docker: Docker, name: string, interval: string): Promise<void> {
  const labels = { 'backer.enabled': 'true', 'backer.type': 'sqlite', 'backer.sqlite.path': '/data/app.db', 'backer.interval': interval };
  const c = await docker.createContainer({ name, Image: HOST_IMAGE, Cmd: ['sleep', 'infinity'], Labels: labels, HostConfig: { Binds: ['/usr:/usr:ro'], NetworkMode: 'none' } });
  await c.start();
}

async function createAll(docker: Docker): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    for (let i = next++; i < names.length; i = next++) await runContainer(docker, names[i] ?? '', NEVER);
  };
  await Promise.all(Array.from({ length: 8 }, worker));
}

async function writeConfig(path: string, dataDir: string, dockerSocket: string | null, backupsDir: string): Promise<void> {
  const docker = dockerSocket === null ? 'enabled: false' : `socket_path: ${dockerSocket}`;
  await writeFile(path, `data_dir: ${dataDir}\nlog:\n  level: ${LOG_LEVEL}\ndocker:\n  ${docker}\ntargets:\n  - name: local\n    type: local\n    path: ${backupsDir}\n    default: true\n`);
}

interface Daemon {
  pid: number;
  socket: string;
  spawnedAt: number;
  stop(): Promise<void>;
}

interface Variant {
  label: string;
  /** The checkout whose src/cli/main.ts runs. */
  root: string;
  env: Record<string, string>;
  requests: number;
}

const current: Variant = { label: 'now', root: join(import.meta.dirname, '..'), env: {}, requests: REQUESTS };
const before: Variant[] = values['before-src'] === undefined ? [] : [{ label: 'before', root: values['before-src'], env: { BACKER_INTERNAL_LISTING_INDEX: values['before-listing-index'] }, requests: Number(values['before-requests']) }];
const variants: Variant[] = values.order === 'now' ? [current, ...before] : [...before, current];

function spawnDaemon(configPath: string, socket: string, variant: Variant = current, profile = false): Daemon {
  const spawnedAt = performance.now();
  const main = join(variant.root, 'src', 'cli', 'main.ts');
  const prof = profile && CPU_PROF !== undefined ? ['--cpu-prof', '--cpu-prof-dir', CPU_PROF] : [];
  const child = spawn(process.execPath, [...prof, '--import', 'tsx', main, 'daemon', '--config', configPath], { stdio: 'inherit', cwd: variant.root, env: { ...process.env, ...variant.env } });
  const closed = new Promise((r) => child.on('close', r));
  return {
    pid: child.pid ?? 0,
    socket,
    spawnedAt,
    stop: async () => {
      child.kill('SIGTERM');
      await closed;
    },
  };
}

/** Polls `check` every 20 ms; the ms from `since` until it held. */
async function timeUntil(check: () => Promise<boolean>, since: number, what: string, timeoutMs = 120_000): Promise<number> {
  for (;;) {
    if (await check().catch(() => false)) return performance.now() - since;
    if (performance.now() - since > timeoutMs) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await sleep(20);
  }
}

interface MandateList {
  mandates: { name: string; next_run: string | null }[];
}

const allScheduled = async (socket: string): Promise<boolean> => {
  const list = await callApi<MandateList>(socket, 'GET', '/v1/mandates');
  const mine = new Set(names);
  return list.mandates.filter((m) => mine.has(m.name) && m.next_run !== null).length === N;
};

/** Relabels one container (removed, created again with `interval`) and times until the API shows it. */
async function relabel(docker: Docker, socket: string, name: string, interval: string): Promise<number> {
  await docker.getContainer(name).remove({ force: true });
  await runContainer(docker, name, interval);
  const t0 = performance.now();
  return timeUntil(async () => {
    const detail = await callApi<{ mandate: { interval: string }; next_run: string | null }>(socket, 'GET', `/v1/mandates/${name}`);
    return detail.mandate.interval === interval && detail.next_run !== null;
  }, t0, `relabel ${name}`);
}

/** % of one core the process used over `seconds` of idling. */
async function idleCpu(pid: number, seconds: number): Promise<number> {
  const before = await cpuSeconds(pid);
  await sleep(seconds * 1000);
  return ((await cpuSeconds(pid)) - before) / seconds * 100;
}

/** What discovery's first snapshot does with Docker (src/discovery/snapshot.ts): one list, then inspections `concurrency` at a time. */
async function listAndInspect(docker: Docker, concurrency: number): Promise<number> {
  const t0 = performance.now();
  const labelled = (await docker.listContainers({ all: true })).filter((c) => Object.keys(c.Labels ?? {}).some((k) => k.startsWith('backer.')));
  let next = 0;
  const worker = async (): Promise<void> => {
    for (let i = next++; i < labelled.length; i = next++) await docker.getContainer(labelled[i]?.Id ?? '').inspect();
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return performance.now() - t0;
}

/** `--inspect-concurrency`: the list + inspections at each concurrency, interleaved, with the load average. */
async function inspectProbe(docker: Docker, concurrencies: number[]): Promise<void> {
  const f: Figures = {};
  for (let i = 0; i < 5; i++) for (const c of concurrencies) add(f, `list + inspect, ${c} at a time, ms`, await listAndInspect(docker, c));
  report(f, [loadavg()[0] ?? NaN], `${N} containers: Docker list + inspections`);
}

type Figures = Record<string, number[]>;
const add = (f: Figures, key: string, value: number): void => void (f[key] ??= []).push(value);

async function baselineRound(dir: string, f: Figures): Promise<void> {
  const config = join(dir, 'baseline.yml');
  await writeConfig(config, join(dir, 'data-baseline'), null, join(dir, 'empty'));
  const daemon = spawnDaemon(config, join(dir, 'data-baseline', 'backer.sock'));
  try {
    add(f, 'baseline: API answering ms', await timeUntil(async () => (await callApi<{ status: string }>(daemon.socket, 'GET', '/v1/health')).status === 'ok', daemon.spawnedAt, 'baseline health'));
    add(f, 'baseline: CPU s to API answering', await cpuSeconds(daemon.pid));
    add(f, 'baseline: GET /v1/health p99 ms', (await latencies(daemon.socket, '/v1/health', REQUESTS)).p99);
    await sleep(3000);
    add(f, 'baseline: idle CPU %', await idleCpu(daemon.pid, IDLE_S));
  } finally {
    await daemon.stop();
  }
}

async function containersRound(dir: string, docker: Docker, dockerSocket: string, round: number, variant: Variant, f: Figures): Promise<void> {
  const config = join(dir, 'backer.yml');
  // A state directory per variant: each finds its own state.db of the round before (none in round 1).
  const data = join(dir, `data-${variant.label}`);
  await writeConfig(config, data, dockerSocket, join(dir, 'backups'));
  const daemon = spawnDaemon(config, join(data, 'backer.sock'), variant, true);
  const put = (key: string, value: number): void => add(f, `${variant.label}: ${key}`, value);
  const requests = (path: string): Promise<{ p50: number; p99: number }> => latencies(daemon.socket, path, variant.requests);
  try {
    const answering = await timeUntil(async () => (await callApi<{ status: string }>(daemon.socket, 'GET', '/v1/health')).status === 'ok', daemon.spawnedAt, 'health');
    put('API answering ms', answering);
    const scheduled = await timeUntil(() => allScheduled(daemon.socket), daemon.spawnedAt, 'all scheduled');
    put(`all ${N} scheduled ms (from spawn)`, scheduled);
    // CPU next to the wall time: on a shared machine the wall time is mostly waiting for a core.
    put(`CPU s to all ${N} scheduled`, await cpuSeconds(daemon.pid));
    // The API answers once start-up is done (mandates scheduled): what 500 containers add is the
    // difference to the empty daemon's start in the same round (process and tsx start-up alike).
    put(`all ${N} scheduled ms (over the empty daemon)`, scheduled - (f['baseline: API answering ms']?.at(-1) ?? NaN));
    for (let i = 0; i < CHANGES; i++) {
      const name = names[(round * CHANGES + i * 37 + (variant === current ? 7 : 0)) % N] ?? '';
      put('relabel reconciled ms', await relabel(docker, daemon.socket, name, `${(round * 10 + i + 1) % 60} ${variant === current ? 4 : 5} 29 2 *`));
      await sleep(500);
    }
    put('GET /v1/health p99 ms', (await requests('/v1/health')).p99);
    const mandates = await requests('/v1/mandates');
    put('GET /v1/mandates p50 ms', mandates.p50);
    put('GET /v1/mandates p99 ms', mandates.p99);
    const backups = await requests('/v1/backups?limit=50');
    put('GET /v1/backups?limit=50 p50 ms', backups.p50);
    put('GET /v1/backups?limit=50 p99 ms', backups.p99);
    await sleep(3000);
    put(`idle CPU % (${N} mandates)`, await idleCpu(daemon.pid, IDLE_S));
  } finally {
    await daemon.stop();
  }
}

function report(f: Figures, loads: number[], title = `${N} containers, ${BACKUPS} stored backups, ${REQUESTS} requests per figure, ${IDLE_S} s idle, ${ROUNDS} rounds`): void {
  console.log(`\n${title}; median (min–max); load average per round ${loads.map((l) => l.toFixed(2)).join(', ')}`);
  for (const [key, samples] of Object.entries(f)) {
    const sorted = [...samples].sort((a, b) => a - b);
    const median = sorted[Math.floor(sorted.length / 2)] ?? NaN;
    console.log(`  ${key.padEnd(36)} ${median.toFixed(2).padStart(9)} (${(sorted[0] ?? NaN).toFixed(2)}–${(sorted.at(-1) ?? NaN).toFixed(2)})`);
  }
}

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'bk-bench-ctr-'));
  const dockerd = await startDockerd();
  try {
    await buildHostImage(dockerd.host);
    const docker = new Docker({ socketPath: dockerd.socketPath });
    let t0 = performance.now();
    await createAll(docker);
    console.log(`${N} containers running in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    t0 = performance.now();
    await mkdir(join(dir, 'empty'), { recursive: true });
    await writeBackups(join(dir, 'backups'), BACKUPS, names.slice(0, 50));
    console.log(`${BACKUPS} backups written in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    if (values['inspect-concurrency'] !== undefined) await inspectProbe(docker, values['inspect-concurrency'].split(',').map(Number));
    const f: Figures = {};
    const loads: number[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      await baselineRound(dir, f);
      for (const variant of variants) await containersRound(dir, docker, dockerd.socketPath, round, variant, f);
      loads.push(loadavg()[0] ?? NaN);
      console.log(`round ${round + 1}/${ROUNDS} done (load average ${loads.at(-1)?.toFixed(2)})`);
      // The figures so far: a long run cut short still leaves them.
      if (round + 1 < ROUNDS) report(f, loads);
    }
    report(f, loads);
  } finally {
    await dockerd.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
