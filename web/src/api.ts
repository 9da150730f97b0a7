// A typed client over the few API routes the UI uses (shapes as in docs/openapi.json; test/unit/web-api-types.test.ts
// checks every interface named like an API schema, and the parts its fields name, against it).
// The token goes in the Authorization header only: never in a URL.

export type Scope = 'read' | 'operate' | 'admin';
export type MandateStatus = 'ok' | 'stale' | 'failing' | 'never_succeeded' | 'skipped';

export interface Whoami { name: string; scope: Scope; via: 'socket' | 'token' }

export interface MandateHealth {
  status: MandateStatus;
  reason: string | null;
  last_success_at: string | null;
  last_error: { code: string; message: string } | null;
  max_age_ms: number | null;
  age_ms: number | null;
  running: boolean;
}

export interface LastBackup { name: string; created_at: string; raw_bytes: number | null; stored_bytes: number | null }

export interface Mandate {
  name: string;
  origin: 'labels' | 'config';
  type: string;
  container: string | null;
  targets: string[];
  next_run: string | null;
  status?: MandateStatus;
  health?: MandateHealth;
  last_backup: LastBackup | null;
}

export interface SkippedMandate {
  name: string;
  origin: 'labels' | 'config';
  container: string | null;
  problems: { where: string; message: string }[];
  status?: 'skipped';
  last_backup: LastBackup | null;
}

export interface MandateList { mandates: Mandate[]; skipped: SkippedMandate[]; docker_error: string | null }

export interface Job {
  id: string;
  kind: string;
  mandate: string;
  state: string;
  progress: { bytes: number; total: number | null } | null;
  error: { code: string; message: string } | null;
}

export interface QueueStats { running: number; queued: number; retrying: number }

export interface Target { name: string; usage: { backups: number; bytes: number } | null; health: { healthy: boolean; error: string | null } }

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** A client bound to one token; every call sends it as a bearer token. */
export function createClient(token: string) {
  async function call<T>(method: 'GET' | 'POST' | 'DELETE', path: string, body?: unknown): Promise<T> {
    const headers: Record<string, string> = { authorization: `Bearer ${token}`, accept: 'application/json' };
    if (body !== undefined) headers['content-type'] = 'application/json';
    const response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), cache: 'no-store' });
    const text = await response.text();
    const parsed: unknown = text === '' ? null : JSON.parse(text);
    if (!response.ok) {
      const error = (parsed as { error?: { code?: string; message?: string } } | null)?.error;
      throw new ApiError(response.status, error?.code ?? 'HTTP_ERROR', error?.message ?? `${method} ${path}: HTTP ${response.status}`);
    }
    return parsed as T;
  }
  return {
    token,
    /** Any API route (shapes in docs/openapi.json); screens keep their typed wrappers in their own files. */
    get: <T>(path: string) => call<T>('GET', path),
    post: <T>(path: string, body?: unknown) => call<T>('POST', path, body),
    del: <T>(path: string) => call<T>('DELETE', path),
    whoami: () => call<Whoami>('GET', '/v1/whoami'),
    mandates: () => call<MandateList>('GET', '/v1/mandates'),
    /** Running and queued jobs (the API filters one state per call). */
    activeJobs: async (): Promise<Job[]> => {
      const [running, queued] = await Promise.all([call<{ jobs: Job[] }>('GET', '/v1/jobs?state=running&limit=500'), call<{ jobs: Job[] }>('GET', '/v1/jobs?state=queued&limit=500')]);
      return [...running.jobs, ...queued.jobs];
    },
    queueStats: () => call<QueueStats>('GET', '/v1/queue/stats'),
    targets: () => call<{ targets: Target[] }>('GET', '/v1/targets'),
    backupNow: (mandate: string) => call<{ job: Job }>('POST', `/v1/mandates/${encodeURIComponent(mandate)}/backups`),
  };
}

export type Client = ReturnType<typeof createClient>;
