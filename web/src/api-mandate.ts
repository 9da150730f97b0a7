// The mandate screen's API calls and shapes (docs/openapi.json: MandateDetail, JobsPage, BackupPage).
import type { Client, Mandate, MandateHealth } from './api';

/** GET /v1/mandates adds the raw sizes of the last 30 succeeded backups, oldest first. */
export type ListedMandate = Mandate & { recent_sizes?: number[] };

export type SettingSource = { from: 'label'; label: string } | { from: 'config'; path: string } | { from: 'default' };

export interface MandateSettings {
  name: string;
  origin: 'labels' | 'config';
  type: string;
  container: string | null;
  interval: string;
  targets: string[];
  middleware: string[];
  retention: number;
  retention_rules?: Record<string, unknown>;
  priority: number;
  name_pattern: string;
  verify: string | null;
  verify_level: string;
}

export interface MandateStats {
  successes: number;
  failures: number;
  last_success_at: string | null;
  last_failure_at: string | null;
  last_duration_ms: number | null;
  avg_duration_ms: number | null;
  last_raw_bytes: number | null;
}

export interface MandateDetail {
  mandate: MandateSettings;
  next_run: string | null;
  next_verification: string | null;
  stats: MandateStats;
  health?: MandateHealth & { expected_interval_ms: number | null };
  settings_sources: Record<string, SettingSource>;
}

export interface JobRecord {
  id: string;
  kind: 'backup' | 'restore' | 'verify' | 'drill';
  mandate: string;
  state: string;
  trigger: string;
  attempts: number;
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
  progress: { bytes: number; total: number | null } | null;
  error: { code: string; message: string } | null;
  result: Record<string, unknown> | null;
}

export interface JobsPage { jobs: JobRecord[]; total: number; limit: number; offset: number }

export interface BackupManifest {
  uuid: string;
  name: string;
  mandate: string;
  created_at: string;
  completed_at: string;
  tags?: string[];
  target: { name: string; type: string };
  artifact: { size: number; key: string };
  steps: { size: number }[];
}

export interface BackupPage { backups: BackupManifest[]; total: number; limit: number; offset: number; problems: { target: string; key: string; message: string }[] }

/** One verification of a verify job's result (src/pipeline/run-verify.ts VerifyResult). */
export interface VerificationSeen { backup: string; uuid: string; target: string; level: string; outcome: 'passed' | 'failed'; started_at: string }

const enc = encodeURIComponent;

export function mandateApi(client: Client, name: string) {
  const base = `/v1/mandates/${enc(name)}`;
  return {
    detail: () => client.get<MandateDetail>(base),
    jobs: (limit: number, offset: number, kind?: string) => client.get<JobsPage>(`/v1/jobs?mandate=${enc(name)}${kind === undefined ? '' : `&kind=${kind}`}&limit=${limit}&offset=${offset}`),
    backups: (limit: number, offset: number, target?: string) =>
      client.get<BackupPage>(`${base}/backups?limit=${limit}&offset=${offset}${target === undefined ? '' : `&target=${enc(target)}`}`),
    backupNow: () => client.post<{ job: JobRecord }>(`${base}/backups`),
    verify: () => client.post<{ jobs: JobRecord[] }>('/v1/verifications', { mandate: name }),
  };
}

export type MandateApi = ReturnType<typeof mandateApi>;

/** The newest verification of each backup copy (`uuid@target`) found in verify and drill jobs' results (newest job first). */
export function verificationsByCopy(jobs: JobRecord[]): Map<string, VerificationSeen> {
  const seen = new Map<string, VerificationSeen>();
  for (const job of jobs) {
    const list = job.result?.verifications;
    if (!Array.isArray(list)) continue;
    for (const v of list as VerificationSeen[]) {
      const key = `${v.uuid}@${v.target}`;
      const known = seen.get(key);
      if (known === undefined || known.started_at < v.started_at) seen.set(key, v);
    }
  }
  return seen;
}

/** A duration as the tables and charts show it: milliseconds under a second, else as format.ts duration(). */
export function shortDuration(ms: number | null, long: (ms: number) => string): string {
  if (ms === null) return '—';
  return ms < 1000 ? `${Math.round(ms)}ms` : long(ms);
}

/** Duration of a finished job in ms, or null. */
export function jobDuration(job: Pick<JobRecord, 'started_at' | 'finished_at'>): number | null {
  if (job.started_at === null || job.finished_at === null) return null;
  return Date.parse(job.finished_at) - Date.parse(job.started_at);
}

/** A local date and time, short (`2026-11-30 03:00`), for tables; "—" for none. */
export function dateTime(iso: string | null | undefined): string {
  if (iso === null || iso === undefined) return '—';
  const d = new Date(iso);
  const pad = (n: number): string => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** How a setting's source reads in the UI. */
export function sourceText(source: SettingSource | undefined): string {
  if (source === undefined || source.from === 'default') return 'default';
  return source.from === 'label' ? `label ${source.label}` : `config ${source.path}`;
}

/** A job's event (job.*: `{type, job}`; mandate.status and job.progress: `{type, mandate}`) concerns `mandate`. */
export function concerns(event: { type: string; [key: string]: unknown }, mandate: string): boolean {
  if (event.type === 'job.progress') return false;
  const job = event.job as { mandate?: unknown } | undefined;
  return event.mandate === mandate || job?.mandate === mandate || (event.type === 'mandates.changed');
}
