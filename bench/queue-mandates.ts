/**
 * Queue benchmark: a real `backer daemon` process with N static files mandates (default 200) on
 * four local targets of concurrency 1, queue.concurrency 4. Every mandate is triggered at once
 * through the API; the script waits for all jobs and prints the wall time, jobs per second, and
 * the daemon's peak RSS (VmHWM) next to its RSS when idle with the same mandates (the baseline,
 * measured in the same run before the jobs), so the memory the queue and 200 jobs add is visible.
 *
 *   node --import tsx bench/queue-mandates.ts [--mandates 200]
 */
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { callApi } from '../src/cli/client.js';
import { TERMINAL_STATES, type AnyJob } from '../src/queue/types.js';

const { values } = parseArgs({ options: { mandates: { type: 'string', default: '200' } } });
const COUNT = Number(values.mandates);
const TARGETS = 4;
const MIB = 1024 * 1024;

async function status(pid: number, field: 'VmRSS' | 'VmHWM'): Promise<number> {
  const text = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? NaN);
  return (kb * 1024) / MIB;
}

async function waitForSocket(socket: string): Promise<void> {
  for (let i = 0; i < 300; i++) {
    if (await callApi<{ status: string }>(socket, 'GET', '/v1/health').then((h) => h.status === 'ok', () => false)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('the daemon did not answer');
}

/** Waits (the API's longest wait, again and again) until the job ended. */
async function finished(socket: string, id: string): Promise<AnyJob> {
  for (;;) {
    const { job } = await callApi<{ job: AnyJob }>(socket, 'GET', `/v1/jobs/${id}?wait=300`);
    if (TERMINAL_STATES.has(job.state)) return job;
  }
}

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'bk-bench-queue-'));
  await mkdir(join(dir, 'files'));
  await writeFile(join(dir, 'files', 'a.txt'), 'a small file\n'.repeat(1000));
  const targets = Array.from({ length: TARGETS }, (_, t) => `  - name: t${t}\n    type: local\n    path: ${dir}/backups-${t}\n    concurrency: 1\n`).join('');
  const mandates = Array.from({ length: COUNT }, (_, i) => `  m${i}:\n    type: files\n    interval: "0 0 29 2 *"\n    target: t${i % TARGETS}\n    files:\n      path: ${dir}/files\n`).join('');
  await writeFile(join(dir, 'backer.yml'), `data_dir: ${dir}/data\nlog:\n  level: warn\ndocker:\n  enabled: false\nqueue:\n  concurrency: 4\ntargets:\n${targets}mandates:\n${mandates}`);
  const socket = join(dir, 'data', 'backer.sock');
  const daemon = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, '..', 'src', 'cli', 'main.ts'), 'daemon', '--config', join(dir, 'backer.yml')], { stdio: 'inherit' });
  const pid = daemon.pid ?? 0;
  try {
    await waitForSocket(socket);
    await new Promise((r) => setTimeout(r, 1000));
    const idle = await status(pid, 'VmRSS');
    const start = Date.now();
    const jobs: AnyJob[] = [];
    for (let i = 0; i < COUNT; i++) jobs.push((await callApi<{ job: AnyJob }>(socket, 'POST', `/v1/mandates/m${i}/backups`)).job);
    const done = await Promise.all(jobs.map((j) => finished(socket, j.id)));
    const seconds = (Date.now() - start) / 1000;
    const failed = done.filter((j) => j.state !== 'succeeded').length;
    const peak = await status(pid, 'VmHWM');
    console.log(`${COUNT} mandates, concurrency 4, 4 targets × 1`);
    console.log(`  idle daemon RSS     ${idle.toFixed(0).padStart(5)} MiB  (baseline, same mandates, no job yet)`);
    console.log(`  peak RSS (VmHWM)    ${peak.toFixed(0).padStart(5)} MiB  (+${(peak - idle).toFixed(0)} MiB over idle)`);
    console.log(`  wall time           ${seconds.toFixed(1).padStart(5)} s    ${(COUNT / seconds).toFixed(1)} jobs/s, ${failed} failed`);
  } finally {
    daemon.kill('SIGTERM');
    await new Promise((r) => daemon.once('close', r));
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
