/**
 * `GET /v1/jobs/{id}?wait=` must leave nothing behind: not when the wait runs out, not when the
 * client goes away. Checked precisely in-process (the queue's pending waits) and against a real
 * daemon process whose heap must not grow over 1000 waits.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { createApi } from '../src/api/app.js';
import { createApiServer } from '../src/api/server.js';
import type { Discovery } from '../src/discovery/discovery.js';
import { BackerError } from '../src/errors.js';
import { SecretRegistry } from '../src/logging/logger.js';
import { createQueue, type Queue } from '../src/queue/queue.js';
import type { Job, JobOutcome } from '../src/queue/types.js';
import type { Target } from '../src/targets/types.js';
import { callApi } from '../src/cli/client.js';
import { cliArgs } from './helpers/cli.js';
import { backupJob, createTestEnv, testProcessEnv, type TestEnv } from './helpers/env.js';
import { docker, HOST_IMAGE } from './setup/services.js';

const host = (): string => inject('dockerHost');
const REDIS = `apiwait-redis-${Math.random().toString(36).slice(2, 8)}`;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A queue whose one job runs until it is cancelled, behind the real API. */
function inProcess(): { queue: Queue; app: ReturnType<typeof createApi>; job: Job } {
  const queue = createQueue({
    concurrency: 1,
    logger: pino({ level: 'silent' }),
    run: (_job, { signal }) =>
      new Promise<JobOutcome>((_resolve, reject) => {
        signal.addEventListener('abort', () => reject(new BackerError('JOB_CANCELLED', 'cancelled', { component: 'test' })), { once: true });
      }),
  });
  queue.start();
  const discovery: Discovery = {
    start: () => Promise.resolve(),
    current: () => ({ mandates: [], problems: [], docker_error: null, skipped: [] }),
    refresh: () => Promise.reject(new Error('unused')),
    close: () => Promise.resolve(),
  };
  const mandate = (): never => {
    throw new BackerError('MANDATE_NOT_FOUND', 'unused', { component: 'test' });
  };
  const app = createApi({
    services: { discovery, mandate, targets: new Map<string, Target>(), secrets: new SecretRegistry() },
    queue,
    scheduler: { nextRun: () => null },
  });
  const job = backupJob(queue.enqueue('slow', 'api'));
  return { queue, app, job };
}

const queues: Queue[] = [];
afterEach(async () => {
  await Promise.all(queues.splice(0).map((q) => q.close()));
});

