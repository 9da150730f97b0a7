/**
 * The JobStore contract (src/queue/types.ts), run against every store: the memory store and the
 * SQLite store must behave alike, so that the queue cannot tell them apart.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { BackupResult } from '../../src/pipeline/run-backup.js';
import type { AnyJob, JobEvent, JobState, JobStore } from '../../src/queue/types.js';

export interface StoreHandle {
  store: JobStore;
  /** Closes the store (and what it is built on). */
  dispose(): void;
}

let counter = 0;

/** A backup job created at `created` (ISO); each call a new id. */
export function makeJob(overrides: Partial<AnyJob> = {}): AnyJob {
  counter++;
  return {
    id: `job-${counter}-${Math.random().toString(36).slice(2, 8)}`,
    kind: 'backup',
    mandate: 'm1',
    params: null,
    progress: null,
    trigger: 'api',
    state: 'queued',
    priority: 5,
    attempts: 0,
    not_before: null,
    wait_ms: null,
    created_at: '2026-01-01T00:00:00.000Z',
    started_at: null,
    finished_at: null,
    error: null,
    result: null,
    ...overrides,
  };
}

export const RESULT: BackupResult = {
  uuid: '5f8a9b7e-4a1c-4c4e-9a1b-3c2d1e0f9a8b',
  name: 'm1-20260101T000000Z',
  status: 'succeeded',
  error: null,
  raw_size: 1000,
  targets: [
    { target: 'local', status: 'succeeded', artifact_key: 'm1/a.tar', manifest_key: 'm1/a.manifest.json', size: 400, error: null, retention_deleted: [], retention_error: null, retryable: false },
  ],
  retryable: false,
};

/** The job after it ran: started at `start`, finished `ms` later in `state`. */
export function finished(job: AnyJob, state: JobState, start: string, ms: number): AnyJob {
  const finishedAt = new Date(Date.parse(start) + ms).toISOString();
  return {
    ...job,
    state,
    attempts: job.attempts + 1,
    started_at: start,
    finished_at: finishedAt,
    result: state === 'succeeded' ? RESULT : null,
    error: state === 'succeeded' ? null : { code: 'DUMP_FAILED', message: 'pg_dump exited with 1' },
  };
}

const ids = (jobs: AnyJob[]): string[] => jobs.map((j) => j.id);

