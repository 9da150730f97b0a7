import type { Manifest } from '../manifests/schema.js';
import { emptyStats } from '../queue/stats.js';
import type { MandateStats } from '../queue/types.js';
import type { StateDb } from './db.js';
import { byCodeUnit } from '../util/compare.js';

/**
 * Per-mandate stats as far as the targets can tell (`backer state reset`): the backups found
 * (one per uuid, whatever the number of copies; safety backups of restores excluded) and the sizes
 * and duration of the newest. Failures are not on the targets: they start again at 0.
 */
export function statsFromManifests(manifests: readonly Manifest[]): MandateStats[] {
  const byMandate = new Map<string, Map<string, Manifest[]>>();
  for (const m of manifests) {
    if (m.tags?.includes('safety')) continue;
    const backups = byMandate.get(m.mandate) ?? new Map<string, Manifest[]>();
    backups.set(m.uuid, [...(backups.get(m.uuid) ?? []), m]);
    byMandate.set(m.mandate, backups);
  }
  const stats: MandateStats[] = [];
  for (const [mandate, backups] of byMandate) {
    const found = [...backups.values()].map(summarize);
    const newest = found.reduce((a, b) => (b.completed_at > a.completed_at ? b : a));
    stats.push({
      ...emptyStats(mandate),
      last_success_at: newest.completed_at,
      successes: found.length,
      last_duration_ms: newest.duration_ms,
      avg_duration_ms: Math.round(found.reduce((sum, b) => sum + b.duration_ms, 0) / found.length),
      last_raw_bytes: newest.raw_bytes,
      last_stored_bytes: newest.stored_bytes,
    });
  }
  return stats.sort((a, b) => byCodeUnit(a.mandate, b.mandate));
}

/** One backup from the manifests of its copies: done when its last copy was, sized by the largest. */
function summarize(copies: Manifest[]): { completed_at: string; duration_ms: number; raw_bytes: number | null; stored_bytes: number } {
  const completed = copies.map((c) => c.completed_at).sort();
  const created = copies.map((c) => c.created_at).sort();
  const completedAt = completed[completed.length - 1] ?? '';
  return {
    completed_at: completedAt,
    duration_ms: Math.max(0, Date.parse(completedAt) - Date.parse(created[0] ?? completedAt)),
    raw_bytes: copies[0]?.steps[0]?.size ?? null,
    stored_bytes: Math.max(...copies.map((c) => c.artifact.size)),
  };
}

/** Replaces the stats rows of these mandates (one transaction). */
export function writeMandateStats(state: StateDb, stats: readonly MandateStats[]): void {
  const put = state.db.prepare(
    `INSERT OR REPLACE INTO mandate_stats (mandate, last_success_at, last_failure_at, last_error, successes, failures, last_duration_ms, avg_duration_ms, last_raw_bytes, last_stored_bytes)
     VALUES (@mandate, @last_success_at, @last_failure_at, @last_error, @successes, @failures, @last_duration_ms, @avg_duration_ms, @last_raw_bytes, @last_stored_bytes)`,
  );
  state.db.transaction(() => {
    for (const s of stats) put.run({ ...s, last_error: s.last_error === null ? null : JSON.stringify(s.last_error) });
  })();
}