describe('job waits in-process', () => {
  it('1000 waits that run out leave no listener behind', async () => {
    const { queue, app, job } = inProcess();
    queues.push(queue);
    for (let batch = 0; batch < 10; batch++) {
      const answers = await Promise.all(Array.from({ length: 100 }, async () => app.request(`/v1/jobs/${job.id}?wait=0.05`)));
      for (const res of answers) expect(((await res.json()) as { job: Job }).job.state).toBe('running');
      expect(queue.waiters()).toBe(0);
    }
    // A wait still ends when the job does.
    const waiting = app.request(`/v1/jobs/${job.id}?wait=30`);
    await sleep(20);
    expect(queue.waiters()).toBe(1);
    queue.cancel(job.id);
    expect(((await (await waiting).json()) as { job: Job }).job.state).toBe('cancelled');
    expect(queue.waiters()).toBe(0);
  });

  it('a client that goes away ends its wait (listener and timer) over a real socket', async () => {
    const { queue, app, job } = inProcess();
    queues.push(queue);
    const dir = await mkdtemp(join(tmpdir(), 'bk-apiwait-sock-'));
    const socketPath = join(dir, 'api.sock');
    const server = createApiServer(app, socketPath);
    await server.start();
    try {
      const clients = Array.from({ length: 50 }, () => {
        const req = request({ socketPath, method: 'GET', path: `/v1/jobs/${job.id}?wait=300` });
        req.on('error', () => undefined); // destroyed on purpose below
        req.end();
        return req;
      });
      for (let i = 0; i < 100 && queue.waiters() < 50; i++) await sleep(20);
      expect(queue.waiters()).toBe(50);
      for (const req of clients) req.destroy();
      for (let i = 0; i < 100 && queue.waiters() > 0; i++) await sleep(20);
      expect(queue.waiters()).toBe(0);
      // The server still answers, and the job is untouched.
      expect((await callApi<{ job: Job }>(socketPath, 'GET', `/v1/jobs/${job.id}`)).job.state).toBe('running');
    } finally {
      await server.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

/** Redis that waits 600 s before it sends the snapshot: a real backup that runs until it is cancelled. */
async function startSlowRedis(): Promise<void> {
  await docker(host(), [
    'run', '-d', '--name', REDIS, '--network', 'none', '-v', '/usr:/usr:ro', '-v', '/etc:/etc:ro',
    '--label', 'backer.enabled=true', '--label', 'backer.type=redis', '--label', 'backer.target=local', '--label', 'backer.interval=0 0 29 2 *',
    HOST_IMAGE, '/usr/bin/redis-server', '--port', '6379', '--bind', '127.0.0.1', '--dir', '/data', '--repl-diskless-sync', 'yes', '--repl-diskless-sync-delay', '600',
  ]);
  for (let i = 0; i < 150; i++) {
    if ((await docker(host(), ['exec', REDIS, 'redis-cli', 'PING']).catch(() => '')) === 'PONG') return;
    await sleep(200);
  }
  throw new Error(`redis in ${REDIS} did not answer PING`);
}

interface DaemonProcess {
  child: ChildProcess;
  output: () => string;
  socket: string;
  heap(): Promise<number>;
}

/** A real `backer daemon` process with a heap probe (gc + memoryUsage on SIGUSR2; no API). */
async function startDaemonProcess(env: TestEnv): Promise<DaemonProcess> {
  const heapFile = join(env.dir, 'heap.json');
  const probe = fileURLToPath(new URL('./helpers/heap-probe.ts', import.meta.url));
  const [, tsx, main, ...rest] = cliArgs(['daemon', '--config', env.configPath]);
  const child = spawn(process.execPath, ['--expose-gc', '--import', tsx ?? 'tsx', '--import', probe, main ?? '', ...rest], {
    env: { ...testProcessEnv(), BACKER_TEST_HEAP_FILE: heapFile },
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const socket = join(env.dir, 'data', 'backer.sock');
  for (let i = 0; i < 300 && !existsSync(socket); i++) await sleep(100);
  expect(existsSync(socket), out).toBe(true);
  const heap = async (): Promise<number> => {
    await rm(heapFile, { force: true });
    child.kill('SIGUSR2');
    for (let i = 0; i < 100 && !existsSync(heapFile); i++) await sleep(50);
    return (JSON.parse(await readFile(heapFile, 'utf8')) as { heapUsed: number }).heapUsed;
  };
  return { child, output: () => out, socket, heap };
}

async function waits(socket: string, id: string, total: number): Promise<void> {
  for (let done = 0; done < total; done += 100) {
    const answers = await Promise.all(Array.from({ length: 100 }, () => callApi<{ job: Job }>(socket, 'GET', `/v1/jobs/${id}?wait=0.05`)));
    for (const a of answers) expect(a.job.state).toBe('running');
  }
}

describe('job waits against a real daemon process', () => {
  let env: TestEnv;
  beforeAll(async () => {
    env = await createTestEnv('apiwait');
    await startSlowRedis();
  });
  afterAll(async () => {
    await docker(host(), ['rm', '-f', REDIS]).catch(() => undefined);
  });

  it('1000 waits that run out do not grow the heap; the daemon keeps answering', async () => {
    const daemon = await startDaemonProcess(env);
    try {
      let job: Job | undefined;
      for (let i = 0; i < 100 && !job; i++) {
        job = await callApi<{ job: Job }>(daemon.socket, 'POST', `/v1/mandates/${REDIS}/backups`).then((r) => r.job, () => undefined);
        if (!job) await sleep(200);
      }
      if (!job) throw new Error(`the daemon never discovered ${REDIS}: ${daemon.output()}`);
      const id = job.id;
      for (let i = 0; i < 100 && job.state !== 'running'; i++) ({ job } = await callApi<{ job: Job }>(daemon.socket, 'GET', `/v1/jobs/${id}?wait=0.1`));
      expect(job.state).toBe('running');

      await waits(daemon.socket, id, 1000); // warm-up: code paths compiled, pools and caches filled
      const before = await daemon.heap();
      await waits(daemon.socket, id, 2000);
      const after = await daemon.heap();
      // Measured: with the leak the heap grows by about 1 MB per 1000 waits (a listener, its
      // closure and promises each), so about 2 MB here; without it the heap stays within ~0.7 MB
      // of noise (allocator and JIT state) whatever the number of waits.
      expect(after - before).toBeLessThan(1024 * 1024);

      const cancelled = await callApi<{ job: Job }>(daemon.socket, 'POST', `/v1/jobs/${id}/cancel`);
      expect(cancelled.job.id).toBe(id);
      const end = await callApi<{ job: Job }>(daemon.socket, 'GET', `/v1/jobs/${id}?wait=60`);
      expect(end.job).toMatchObject({ state: 'cancelled', error: { code: 'JOB_CANCELLED' } });
      expect(await callApi<{ status: string }>(daemon.socket, 'GET', '/v1/health')).toMatchObject({ status: 'ok' });
      expect(daemon.output()).not.toContain('MaxListenersExceededWarning');
    } finally {
      daemon.child.kill('SIGTERM');
      const code = await new Promise<number | null>((resolve) => daemon.child.on('close', resolve));
      expect(code).toBe(0);
    }
  });
});
