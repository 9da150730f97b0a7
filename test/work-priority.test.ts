/**
 * queue.nice against a running `backer daemon` process: while a backup runs, its middleware
 * programs (zstd, ccrypt) and its checksum thread run 10 nice steps below the daemon (the
 * default), the daemon's main thread keeps its priority, and the backup succeeds.
 */
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { callApi } from '../src/cli/client.js';
import type { Job } from '../src/queue/types.js';
import { jobEnded, spawnDaemon, waitForHealth, type DaemonProcess } from './helpers/daemon-proc.js';
import { createTestEnv, filesMandateYaml, type TestEnv } from './helpers/env.js';
import { childPids } from './middleware/suite.js';

const M = `nice-${randomBytes(3).toString('hex')}`;
let env: TestEnv;
let socket: string;
let daemon: DaemonProcess;

/** Field `n` (1-based, as in proc(5)) of a /proc stat file, or undefined once it is gone. */
function statField(path: string, n: number): string | undefined {
  try {
    const stat = readFileSync(path, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[n - 3];
  } catch {
    return undefined; // exited while we looked
  }
}

function comm(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch {
    return undefined;
  }
}

beforeAll(async () => {
  // zstd at level 19 on incompressible bytes: slow enough to be seen running.
  const extra = `  - { name: slow, type: zstd, level: 19, threads: 1 }\nmandates:\n${filesMandateYaml(M, 'NICE_DIR', { target: 'local', middleware: 'slow,encryption' })}`;
  env = await createTestEnv('nice', extra, '', { docker: false });
  const files = join(env.dir, 'files');
  await mkdir(files, { recursive: true });
  await writeFile(join(files, 'random.bin'), randomBytes(6 * 1024 * 1024));
  socket = join(env.dir, 'data', 'backer.sock');
  daemon = spawnDaemon(env.configPath, { env: { NICE_DIR: files } });
  await waitForHealth(daemon, socket);
}, 60_000);

afterAll(async () => {
  expect(await daemon.stop()).toBe(0);
  await rm(env.dir, { recursive: true, force: true });
});

it('runs the middleware programs and the checksum thread 10 steps below the daemon, its main thread unchanged', async () => {
  const pid = daemon.child.pid ?? 0;
  const own = Number(statField(`/proc/${pid}/stat`, 19));
  const lowered = String(Math.min(19, own + 10));
  const { job: queued } = await callApi<{ job: Job }>(socket, 'POST', `/v1/mandates/${M}/backups`);
  const seen = new Map<string, string>();
  // Until every one was seen at its lowered priority, or the backup ended.
  for (const deadline = Date.now() + 60_000; Date.now() < deadline && seen.size < 3; await sleep(20)) {
    for (const child of childPids(pid)) {
      const name = comm(`/proc/${child}/comm`);
      const nice = statField(`/proc/${child}/stat`, 19);
      if ((name === 'zstd' || name === 'ccrypt') && nice !== undefined) seen.set(name, nice);
    }
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      const nice = statField(`/proc/${pid}/task/${tid}/stat`, 19);
      if (comm(`/proc/${pid}/task/${tid}/comm`) === 'WorkerThread' && nice === lowered) seen.set('checksum thread', nice);
    }
    if ([...seen.values()].some((n) => n !== lowered)) break;
    const { job } = await callApi<{ job: Job }>(socket, 'GET', `/v1/jobs/${queued.id}`);
    if (job.state !== 'queued' && job.state !== 'running') break;
  }
  expect(Object.fromEntries(seen)).toEqual({ zstd: lowered, ccrypt: lowered, 'checksum thread': lowered });
  expect(statField(`/proc/${pid}/stat`, 19)).toBe(String(own));
  const job = await jobEnded(socket, queued.id);
  expect(job.state, JSON.stringify(job)).toBe('succeeded');
  expect(daemon.output()).not.toMatch(/unexpected error|unhandled/i);
}, 120_000);
