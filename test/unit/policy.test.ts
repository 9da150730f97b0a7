/**
 * The queue's policy (src/queue/policy.ts), pure: which queued jobs start now. Limits (global,
 * per target, per Docker host) are never exceeded over a simulated run of 200 jobs, order follows
 * priority, waiting jobs age, manual runs go before scheduled ones, one job per mandate at once,
 * no head-of-line blocking, and no starvation of a job that needs several limited targets.
 */
import { describe, expect, it } from 'vitest';
import { effectivePriority, overloaded, pickRunnable, queueOrder, type Candidate, type Limits } from '../../src/queue/policy.js';
import { mulberry32 } from '../helpers/random.js';
import type { AnyJob, JobKind, JobTrigger } from '../../src/queue/types.js';

const T0 = Date.parse('2026-03-01T12:00:00.000Z');
const MIN = 60_000;
const AGING = 10 * MIN;
const at = (ms: number): string => new Date(T0 + ms).toISOString();

let seq = 0;
interface JobInit {
  mandate?: string;
  priority?: number;
  trigger?: JobTrigger;
  kind?: JobKind;
  created?: number;
  notBefore?: number;
}
function job(init: JobInit = {}): AnyJob {
  seq++;
  return {
    id: `job-${String(seq).padStart(4, '0')}`,
    kind: init.kind ?? 'backup',
    mandate: init.mandate ?? `m${seq}`,
    params: null,
    progress: null,
    trigger: init.trigger ?? 'schedule',
    state: 'queued',
    priority: init.priority ?? 5,
    attempts: 0,
    not_before: init.notBefore === undefined ? null : at(init.notBefore),
    wait_ms: null,
    created_at: at(init.created ?? 0),
    started_at: null,
    finished_at: null,
    error: null,
    result: null,
  };
}
const cand = (j: AnyJob, targets: string[] = ['local'], docker = false, mandateInterval?: number): Candidate => ({ job: j, targets, docker, mandateInterval });
const limits = (concurrency: number, perTarget: Record<string, number> = {}, docker: number | null = null): Limits => ({
  concurrency,
  perTarget: new Map(Object.entries(perTarget)),
  docker,
});
const pick = (queued: Candidate[], running: Candidate[], l: Limits, now = 0): string[] =>
  pickRunnable({ queued, running, limits: l, now: new Date(T0 + now), aging: AGING }).map((j) => j.id);


