import { addToStats } from './stats.js';
import { TERMINAL_STATES, type AnyJob, type RecentBackups, type JobEvent, type JobFilter, type JobStore, type MandateStats } from './types.js';
import { byCodeUnit } from '../util/compare.js';

/** Newest created first; jobs created in the same millisecond keep newest-saved first. */
function newestFirst(jobs: AnyJob[]): AnyJob[] {
  return jobs.reverse().sort((a, b) => byCodeUnit(b.created_at, a.created_at));
}

function matches(job: AnyJob, filter: JobFilter): boolean {
  return (
    (filter.mandate === undefined || job.mandate === filter.mandate) &&
    (filter.kind === undefined || job.kind === filter.kind) &&
    (filter.state === undefined || job.state === filter.state)
  );
}

/** The newest succeeded backup job as recentBackups() gives it (same fields as the SQLite store's query). */
function newestOf(job: AnyJob | undefined): RecentBackups['newest'] {
  if (job === undefined) return null;
  const result = job.result as { name?: string; raw_size?: number | null; targets?: { status: string; size: number | null }[] } | null;
  const stored = result?.targets?.find((t) => t.status === 'succeeded' && t.size !== null);
  const name = result !== null && 'raw_size' in result ? (result.name ?? null) : null;
  return { name, created_at: job.created_at, started_at: job.started_at, raw_bytes: result?.raw_size ?? null, stored_bytes: stored?.size ?? null };
}

/**
 * Jobs in memory, for one-shot commands and unit tests: the oldest finished jobs beyond `limit`
 * are forgotten (never a queued or running one). Nothing survives the process.
 */
export function createMemoryJobStore(limit = 1000): JobStore {
  const jobs = new Map<string, AnyJob>();
  const events = new Map<string, JobEvent[]>();
  const leases = new Map<string, string>();
  const stats = new Map<string, MandateStats>();
  const fires = new Map<string, number>();

  const forget = (id: string): void => {
    jobs.delete(id);
    events.delete(id);
    leases.delete(id);
  };

  return {
    save(job) {
      const before = jobs.get(job.id);
      // Map.set keeps an existing key in place: the map stays in creation order.
      jobs.set(job.id, job);
      if (TERMINAL_STATES.has(job.state) && (before === undefined || !TERMINAL_STATES.has(before.state))) {
        const next = addToStats(stats.get(job.mandate) ?? null, job);
        if (next) stats.set(job.mandate, next);
      }
      for (const [id, j] of jobs) {
        if (jobs.size <= limit) break;
        if (TERMINAL_STATES.has(j.state)) forget(id);
      }
    },
    get: (id) => jobs.get(id),
    list(filter = {}) {
      const all = newestFirst([...jobs.values()].filter((j) => matches(j, filter)));
      const offset = filter.offset ?? 0;
      return { jobs: all.slice(offset, offset + (filter.limit ?? 100)), total: all.length };
    },
    active: () => [...jobs.values()].filter((j) => j.state === 'queued' || j.state === 'running'),
    finishedSince(since) {
      const at = since.toISOString();
      return [...jobs.values()]
        .filter((j) => TERMINAL_STATES.has(j.state) && j.finished_at !== null && j.finished_at >= at)
        .sort((a, b) => byCodeUnit(a.finished_at ?? '', b.finished_at ?? ''));
    },
    addEvent(id, event) {
      if (!jobs.has(id)) return;
      events.set(id, [...(events.get(id) ?? []), event]);
    },
    events: (id) => [...(events.get(id) ?? [])],
    lease(id, owner) {
      leases.set(id, owner);
    },
    orphaned: (owner) => [...jobs.values()].filter((j) => j.state === 'running' && leases.get(j.id) !== undefined && leases.get(j.id) !== owner),
    mandateStats: (mandate) => stats.get(mandate) ?? null,
    allMandateStats: () => [...stats.values()].sort((a, b) => byCodeUnit(a.mandate, b.mandate)),
    recentBackups(mandates, perMandate) {
      const succeeded = newestFirst([...jobs.values()].filter((j) => j.kind === 'backup' && j.state === 'succeeded'));
      return [...new Set(mandates)].map((mandate) => {
        const mine = succeeded.filter((j) => j.mandate === mandate).slice(0, perMandate);
        const sizes = mine.map((j) => (j.result as { raw_size?: number | null } | null)?.raw_size ?? null);
        return { mandate, newest: newestOf(mine[0]), raw_sizes: sizes };
      });
    },
    claimFire(mandate, kind, at) {
      const key = `${kind}:${mandate}:${at.toISOString()}`;
      if (fires.has(key)) return false;
      fires.set(key, at.getTime());
      return true;
    },
    lastFire(mandate, kind) {
      const prefix = `${kind}:${mandate}:`;
      let newest: number | null = null;
      for (const [key, at] of fires) if (key.startsWith(prefix) && (newest === null || at > newest)) newest = at;
      return newest === null ? null : new Date(newest);
    },
    prune(before) {
      const at = before.toISOString();
      let removed = 0;
      for (const [id, j] of jobs) {
        if (TERMINAL_STATES.has(j.state) && j.finished_at !== null && j.finished_at < at) {
          forget(id);
          removed++;
        }
      }
      return removed;
    },
    close: () => undefined,
  };
}
