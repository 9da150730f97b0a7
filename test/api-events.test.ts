/**
 * `GET /v1/events` (server-sent events). Against a real `backer daemon` process: a triggered backup
 * streams job.queued/started/succeeded and the mandate's status change; a long backup's
 * job.progress arrives at most twice a second until it is cancelled; clients that come and go leave
 * the daemon answering. In process, over a real HTTP server on a socket and the real event bus:
 * the bus's listener count returns to where it was when clients go away, progress is throttled
 * (the newest one sent late), secrets are scrubbed, pings keep the stream alive.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, open, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApi } from '../src/api/app.js';
import { eventStream, MAX_BACKLOG } from '../src/api/events.js';
import { createApiServer } from '../src/api/server.js';
import { createEventBus, type BackerEvent } from '../src/events/bus.js';
import { SecretRegistry } from '../src/logging/logger.js';
import { createMemoryJobStore } from '../src/queue/memory-store.js';
import { createQueue } from '../src/queue/queue.js';
import type { AnyJob } from '../src/queue/types.js';
import type { Target } from '../src/targets/types.js';
import { spawnDaemon, waitForHealth, type DaemonProcess } from './helpers/daemon-proc.js';
import { staticDiscovery } from './helpers/discovery.js';
import { createTestEnv, filesMandateYaml, type TestEnv } from './helpers/env.js';
import { jsonRequest } from './helpers/socket-http.js';
import { subscribe, type SseMessage } from './helpers/sse.js';

const ID = randomBytes(3).toString('hex');
const QUICK = `ev-quick-${ID}`;
const SLOW = `ev-slow-${ID}`;
const SECRET = `sse-secret-${ID}`;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

type Event = Extract<SseMessage, { kind: 'event' }>;
const events = (messages: SseMessage[]): Event[] => messages.filter((m): m is Event => m.kind === 'event');
const jobEvent = (type: string, id: string) => (m: SseMessage): boolean => m.kind === 'event' && m.event === type && (m.data as { job?: AnyJob }).job?.id === id;

describe('GET /v1/events from a real daemon', () => {
  let env: TestEnv;
  let daemon: DaemonProcess;
  let socket: string;
  const dirs: Record<string, string> = {};

  beforeAll(async () => {
    dirs.EV_QUICK_DIR = await mkdtemp(join(tmpdir(), 'ev-quick-'));
    await writeFile(join(dirs.EV_QUICK_DIR, 'a.txt'), 'quick\n');
    // A sparse file: no disk used, yet tar reads (and gzip compresses) 64 GiB of zeros: minutes.
    dirs.EV_SLOW_DIR = await mkdtemp(join(tmpdir(), 'ev-slow-'));
    const big = await open(join(dirs.EV_SLOW_DIR, 'zeros.bin'), 'w');
    await big.truncate(64 * 2 ** 30);
    await big.close();
    const mandates = [
      filesMandateYaml(QUICK, 'EV_QUICK_DIR', { target: 'local', middleware: 'compression' }),
      filesMandateYaml(SLOW, 'EV_SLOW_DIR', { target: 'local', middleware: 'compression' }),
    ].join('');
    env = await createTestEnv('api-events', `mandates:\n${mandates}`);
    socket = join(env.dir, 'data', 'backer.sock');
    daemon = spawnDaemon(env.configPath, { env: dirs });
    await waitForHealth(daemon, socket, 60_000);
  }, 120_000);

  afterAll(async () => {
    expect(await daemon.stop()).toBe(0);
    await Promise.all(Object.values(dirs).map((d) => rm(d, { recursive: true, force: true })));
  });

  const stillAnswers = async (): Promise<void> => {
    expect((await jsonRequest<{ status: string }>(socket, 'GET', '/v1/health')).body.status).toBe('ok');
    // Labelled containers of other test files (one engine) are mandates here too: look for ours.
    const names = (await jsonRequest<{ mandates: { name: string }[] }>(socket, 'GET', '/v1/mandates')).body.mandates.map((m) => m.name);
    expect(names.filter((n) => n === QUICK || n === SLOW).sort()).toEqual([QUICK, SLOW].sort());
  };

  it('streams job.queued, job.started, job.succeeded of a triggered backup and the mandate.status change', async () => {
    const client = await subscribe(socket);
    try {
      expect(client.res.statusCode).toBe(200);
      expect(client.res.headers['content-type']).toBe('text/event-stream; charset=utf-8');
      await client.waitFor((m) => m.kind === 'comment' && m.text === 'connected', 5000);
      const queued = await jsonRequest<{ job: AnyJob }>(socket, 'POST', `/v1/mandates/${QUICK}/backups`);
      expect(queued.status).toBe(202);
      const id = queued.body.job.id;
      await client.waitFor(jobEvent('job.succeeded', id));
      const status = (await client.waitFor((m) => m.kind === 'event' && m.event === 'mandate.status' && (m.data as { mandate: string }).mandate === QUICK)) as Event;
      expect(status.data).toMatchObject({ type: 'mandate.status', mandate: QUICK, status: 'ok', previous: 'never_succeeded', health: { mandate: QUICK, status: 'ok' } });

      const all = events(client.messages);
      const ofJob = all.filter((m) => (m.data as { job?: AnyJob }).job?.id === id).map((m) => m.event);
      expect(ofJob).toEqual(['job.queued', 'job.started', 'job.succeeded']);
      for (const m of all) expect((m.data as BackerEvent).type).toBe(m.event);
      const ids = all.map((m) => m.id);
      expect(ids).toEqual([...ids].sort((a, b) => a - b));
      expect(new Set(ids).size).toBe(ids.length);
      expect((all.find(jobEvent('job.succeeded', id))?.data as { job: AnyJob }).job).toMatchObject({ state: 'succeeded', mandate: QUICK });
    } finally {
      client.close();
    }
    await stillAnswers();
  });

  it('sends job.progress of a long backup at most twice a second per job, then job.cancelled', async () => {
    const client = await subscribe(socket);
    try {
      await client.waitFor((m) => m.kind === 'comment' && m.text === 'connected', 5000);
      const id = (await jsonRequest<{ job: AnyJob }>(socket, 'POST', `/v1/mandates/${SLOW}/backups`)).body.job.id;
      const progressOf = (): Event[] => events(client.messages).filter((m) => m.event === 'job.progress' && (m.data as { job_id: string }).job_id === id);
      const deadline = Date.now() + 30_000;
      while (progressOf().length < 6 && Date.now() < deadline) await sleep(100);
      const cancel = await jsonRequest(socket, 'POST', `/v1/jobs/${id}/cancel`);
      expect(cancel.status).toBe(200);
      await client.waitFor(jobEvent('job.cancelled', id));

      const progress = progressOf();
      expect(progress.length).toBeGreaterThanOrEqual(6);
      // The pipeline reports after every chunk (thousands a second); the stream passes at most 2 a
      // second. Arrival times carry the delivery's jitter (a busy test machine), so the check spans
      // two intervals: three events of one job take at least a second to be sent, half of it to arrive.
      const at = progress.map((p) => p.at);
      for (let i = 2; i < at.length; i++) expect((at[i] ?? 0) - (at[i - 2] ?? 0)).toBeGreaterThanOrEqual(500);
      expect(at.length).toBeLessThanOrEqual(2 * (((at.at(-1) ?? 0) - (at[0] ?? 0)) / 1000) + 2);
      const bytes = progress.map((p) => (p.data as { progress: { bytes: number } }).progress.bytes);
      expect(bytes).toEqual([...bytes].sort((a, b) => a - b));
      expect(progress[0]?.data).toMatchObject({ type: 'job.progress', kind: 'backup', mandate: SLOW });
      // Nothing of the job after its end.
      const end = events(client.messages).findIndex(jobEvent('job.cancelled', id));
      expect(events(client.messages).slice(end + 1).filter((m) => (m.data as { job_id?: string }).job_id === id)).toEqual([]);
    } finally {
      client.close();
    }
    const job = (await jsonRequest<{ job: AnyJob }>(socket, 'GET', `/v1/jobs?mandate=${SLOW}`)).body;
    expect(job).toMatchObject({ jobs: [{ state: 'cancelled', error: { code: 'JOB_CANCELLED' } }] });
    await stillAnswers();
  });

  it('keeps answering while clients come and go; a bad query is a 400', async () => {
    for (let i = 0; i < 20; i++) {
      const client = await subscribe(socket);
      await client.waitFor((m) => m.kind === 'comment' && m.text === 'connected', 5000);
      client.close();
    }
    await stillAnswers();
    const bad = await jsonRequest<{ error: { code: string; message: string } }>(socket, 'GET', '/v1/events?since=1');
    expect(bad.status).toBe(400);
    expect(bad.body.error).toEqual({ code: 'API_BAD_REQUEST', message: 'unknown query parameter since' });
  });
});

describe('GET /v1/events in process (real HTTP server, real bus)', () => {
  const bus = createEventBus();
  const secrets = new SecretRegistry();
  secrets.add(SECRET);
  let socket: string;
  let dir: string;
  let close: () => Promise<void>;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ev-inproc-'));
    socket = join(dir, 'api.sock');
    const queue = createQueue({ concurrency: 1, logger: pino({ level: 'silent' }), store: createMemoryJobStore(), run: () => Promise.reject(new Error('no jobs here')) });
    const discovery = staticDiscovery({ mandates: [], skipped: [], problems: [], docker_error: null });
    const app = createApi({
      services: { discovery, mandate: () => { throw new Error('no mandates'); }, targets: new Map<string, Target>(), secrets },
      queue,
      scheduler: { nextRun: () => null },
      events: bus,
    });
    const server = createApiServer(app, socket);
    await server.start();
    close = async () => {
      await server.close();
      await queue.close();
    };
  });

  afterAll(async () => {
    await close();
    await rm(dir, { recursive: true, force: true });
  });

  const progress = (job: string, bytes: number): BackerEvent => ({ type: 'job.progress', job_id: job, kind: 'backup', mandate: 'm', progress: { bytes, total: null } });

  it('removes its bus listener when a client goes away', async () => {
    const before = bus.listeners();
    const clients = await Promise.all([1, 2, 3].map(() => subscribe(socket)));
    await Promise.all(clients.map((c) => c.waitFor((m) => m.kind === 'comment' && m.text === 'connected', 5000)));
    expect(bus.listeners()).toBe(before + 3);
    for (const c of clients) c.close();
    const deadline = Date.now() + 5000;
    while (bus.listeners() !== before && Date.now() < deadline) await sleep(20);
    expect(bus.listeners()).toBe(before);
  });

  it('throttles job.progress per job (the newest sent late, before the job ends), scrubs secrets, passes every type', async () => {
    const client = await subscribe(socket);
    try {
      await client.waitFor((m) => m.kind === 'comment' && m.text === 'connected', 5000);
      for (let i = 1; i <= 50; i++) {
        bus.emit(progress('a', i));
        bus.emit(progress('b', i * 10));
      }
      bus.emit({ type: 'mandate.size_anomaly', mandate: 'm', job_id: 'a', raw_bytes: 1, median_bytes: 100, min_bytes: null, reason: `dump of ${SECRET} is tiny` });
      bus.emit({ type: 'mandates.changed', mandates: ['m'], skipped: [] });
      // Each job's late progress has its own timer; both fall due at about the same moment, in either order.
      const lateProgress = (job: string, bytes: number) => (m: SseMessage): boolean =>
        m.kind === 'event' && m.event === 'job.progress' && (m.data as { job_id: string }).job_id === job && (m.data as { progress: { bytes: number } }).progress.bytes === bytes;
      await Promise.all([client.waitFor(lateProgress('a', 50), 3000), client.waitFor(lateProgress('b', 500), 3000)]);
      const ofJob = (job: string): number[] =>
        events(client.messages)
          .filter((m) => m.event === 'job.progress' && (m.data as { job_id: string }).job_id === job)
          .map((m) => (m.data as { progress: { bytes: number } }).progress.bytes);
      expect(ofJob('a')).toEqual([1, 50]);
      expect(ofJob('b')).toEqual([10, 500]);
      const anomaly = events(client.messages).find((m) => m.event === 'mandate.size_anomaly');
      expect(anomaly?.data).toMatchObject({ reason: 'dump of [REDACTED] is tiny' });
      expect(JSON.stringify(client.messages)).not.toContain(SECRET);
      expect(events(client.messages).some((m) => m.event === 'mandates.changed')).toBe(true);

      // A waiting progress goes out before the job's next event, not after it.
      bus.emit(progress('c', 1));
      bus.emit(progress('c', 2));
      const job = { id: 'c', kind: 'backup', mandate: 'm', state: 'succeeded' } as unknown as AnyJob;
      bus.emit({ type: 'job.succeeded', job });
      await client.waitFor((m) => m.kind === 'event' && m.event === 'job.succeeded', 3000);
      const tail = events(client.messages).slice(-3).map((m) => `${m.event}:${(m.data as { progress?: { bytes: number } }).progress?.bytes ?? ''}`);
      expect(tail).toEqual(['job.progress:1', 'job.progress:2', 'job.succeeded:']);
    } finally {
      client.close();
    }
  });

  it('pings every interval and lets go of the bus when the reader cancels', async () => {
    // The clients of the tests before are gone (their streams release the bus as they close).
    for (let i = 0; i < 250 && bus.listeners() > 0; i++) await sleep(20);
    const before = bus.listeners();
    expect(before).toBe(0);
    const abort = new AbortController();
    let id = 0;
    const stream = eventStream({ bus, scrub: (t) => t, nextId: () => ++id, signal: abort.signal, pingMs: 50 });
    const reader = stream.getReader();
    const decoder = new TextDecoder();
    let text = '';
    while (!text.includes(': ping\n\n')) {
      const { value } = await reader.read();
      text += decoder.decode(value);
    }
    expect(text.startsWith(': connected\n\n')).toBe(true);
    expect(bus.listeners()).toBe(before + 1);
    await reader.cancel();
    expect(bus.listeners()).toBe(before);
    // The request's abort after a cancel is harmless.
    abort.abort();
    expect(bus.listeners()).toBe(before);
  });

  it('closes the stream of a client that stops reading once it is MAX_BACKLOG events behind', async () => {
    const before = bus.listeners();
    let id = 0;
    const stream = eventStream({ bus, scrub: (t) => t, nextId: () => ++id, signal: new AbortController().signal });
    expect(bus.listeners()).toBe(before + 1);
    for (let i = 0; i < MAX_BACKLOG + 5; i++) bus.emit({ type: 'mandates.changed', mandates: [String(i)], skipped: [] });
    expect(bus.listeners()).toBe(before);
    // What was queued is still read, then the stream ends.
    const reader = stream.getReader();
    let chunks = 0;
    for (;;) {
      const { done } = await reader.read();
      if (done) break;
      chunks++;
    }
    expect(chunks).toBe(MAX_BACKLOG + 1);
  });
});
