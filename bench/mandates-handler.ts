/**
 * GET /v1/mandates in process (issue 11, benchmark 8's API figure without the socket and the
 * process around it): a daemon (createDaemon, Docker off) with N static `files` mandates that never
 * fire (no job history: the last-backup query still walks its index once per mandate). Times `--requests` sequential requests through the API app
 * (app.request) and prints p50/p99 beside GET /v1/health's (the floor), with CPU seconds and the
 * load average. `--cpu-prof` is node's own flag: run it as `node --cpu-prof --import tsx …`.
 *
 *   node --import tsx bench/mandates-handler.ts [--mandates 500] [--requests 2000]
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { createApi } from '../src/api/app.js';
import { loadConfigOrThrow } from '../src/config/load.js';
import { createDaemon } from '../src/daemon/daemon.js';

const { values } = parseArgs({
  options: {
    mandates: { type: 'string', default: '500' },
    requests: { type: 'string', default: '2000' },
  },
});
const N = Number(values.mandates);
const REQUESTS = Number(values.requests);

async function configFile(dir: string): Promise<string> {
  const mandates = Array.from({ length: N }, (_, i) => `  m-${String(i).padStart(3, '0')}:\n    type: files\n    interval: "0 0 29 2 *"\n    files:\n      path: ${dir}\n`).join('');
  const path = join(dir, 'backer.yml');
  await writeFile(path, `data_dir: ${join(dir, 'data')}\nlog:\n  level: warn\ndocker:\n  enabled: false\ntargets:\n  - name: local\n    type: local\n    path: ${join(dir, 'backups')}\n    default: true\nmandates:\n${mandates}`);
  return path;
}

type App = ReturnType<typeof createApi>;

async function timed(app: App, path: string, n: number): Promise<{ p50: number; p99: number }> {
  const ms: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    const res = await app.request(path);
    await res.text();
    if (res.status !== 200) throw new Error(`${path}: ${res.status}`);
    ms.push(performance.now() - t0);
  }
  ms.sort((a, b) => a - b);
  return { p50: ms[Math.floor(n / 2)] ?? NaN, p99: ms[Math.floor(n * 0.99)] ?? NaN };
}

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'bk-bench-mh-'));
  const path = await configFile(dir);
  const config = await loadConfigOrThrow(path, process.env);
  const daemon = createDaemon({ config, configFile: path, schedulesPaused: true });
  try {
    await daemon.start();
    const app = createApi({ services: daemon.services, queue: daemon.queue, scheduler: daemon.scheduler, status: daemon.status, usage: daemon.usage, readiness: daemon.readiness, events: daemon.events });
    const cpu0 = process.cpuUsage();
    const rounds: string[] = [];
    for (let round = 0; round < 3; round++) {
      const health = await timed(app, '/v1/health', REQUESTS / 4);
      const mandates = await timed(app, '/v1/mandates', REQUESTS);
      rounds.push(`round ${round + 1}: GET /v1/mandates p50 ${mandates.p50.toFixed(2)} p99 ${mandates.p99.toFixed(2)} ms; GET /v1/health p99 ${health.p99.toFixed(2)} ms`);
    }
    const cpu = process.cpuUsage(cpu0);
    console.log(`${N} mandates, ${REQUESTS} requests per round, load average ${loadavg()[0]?.toFixed(2)}, CPU ${((cpu.user + cpu.system) / 1e6).toFixed(2)} s`);
    for (const r of rounds) console.log(`  ${r}`);
  } finally {
    await daemon.close();
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