describe('pickRunnable: limits', () => {
  it.each([1, 2, 3])('never exceeds concurrency 4, 1 per target, 2 on Docker, one per mandate over 200 random jobs (seed %i)', (seed) => {
    const random = mulberry32(seed);
    const targets = ['local', 's3', 'nas', 'b2', 'sftp'];
    const l = limits(4, { local: 1, s3: 1, nas: 1, b2: 1, sftp: 1 }, 2);
    const queued: Candidate[] = [];
    for (let i = 0; i < 200; i++) {
      const chosen = targets.filter(() => random() < 0.35);
      const j = job({ mandate: `m${Math.floor(random() * 150)}`, priority: Math.floor(random() * 10), created: Math.floor(random() * 60) * MIN, trigger: random() < 0.3 ? 'api' : 'schedule' });
      queued.push(cand(j, chosen.length > 0 ? chosen : [targets[Math.floor(random() * targets.length)] ?? 'local'], random() < 0.6));
    }
    const running: { c: Candidate; ends: number }[] = [];
    const done = new Set<string>();
    let now = 60 * MIN;
    let peak = 0;
    for (let step = 0; step < 5000 && done.size < 200; step++) {
      const waiting = queued.filter((c) => !done.has(c.job.id) && !running.some((r) => r.c.job.id === c.job.id));
      for (const id of pick(waiting, running.map((r) => r.c), l, now - 0)) {
        const c = waiting.find((w) => w.job.id === id);
        if (c === undefined) throw new Error(`picked ${id}, which is not queued`);
        running.push({ c, ends: now + (1 + Math.floor(random() * 20)) * MIN });
      }
      // The invariants, after every pick.
      const active = running.map((r) => r.c);
      peak = Math.max(peak, active.length);
      expect(active.length).toBeLessThanOrEqual(4);
      expect(active.filter((c) => c.docker).length).toBeLessThanOrEqual(2);
      for (const t of targets) expect(active.filter((c) => c.targets.includes(t)).length).toBeLessThanOrEqual(1);
      expect(new Set(active.map((c) => c.job.mandate)).size).toBe(active.length);
      // The next job to end ends; time moves on to it.
      running.sort((a, b) => a.ends - b.ends);
      const ended = running.shift();
      if (ended === undefined) throw new Error(`nothing runs, ${200 - done.size} jobs wait: the policy is stuck`);
      now = ended.ends;
      done.add(ended.c.job.id);
    }
    expect(done.size).toBe(200);
    expect(peak).toBeGreaterThan(1);
  });

  it('fills the free slots only: concurrency counts the running jobs', () => {
    const queued = [job(), job(), job(), job()].map((j) => cand(j, ['a']));
    const running = [cand(job(), ['b']), cand(job(), ['b'])];
    expect(pick(queued, running, limits(3))).toEqual([queued[0]?.job.id]);
    expect(pick(queued, [...running, cand(job())], limits(3))).toEqual([]);
  });

  it('skips a job over a target limit without blocking jobs behind it that fit (no head-of-line blocking)', () => {
    const high = job({ priority: 9 });
    const low = job({ priority: 1 });
    const running = [cand(job(), ['nas'])];
    expect(pick([cand(high, ['nas']), cand(low, ['s3'])], running, limits(4, { nas: 1 }))).toEqual([low.id]);
  });

  it('counts Docker jobs against docker.concurrency only', () => {
    const a = job({ priority: 9 });
    const b = job({ priority: 8 });
    const host = job({ priority: 1 });
    expect(pick([cand(a, ['x'], true), cand(b, ['y'], true), cand(host, ['z'], false)], [], limits(4, {}, 1))).toEqual([a.id, host.id]);
    expect(pick([cand(a, ['x'], true), cand(b, ['y'], true)], [], limits(4, {}, null))).toEqual([a.id, b.id]);
  });

  it('keeps the limited targets a skipped job waits for, so jobs behind it cannot starve it', () => {
    // `both` needs nas and usb (limit 1 each); usb is busy. Without the reservation, low jobs on nas
    // would take nas every time it is free, and `both` would never find both free at once.
    const both = job({ priority: 8 });
    const onNas = job({ priority: 2 });
    const elsewhere = job({ priority: 2 });
    const l = limits(4, { nas: 1, usb: 1 });
    expect(pick([cand(both, ['nas', 'usb']), cand(onNas, ['nas']), cand(elsewhere, ['s3'])], [cand(job(), ['usb'])], l)).toEqual([elsewhere.id]);
    // usb is free again: `both` runs before the low job on nas.
    expect(pick([cand(both, ['nas', 'usb']), cand(onNas, ['nas'])], [], l)).toEqual([both.id]);
  });

  it('reserves Docker for a skipped job only while Docker is what is full', () => {
    const waiting = job({ priority: 8 });
    const other = job({ priority: 2 });
    // Skipped for its target: Docker is not full, so a Docker job behind it may run.
    expect(pick([cand(waiting, ['nas'], true), cand(other, ['s3'], true)], [cand(job(), ['nas'])], limits(4, { nas: 1 }, 2))).toEqual([other.id]);
    // Skipped for Docker: the next Docker slot is its.
    expect(pick([cand(waiting, ['s3'], true), cand(other, ['local'], false)], [cand(job(), ['x'], true)], limits(4, {}, 1))).toEqual([other.id]);
  });
});

describe('pickRunnable: one job per mandate, retry times', () => {
  it('never starts a second job of a mandate that runs, nor two queued ones of one mandate', () => {
    const first = job({ mandate: 'shop', priority: 9 });
    const second = job({ mandate: 'shop', priority: 9, kind: 'verify' });
    const other = job({ mandate: 'blog' });
    expect(pick([cand(first), cand(second), cand(other)], [], limits(4))).toEqual([first.id, other.id]);
    expect(pick([cand(second), cand(other)], [cand(first)], limits(4))).toEqual([other.id]);
  });

  it('waits for a job whose retry time (not_before) is in the future', () => {
    const retry = job({ priority: 9, notBefore: 5 * MIN });
    const fresh = job();
    expect(pick([cand(retry), cand(fresh)], [], limits(4), 4 * MIN)).toEqual([fresh.id]);
    expect(pick([cand(retry), cand(fresh)], [], limits(4), 5 * MIN)).toEqual([retry.id, fresh.id]);
  });

  it('never starts a job that is already running', () => {
    const j = job();
    expect(pick([cand(j)], [cand(j)], limits(4))).toEqual([]);
  });
});

