// The health matrix's rows: runnable and skipped mandates in one shape, most urgent first.
import type { Job, MandateStatus, SkippedMandate } from './api';
import type { ListedMandate } from './api-mandate';
import { bytes } from './format';

export interface Row {
  name: string;
  container: string | null;
  type: string;
  targets: string[];
  status: MandateStatus;
  /** Why: the failing job's error, the staleness, or a skipped mandate's problems. */
  detail: string | null;
  ageMs: number | null;
  maxAgeMs: number | null;
  nextRun: string | null;
  lastBytes: number | null;
  lastAt: string | null;
  /** Raw sizes of the last succeeded backups, oldest first (the sparkline). */
  recentSizes: number[];
  job: Job | null;
  runnable: boolean;
}

const ORDER: MandateStatus[] = ['skipped', 'failing', 'stale', 'never_succeeded', 'ok'];

function mandateRow(m: ListedMandate, jobs: Job[]): Row {
  const status = m.status ?? m.health?.status ?? 'never_succeeded';
  const health = m.health;
  const detail = status === 'failing' ? (health?.last_error?.message ?? health?.reason ?? null) : status === 'ok' ? null : (health?.reason ?? null);
  return {
    name: m.name,
    container: m.container,
    type: m.type,
    targets: m.targets,
    status,
    detail,
    ageMs: health?.age_ms ?? null,
    maxAgeMs: health?.max_age_ms ?? null,
    nextRun: m.next_run,
    lastBytes: m.last_backup?.raw_bytes ?? null,
    lastAt: m.last_backup?.created_at ?? null,
    recentSizes: m.recent_sizes ?? [],
    job: jobs.find((j) => j.mandate === m.name && j.kind === 'backup') ?? null,
    runnable: true,
  };
}

function skippedRow(s: SkippedMandate): Row {
  return {
    name: s.name,
    container: s.container,
    type: '—',
    targets: [],
    status: 'skipped',
    detail: s.problems.map((p) => `${p.where}: ${p.message}`).join('; '),
    ageMs: null,
    maxAgeMs: null,
    nextRun: null,
    lastBytes: s.last_backup?.raw_bytes ?? null,
    lastAt: s.last_backup?.created_at ?? null,
    recentSizes: (s as SkippedMandate & { recent_sizes?: number[] }).recent_sizes ?? [],
    job: null,
    runnable: false,
  };
}

/** The sparkline's text: how many sizes, the first and the last. */
export function sizesLabel(sizes: number[]): string {
  return `last ${sizes.length} sizes, from ${bytes(sizes[0])} to ${bytes(sizes.at(-1))}`;
}

export function buildRows(mandates: ListedMandate[], skipped: SkippedMandate[], jobs: Job[], filter: string): Row[] {
  const needle = filter.trim().toLowerCase();
  const rows = [...mandates.map((m) => mandateRow(m, jobs)), ...skipped.map(skippedRow)];
  const matches = (r: Row): boolean =>
    needle === '' || [r.name, r.container ?? '', r.type, r.status.replace('_', ' '), ...r.targets].some((s) => s.toLowerCase().includes(needle));
  return rows.filter(matches).sort((a, b) => ORDER.indexOf(a.status) - ORDER.indexOf(b.status) || a.name.localeCompare(b.name));
}
