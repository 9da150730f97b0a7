/**
 * Queue limits through a real `backer daemon` process: 200 mandates triggered together, with
 * queue.concurrency 4 and four targets that each take one upload at a time. All complete; the
 * limits hold at every moment (sampled while it runs, and from every job's start and end after);
 * jobs that waited start by priority.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { callApi } from '../src/cli/client.js';
import type { AnyJob } from '../src/queue/types.js';
import { spawnDaemon, waitForHealth, type DaemonProcess } from './helpers/daemon-proc.js';

const COUNT = 200;
const TARGETS = 4;
const PRIORITIES = ['low', 'normal', 'high'] as const;
const NUMERIC = { low: 2, normal: 5, high: 8 } as const;
let dir: string;
let socket: string;
let daemon: DaemonProcess;

const name = (i: number): string => `m${String(i).padStart(3, '0')}`;
const targetOf = (i: number): string => `t${i % TARGETS}`;
const priorityOf = (i: number): (typeof PRIORITIES)[number] => PRIORITIES[Math.floor(i / TARGETS) % PRIORITIES.length] ?? 'normal';

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bk-limits-'));
  await mkdir(join(dir, 'files'));
  await writeFile(join(dir, 'files', 'a.txt'), 'a small file\n');
  const targets = Array.from({ length: TARGETS }, (_, t) => `  - name: t${t}\n    type: local\n    path: ${dir}/backups-${t}\n    concurrency: 1\n`).join('');
  const mandates = Array.from(
    { length: COUNT },
    (_, i) => `  ${name(i)}:\n    type: files\n    interval: "0 0 29 2 *"\n    target: ${targetOf(i)}\n    priority: ${priorityOf(i)}\n    middleware: compression\n    files:\n      path: ${dir}/files\n`,
  ).join('');
  const yaml = `data_dir: ${dir}/data\ndocker:\n  enabled: false\nqueue:\n  concurrency: 4\ntargets:\n${targets}middleware:\n  - name: compression\n    type: gzip\nmandates:\n${mandates}`;
  await writeFile(join(dir, 'backer.yml'), yaml);
  socket = join(dir, 'data', 'backer.sock');
  daemon = spawnDaemon(join(dir, 'backer.yml'));
  await waitForHealth(daemon, socket);
}, 60_000);

afterAll(async () => {
  expect(await daemon.stop()).toBe(0);
  await rm(dir, { recursive: true, force: true });
});

/** The most intervals [start, end) that overlap at one moment. */
function maxOverlap(intervals: [number, number][]): number {
  const edges = intervals.flatMap(([s, e]) => [[s, 1] as const, [e, -1] as const]).sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let now = 0;
  let max = 0;
  for (const [, d] of edges) max = Math.max(max, (now += d));
  return max;
}

describe('200 mandates at once, concurrency 4, one upload per target', () => {
  it('all complete, never beyond the limits, and waiting jobs start by priority', async () => {
    const samples: number[][] = [];
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const { jobs } = await callApi<{ jobs: AnyJob[] }>(socket, 'GET', '/v1/jobs?state=running&limit=500');
        samples.push(Array.from({ length: TARGETS }, (_, t) => jobs.filter((j) => Number(j.mandate.slice(1)) % TARGETS === t).length));
        await new Promise((r) => setTimeout(r, 10));
      }
    })();
    const submitted: AnyJob[] = [];
    for (let i = 0; i < COUNT; i++) submitted.push((await callApi<{ job: AnyJob }>(socket, 'POST', `/v1/mandates/${name(i)}/backups`)).job);
    const lastSubmit = Date.now();
    const done = await Promise.all(submitted.map((j) => callApi<{ job: AnyJob }>(socket, 'GET', `/v1/jobs/${j.id}?wait=300`).then((r) => r.job)));
    sampling = false;
    await sampler;

    expect(done.filter((j) => j.state !== 'succeeded').map((j) => `${j.mandate}: ${j.state} ${j.error?.message ?? ''}`)).toEqual([]);
    expect(done.map((j) => j.priority)).toEqual(submitted.map((_, i) => NUMERIC[priorityOf(i)]));
    // Sampled while running: never more than 4 in all, never 2 on one target.
    expect(samples.length).toBeGreaterThan(10);
    expect(Math.max(...samples.map((s) => s.reduce((a, b) => a + b, 0)))).toBeLessThanOrEqual(4);
    expect(Math.max(...samples.flat())).toBeLessThanOrEqual(1);
    expect(samples.some((s) => s.reduce((a, b) => a + b, 0) >= 2)).toBe(true);
    // From the recorded times: the same, at every moment.
    const span = (j: AnyJob): [number, number] => [Date.parse(j.started_at ?? ''), Date.parse(j.finished_at ?? '')];
    expect(maxOverlap(done.map(span))).toBeLessThanOrEqual(4);
    for (let t = 0; t < TARGETS; t++) expect(maxOverlap(done.filter((_, i) => i % TARGETS === t).map(span))).toBe(1);
    // Jobs that were still waiting when the last one was queued start by priority, per target.
    for (let t = 0; t < TARGETS; t++) {
      const waited = done.filter((j, i) => i % TARGETS === t && Date.parse(j.started_at ?? '') > lastSubmit).sort((a, b) => span(a)[0] - span(b)[0]);
      const order = waited.map((j) => j.priority);
      expect(order.length).toBeGreaterThan(0);
      expect(order).toEqual([...order].sort((a, b) => b - a));
    }
    expect((await callApi<{ status: string }>(socket, 'GET', '/v1/health')).status).toBe('ok');
  }, 300_000);
});