describe('order', () => {
  it('follows priority, higher first', () => {
    const jobs = [2, 8, 5, 0, 9, 5].map((priority) => job({ priority }));
    const order = queueOrder(jobs.map((j) => cand(j)), new Date(T0), AGING).map((c) => c.job.priority);
    expect(order).toEqual([9, 8, 5, 5, 2, 0]);
    expect(pick(jobs.map((j) => cand(j)), [], limits(2)).map((id) => jobs.find((j) => j.id === id)?.priority)).toEqual([9, 8]);
  });

  it('puts manual runs (api, cli) and restores before scheduled, catch-up and start-up runs of the same priority, then the oldest', () => {
    const scheduled = job({ trigger: 'schedule', created: 0 });
    const catchUp = job({ trigger: 'catch_up', created: MIN });
    const startup = job({ trigger: 'startup', created: 2 * MIN });
    const cliRun = job({ trigger: 'cli', created: 4 * MIN });
    const restore = job({ kind: 'restore', trigger: 'schedule', created: 5 * MIN });
    const apiRun = job({ trigger: 'api', created: 3 * MIN });
    const higherScheduled = job({ trigger: 'schedule', priority: 6, created: 6 * MIN });
    const all = [scheduled, catchUp, startup, cliRun, restore, apiRun, higherScheduled];
    const now = new Date(T0 + 7 * MIN);
    expect(queueOrder(all.map((j) => cand(j)), now, AGING).map((c) => c.job.id)).toEqual(
      [higherScheduled, apiRun, cliRun, restore, scheduled, catchUp, startup].map((j) => j.id),
    );
  });

  it('ages waiting jobs: one step per `aging`, so a low job gets through', () => {
    const old = job({ priority: 2, created: 0 });
    expect(effectivePriority(old, new Date(T0 + 29 * MIN), AGING)).toBe(4);
    expect(effectivePriority(old, new Date(T0 + 30 * MIN), AGING)).toBe(5);
    expect(effectivePriority(old, new Date(T0 + 30 * MIN), 0)).toBe(2);
    // Normal jobs keep arriving; after 40 minutes the low one (2 + 4) is ahead of a fresh normal one.
    const fresh = (t: number): AnyJob => job({ priority: 5, created: t });
    expect(pick([cand(old), cand(fresh(29 * MIN))], [], limits(1), 29 * MIN)).not.toEqual([old.id]);
    expect(pick([cand(old), cand(fresh(40 * MIN))], [], limits(1), 40 * MIN)).toEqual([old.id]);
  });

  it('ages a retry from its retry time, not from its creation', () => {
    const retried = job({ priority: 5, created: 0, notBefore: 60 * MIN });
    expect(effectivePriority(retried, new Date(T0 + 61 * MIN), AGING)).toBe(5);
    expect(effectivePriority(retried, new Date(T0 + 70 * MIN), AGING)).toBe(6);
  });

  it('never lets a stream of fresh high jobs starve a low one (simulated)', () => {
    const low = job({ priority: 0, created: 0 });
    let queued = [cand(low)];
    let started: number | undefined;
    for (let minute = 0; minute < 24 * 60 && started === undefined; minute += 5) {
      queued.push(cand(job({ priority: 9, created: minute * MIN })));
      const picked = pick(queued, [], limits(1), minute * MIN);
      if (picked[0] === low.id) started = minute;
      queued = queued.filter((c) => !picked.includes(c.job.id));
    }
    expect(started).toBeDefined();
    expect(started).toBeLessThanOrEqual(100);
  });
});

describe('overloaded', () => {
  it('lists mandates whose oldest ready job waited longer than their interval', () => {
    const hourly = 60 * MIN;
    const queued = [
      cand(job({ mandate: 'shop', created: 0 }), ['local'], false, hourly),
      cand(job({ mandate: 'shop', created: 50 * MIN }), ['local'], false, hourly),
      cand(job({ mandate: 'blog', created: 30 * MIN }), ['local'], false, hourly),
      cand(job({ mandate: 'logs', created: 0 }), ['local'], false),
      cand(job({ mandate: 'later', created: 0, notBefore: 100 * MIN }), ['local'], false, MIN),
      cand(job({ mandate: 'app', created: 0 }), ['local'], false, 61 * MIN),
    ];
    expect(overloaded(queued, new Date(T0 + 61 * MIN))).toEqual([{ mandate: 'shop', waited_ms: 61 * MIN, interval_ms: hourly }]);
    expect(overloaded(queued, new Date(T0 + 91 * MIN)).map((o) => o.mandate)).toEqual(['app', 'blog', 'shop']);
    expect(overloaded([], new Date(T0))).toEqual([]);
  });
});
