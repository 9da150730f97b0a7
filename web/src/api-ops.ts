// Typed wrappers of the routes the jobs/queue, targets and configuration problems screens use
// (shapes as in docs/openapi.json: Job, JobsPage, QueueStats, Target, TargetDetail, BackupPage, MandateList).
import type { Client } from './api';

export type JobState = 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled' | 'interrupted';

export interface OpsJob {
  id: string;
  kind: string;
  mandate: string;
  state: JobState;
  trigger: string;
  priority: number;
  attempts: number;
  not_before: string | null;
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
  progress: { bytes: number; total: number | null } | null;
  error: { code: string; message: string } | null;
  /** A queued job ready to run: its place in the order jobs get a slot (1: next). */
  queue_position?: number | null;
}

export interface JobsPage { jobs: OpsJob[]; total: number; limit: number; offset: number }

export interface FullQueueStats {
  running: number;
  queued: number;
  retrying: number;
  concurrency: number;
  wait_ms_p50: number | null;
  wait_ms_p95: number | null;
  failures_24h: number;
  overloaded: { mandate: string; waited_ms: number; interval_ms: number }[];
}

export interface TargetInfo {
  name: string;
  type: string;
  default: boolean;
  usage: { backups: number; bytes: number; problems: number } | null;
  health: { healthy: boolean; error: { code: string; message: string } | null; checked_at: string | null };
  settings: Record<string, unknown>;
}

export interface ManifestProblem {
  target: string;
  key: string;
  message: string;
  dangling?: { name: string; uuid: string; mandate: string; artifact_key: string };
}

export interface BackupSummary {
  name: string;
  uuid: string;
  mandate: string;
  created_at: string;
  artifact: { key: string; size: number };
  target: { name: string };
}

export interface BackupPage { backups: BackupSummary[]; total: number; limit: number; offset: number; problems: ManifestProblem[] }

export interface ConfigProblem { where: string; message: string }

export interface ProblemList {
  mandates: { name: string }[];
  skipped: { name: string; origin: 'labels' | 'config'; container: string | null; problems: ConfigProblem[] }[];
  problems: ConfigProblem[];
  docker_error: string | null;
}

const enc = encodeURIComponent;

/** Jobs of one state, newest first (the API filters one state per call). */
export const jobsIn = (client: Client, state: JobState, limit = 100): Promise<JobsPage> => client.get<JobsPage>(`/v1/jobs?state=${state}&limit=${limit}`);

export const queueStats = (client: Client): Promise<FullQueueStats> => client.get<FullQueueStats>('/v1/queue/stats');

export const cancelJob = (client: Client, id: string): Promise<{ job: OpsJob }> => client.post<{ job: OpsJob }>(`/v1/jobs/${enc(id)}/cancel`);

export const listTargets = (client: Client): Promise<{ targets: TargetInfo[] }> => client.get<{ targets: TargetInfo[] }>('/v1/targets');

export const targetDetail = (client: Client, name: string): Promise<{ target: TargetInfo; mandates: string[] }> => client.get(`/v1/targets/${enc(name)}`);

export const targetBackups = (client: Client, name: string, limit: number, offset: number): Promise<BackupPage> =>
  client.get<BackupPage>(`/v1/targets/${enc(name)}/backups?limit=${limit}&offset=${offset}`);

export const problemList = (client: Client): Promise<ProblemList> => client.get<ProblemList>('/v1/mandates');