export function describeJobStore(name: string, open: () => StoreHandle): void {
  describe(`JobStore contract: ${name}`, () => {
    let handle: StoreHandle;
    let store: JobStore;
    beforeEach(() => {
      handle = open();
      store = handle.store;
    });
    afterEach(() => handle.dispose());

    it('saves and gets a job with every field, and updates it in place', () => {
      const job = makeJob({ kind: 'restore', params: { backup: 'latest', to: 'new:x' }, progress: { bytes: 12, total: null }, not_before: '2026-01-01T00:01:00.000Z', wait_ms: 7 });
      store.save(job);
      expect(store.get(job.id)).toEqual(job);
      const running = { ...job, state: 'running' as const, attempts: 1, started_at: '2026-01-01T00:02:00.000Z' };
      store.save(running);
      expect(store.get(job.id)).toEqual(running);
      expect(store.get('nope')).toBeUndefined();
      expect(store.list().total).toBe(1);
    });

    it('lists newest created first, ties newest saved first, with filters, paging and total', () => {
      const a = makeJob({ created_at: '2026-01-01T00:00:01.000Z' });
      const b = makeJob({ created_at: '2026-01-01T00:00:02.000Z', mandate: 'm2' });
      const c = makeJob({ created_at: '2026-01-01T00:00:02.000Z', kind: 'verify', state: 'succeeded', finished_at: '2026-01-01T00:00:03.000Z' });
      const d = makeJob({ created_at: '2026-01-01T00:00:03.000Z', state: 'failed', finished_at: '2026-01-01T00:00:04.000Z' });
      for (const j of [a, b, c, d]) store.save(j);
      // Saving again (a state change) keeps a job's place.
      store.save({ ...b, priority: 8 });
      expect(ids(store.list().jobs)).toEqual([d.id, c.id, b.id, a.id]);
      expect(store.list().total).toBe(4);
      expect(ids(store.list({ mandate: 'm1' }).jobs)).toEqual([d.id, c.id, a.id]);
      expect(ids(store.list({ kind: 'verify' }).jobs)).toEqual([c.id]);
      expect(ids(store.list({ state: 'queued' }).jobs)).toEqual([b.id, a.id]);
      expect(ids(store.list({ mandate: 'm1', state: 'failed', kind: 'backup' }).jobs)).toEqual([d.id]);
      const page = store.list({ limit: 2, offset: 1 });
      expect(ids(page.jobs)).toEqual([c.id, b.id]);
      expect(page.total).toBe(4);
      expect(store.list({ mandate: 'm1', limit: 1 })).toMatchObject({ total: 3 });
      expect(store.list({ mandate: 'none' })).toEqual({ jobs: [], total: 0 });
    });

    it('active() holds queued and running jobs, oldest first; finishedSince() terminal ones, oldest finished first', () => {
      const q = makeJob({ created_at: '2026-01-01T00:00:01.000Z' });
      const r = makeJob({ created_at: '2026-01-01T00:00:02.000Z', state: 'running' });
      const late = finished(makeJob({ created_at: '2026-01-01T00:00:00.000Z' }), 'succeeded', '2026-01-01T00:10:00.000Z', 5000);
      const early = finished(makeJob({ created_at: '2026-01-01T00:00:03.000Z' }), 'failed', '2026-01-01T00:05:00.000Z', 1000);
      const old = finished(makeJob(), 'cancelled', '2025-12-01T00:00:00.000Z', 1);
      for (const j of [q, r, late, early, old]) store.save(j);
      expect(ids(store.active())).toEqual([q.id, r.id]);
      expect(ids(store.finishedSince(new Date('2026-01-01T00:00:00.000Z')))).toEqual([early.id, late.id]);
      expect(ids(store.finishedSince(new Date('2026-01-01T00:10:05.000Z')))).toEqual([late.id]);
    });

    it('keeps events per job, oldest first, and ignores events of unknown jobs', () => {
      const job = makeJob();
      store.save(job);
      const events: JobEvent[] = [
        { at: '2026-01-01T00:00:00.000Z', attempt: 0, type: 'queued', message: null },
        { at: '2026-01-01T00:00:01.000Z', attempt: 1, type: 'started', message: null },
        { at: '2026-01-01T00:00:01.000Z', attempt: 1, type: 'retrying', message: 'S3 503, again in 30s' },
      ];
      for (const e of events) store.addEvent(job.id, e);
      store.addEvent('unknown', events[0] as JobEvent);
      expect(store.events(job.id)).toEqual(events);
      expect(store.events('unknown')).toEqual([]);
    });

    it('orphaned() names running jobs leased by another owner', () => {
      const mine = makeJob({ state: 'running' });
      const theirs = makeJob({ state: 'running' });
      const theirsDone = finished(makeJob(), 'succeeded', '2026-01-01T00:00:00.000Z', 1);
      const unleased = makeJob({ state: 'running' });
      for (const j of [mine, theirs, theirsDone, unleased]) store.save(j);
      const until = new Date('2026-01-01T00:01:00.000Z');
      store.lease(mine.id, 'host:1:a', until);
      store.lease(theirs.id, 'host:2:b', until);
      store.lease(theirsDone.id, 'host:2:b', until);
      // A save (progress) keeps the lease.
      store.save({ ...theirs, progress: { bytes: 1, total: 100 } });
      expect(ids(store.orphaned('host:1:a'))).toEqual([theirs.id]);
      // Renewed by the new owner: no longer orphaned.
      store.lease(theirs.id, 'host:1:a', new Date('2026-01-01T00:02:00.000Z'));
      expect(store.orphaned('host:1:a')).toEqual([]);
    });

    it('updates mandate stats only on the transition of a backup to a terminal state', () => {
      expect(store.mandateStats('m1')).toBeNull();
      const job = makeJob();
      store.save(job);
      store.save({ ...job, state: 'running', started_at: '2026-01-01T00:00:00.000Z' });
      expect(store.mandateStats('m1')).toBeNull();
      const ok = finished(job, 'succeeded', '2026-01-01T00:00:00.000Z', 4000);
      store.save(ok);
      store.save(ok);
      store.save({ ...ok, progress: null });
      const fail = finished(makeJob(), 'failed', '2026-01-01T01:00:00.000Z', 1000);
      store.save(fail);
      store.save(finished(makeJob({ kind: 'verify' }), 'failed', '2026-01-01T02:00:00.000Z', 1000));
      store.save(finished(makeJob({ mandate: 'm2' }), 'interrupted', '2026-01-01T03:00:00.000Z', 10));
      expect(store.mandateStats('m1')).toEqual({
        mandate: 'm1',
        last_success_at: ok.finished_at,
        last_failure_at: fail.finished_at,
        last_error: fail.error,
        successes: 1,
        failures: 1,
        last_duration_ms: 4000,
        avg_duration_ms: 4000,
        last_raw_bytes: 1000,
        last_stored_bytes: 400,
      });
      expect(store.allMandateStats().map((s) => [s.mandate, s.successes, s.failures])).toEqual([
        ['m1', 1, 1],
        ['m2', 0, 1],
      ]);
    });

    it('claims each scheduled fire once and knows the newest', () => {
      const t1 = new Date('2026-01-01T00:00:00.000Z');
      const t2 = new Date('2026-01-01T01:00:00.000Z');
      expect(store.lastFire('m1', 'backup')).toBeNull();
      expect(store.claimFire('m1', 'backup', t2)).toBe(true);
      expect(store.claimFire('m1', 'backup', t1)).toBe(true);
      expect(store.claimFire('m1', 'backup', t2)).toBe(false);
      expect(store.claimFire('m1', 'verify', t2)).toBe(true);
      expect(store.claimFire('m2', 'backup', t1)).toBe(true);
      expect(store.lastFire('m1', 'backup')).toEqual(t2);
      expect(store.lastFire('m2', 'backup')).toEqual(t1);
      expect(store.lastFire('m2', 'verify')).toBeNull();
    });

    it('prunes terminal jobs finished before a time, with their events; never active ones', () => {
      const old = finished(makeJob(), 'succeeded', '2025-01-01T00:00:00.000Z', 1000);
      const recent = finished(makeJob(), 'failed', '2026-01-01T00:00:00.000Z', 1000);
      const queuedOld = makeJob({ created_at: '2024-01-01T00:00:00.000Z' });
      for (const j of [old, recent, queuedOld]) store.save(j);
      store.addEvent(old.id, { at: old.created_at, attempt: 0, type: 'queued', message: null });
      store.addEvent(recent.id, { at: recent.created_at, attempt: 0, type: 'queued', message: null });
      expect(store.prune(new Date('2025-06-01T00:00:00.000Z'))).toBe(1);
      expect(store.get(old.id)).toBeUndefined();
      expect(store.events(old.id)).toEqual([]);
      expect(store.events(recent.id)).toHaveLength(1);
      expect(ids(store.list().jobs).sort()).toEqual([recent.id, queuedOld.id].sort());
      expect(store.prune(new Date('2025-06-01T00:00:00.000Z'))).toBe(0);
      // Stats stay (they are per mandate, not per job).
      expect(store.mandateStats('m1')?.successes).toBe(1);
      // The newest fire of a schedule is still known after a prune.
      store.claimFire('m1', 'backup', new Date('2024-01-01T00:00:00.000Z'));
      store.claimFire('m1', 'backup', new Date('2024-02-01T00:00:00.000Z'));
      store.prune(new Date('2025-06-01T00:00:00.000Z'));
      expect(store.lastFire('m1', 'backup')).toEqual(new Date('2024-02-01T00:00:00.000Z'));
      expect(store.claimFire('m1', 'backup', new Date('2024-02-01T00:00:00.000Z'))).toBe(false);
    });
  });
}
