// Typed wrappers of the routes the backup screen and the restore wizard use (shapes as in docs/openapi.json).
import type { Client, Job } from './api';

export interface Step { processor: string; mime: string; size: number; md5: string; sha256: string }

/** The stored file of a backup (a manifest's `artifact`): its key on the target, no processor. */
export interface Artifact { key: string; mime: string; size: number; md5: string; sha256: string }

export interface Manifest {
  uuid: string;
  name: string;
  mandate: string;
  backer_version: string;
  created_at: string;
  completed_at: string;
  source: { type: string; container: string | null; image: string | null; databases: string[]; stats?: unknown; [key: string]: unknown };
  tags?: string[];
  target: { name: string; type: string };
  steps: Step[];
  artifact: Artifact;
}

export interface BackupCopy { target: string; manifest_key: string; artifact_key: string | null; size: number | null; present: boolean; problem: string | null }

export interface VerificationCheck { check: string; ok: boolean; expected?: string | number | null; actual?: string | number | null }

export interface VerificationRecord {
  backup: string;
  target: string;
  level: 'size' | 'hash' | 'decode' | 'drill';
  outcome: 'passed' | 'failed';
  checks: VerificationCheck[];
  error: { code: string; message: string } | null;
  started_at: string;
  duration_ms: number;
}

export interface BackupDetail { manifests: Manifest[]; copies: BackupCopy[]; verifications: VerificationRecord[] }

export interface BackupPage { backups: Manifest[]; total: number; limit: number; offset: number }

export interface RestoreRequest {
  mandate: string;
  backup: string;
  target?: string;
  to: string;
  dry_run?: boolean;
  safety_backup?: boolean;
  yes?: boolean;
}

export interface RestorePlan {
  mandate: string;
  backup: string;
  target: string;
  to: string;
  plan: string[];
  stops: string[];
  takes_safety_backup: boolean;
  artifact_bytes: number;
  raw_bytes: number;
}

/** A restore job's result (set when it ends). */
export interface RestoreResult extends RestorePlan { safety_backup: string | null; rolled_back: boolean; rollback_error: string | null }

export interface JobDetail { job: Job & { result: RestoreResult | null; finished_at: string | null }; history: { at: string; type: string; message: string | null }[] }

const enc = encodeURIComponent;

export function backupDetail(client: Client, name: string): Promise<BackupDetail> {
  return client.get<BackupDetail>(`/v1/backups/${enc(name)}`);
}

export function mandateBackups(client: Client, mandate: string, limit = 100): Promise<BackupPage> {
  return client.get<BackupPage>(`/v1/mandates/${enc(mandate)}/backups?limit=${limit}`);
}

export async function planRestore(client: Client, request: RestoreRequest): Promise<RestorePlan> {
  return (await client.post<{ plan: RestorePlan }>('/v1/restores', { ...request, dry_run: true })).plan;
}

export async function startRestore(client: Client, request: RestoreRequest): Promise<Job> {
  return (await client.post<{ job: Job }>('/v1/restores', { ...request, dry_run: false })).job;
}

/** The job as it is now, or when it ends within `wait` seconds. */
export function jobDetail(client: Client, id: string, wait = 0): Promise<JobDetail> {
  return client.get<JobDetail>(`/v1/jobs/${enc(id)}${wait > 0 ? `?wait=${wait}` : ''}`);
}

export const TERMINAL_STATES: readonly string[] = ['succeeded', 'failed', 'cancelled', 'interrupted'];

/**
 * Long polls job `id` until it ends or `stopped()`: each answer goes to `onDetail` (the answer to
 * a wait comes the moment the job ends), a failed poll to `onLost` (retried after 2 s), and the
 * next answer after one to `onLost(null)`.
 */
export async function followJob(client: Client, id: string, on: { onDetail(detail: JobDetail): void; onLost(message: string | null): void; stopped(): boolean }): Promise<void> {
  for (let lost = false; !on.stopped(); ) {
    try {
      const detail = await jobDetail(client, id, 30);
      on.onDetail(detail);
      if (lost) on.onLost(null);
      lost = false;
      if (TERMINAL_STATES.includes(detail.job.state)) return;
    } catch (err) {
      lost = true;
      on.onLost(`Lost the job for a moment (${err instanceof Error ? err.message : String(err)}); retrying…`);
      await new Promise((r) => setTimeout(r, 2000));
    }
  }
}

/** The file name of a content-disposition header (its UTF-8 form first). */
export function fileNameOf(disposition: string | null, fallback: string): string {
  if (disposition === null) return fallback;
  const utf8 = /filename\*=UTF-8''([^;]+)/i.exec(disposition)?.[1];
  if (utf8 !== undefined) return decodeURIComponent(utf8);
  return /filename="([^"]+)"/i.exec(disposition)?.[1] ?? fallback;
}

/**
 * Downloads the artifact as stored. The token goes in the Authorization header, never in a URL, so
 * a plain link cannot be used: the body is read into a Blob and saved through an object URL
 * (revoked right after). The browser holds the whole artifact in memory while it saves it.
 */
export async function downloadArtifact(token: string, name: string, target: string, onBytes: (n: number) => void): Promise<string> {
  const response = await fetch(`/v1/backups/${enc(name)}/download?target=${enc(target)}`, { headers: { authorization: `Bearer ${token}` }, cache: 'no-store' });
  if (!response.ok || response.body === null) {
    const body = (await response.json().catch(() => null)) as { error?: { message?: string } } | null;
    throw new Error(body?.error?.message ?? `download: HTTP ${response.status}`);
  }
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let received = 0;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    chunks.push(value);
    received += value.byteLength;
    onBytes(received);
  }
  const file = fileNameOf(response.headers.get('content-disposition'), name);
  const url = URL.createObjectURL(new Blob(chunks as BlobPart[], { type: 'application/octet-stream' }));
  const link = document.createElement('a');
  link.href = url;
  link.download = file;
  document.body.appendChild(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
  return file;
}

/** A manifest's `source.stats` (engine-specific) as `path → value` rows: `tables.shop.orders → 1000`. */
export function flattenStats(value: unknown, path = '', out: [string, string][] = [], limit = 200): [string, string][] {
  if (out.length >= limit) return out;
  if (value === null || typeof value !== 'object') {
    out.push([path, String(value)]);
  } else if (Array.isArray(value)) {
    if (value.every((v) => v === null || typeof v !== 'object')) out.push([path, value.length === 0 ? '—' : value.map(String).join(', ')]);
    else value.forEach((v, i) => flattenStats(v, `${path}[${i}]`, out, limit));
  } else {
    for (const [key, v] of Object.entries(value as Record<string, unknown>)) flattenStats(v, path === '' ? key : `${path}.${key}`, out, limit);
  }
  return out;
}

/** Where the wizard restores to; `to` as POST /v1/restores takes it. */
export type DestinationKind = 'original' | 'new' | 'file';

export interface Destination { kind: DestinationKind; name: string; path: string; safetyBackup: boolean }

export function destinationTo(d: Destination): string {
  if (d.kind === 'original') return 'original';
  return d.kind === 'new' ? `new:${d.name.trim()}` : `file:${d.path.trim()}`;
}

/** A container name Docker accepts (the API refuses others). */
export const CONTAINER_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;
