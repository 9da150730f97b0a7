import type { ConfigProblem } from '../../config/problems.js';
import type { SkippedMandate } from '../../discovery/snapshot.js';
import type { MandateStatus } from '../../status/types.js';
import { callApi } from '../client.js';
import { apiEndpoint, type GlobalOptions } from '../context.js';
import { EXIT } from '../exit-codes.js';
import { printJson, printLine, table } from '../output.js';
import { byCodeUnit } from '../../util/compare.js';

/** The newest successful backup, as `GET /v1/mandates` returns it. */
interface LastBackupJson {
  name: string;
  created_at: string;
  raw_bytes: number | null;
  stored_bytes: number | null;
}

/** What the daemon's status monitor says (absent when the daemon has none). */
interface HealthJson {
  status: MandateStatus;
  reason: string | null;
}

/** One mandate as `GET /v1/mandates` returns it. */
interface MandateJson {
  name: string;
  origin: 'labels' | 'config';
  type: string;
  container: string | null;
  interval: string;
  next_run: string | null;
  /** The next scheduled verification (`backer.verify`), null without one. */
  next_verify: string | null;
  targets: string[];
  status?: MandateStatus;
  health?: HealthJson;
  last_backup: LastBackupJson | null;
}

type SkippedJson = SkippedMandate & { last_backup?: LastBackupJson | null };

interface MandatesReply {
  mandates: MandateJson[];
  skipped: SkippedJson[];
  problems: ConfigProblem[];
  docker_error: string | null;
}

/** `45s`, `12m`, `3h05m`, `2d04h`: how long ago, short. */
export function formatAge(ms: number): string {
  const minutes = Math.floor(Math.max(0, ms) / 60_000);
  if (minutes < 1) return `${Math.floor(Math.max(0, ms) / 1000)}s`;
  if (minutes < 60) return `${minutes}m`;
  const hours = Math.floor(minutes / 60);
  if (hours < 24) return `${hours}h${String(minutes % 60).padStart(2, '0')}m`;
  return `${Math.floor(hours / 24)}d${String(hours % 24).padStart(2, '0')}h`;
}

function lastBackupCells(last: LastBackupJson | null | undefined, now: number): [string, string] {
  if (!last) return ['-', '-'];
  return [last.name, formatAge(now - Date.parse(last.created_at))];
}

/** The status word, with why for stale and failing ones; `ok` for a runnable mandate of a daemon without a status monitor. */
function statusText(m: MandateJson): string {
  const health = m.health;
  if (!health) return 'ok';
  const why = (health.status === 'stale' || health.status === 'failing') && health.reason !== null;
  return why ? `${health.status}: ${health.reason ?? ''}` : health.status;
}

function rows(reply: MandatesReply, now: number): string[][] {
  const runnable = reply.mandates.map((m) => [m.name, m.type, m.container ?? '-', m.interval, m.next_run ?? '-', m.next_verify ?? '-', m.targets.join(','), ...lastBackupCells(m.last_backup, now), statusText(m)]);
  const skipped = reply.skipped.map((m) => [
    m.name,
    '-',
    m.container ?? '-',
    '-',
    '-',
    '-',
    '-',
    ...lastBackupCells(m.last_backup, now),
    `skipped: ${m.problems.map((p) => `${p.where}: ${p.message}`).join('; ')}`,
  ]);
  return [...runnable, ...skipped].sort((a, b) => byCodeUnit(a[0] ?? '', b[0] ?? ''));
}

/** `backer mandates list`: what the running daemon knows, runnable and skipped (with why), each with its status and last backup. */
export async function mandatesListCommand(options: GlobalOptions): Promise<number> {
  const api = await apiEndpoint(options);
  const reply = await callApi<MandatesReply>(api, 'GET', '/v1/mandates');
  if (options.json) {
    printJson(reply);
    return EXIT.OK;
  }
  const body = rows(reply, Date.now());
  if (body.length === 0) printLine('no mandates');
  else printLine(table([['NAME', 'TYPE', 'CONTAINER', 'INTERVAL', 'NEXT_RUN', 'NEXT_VERIFY', 'TARGETS', 'LAST_BACKUP', 'AGE', 'STATUS'], ...body]));
  // With Docker switched off on purpose (docker.enabled: false, src/discovery/snapshot.ts) there is nothing to warn about.
  if (reply.docker_error !== null && !reply.docker_error.includes('(docker.enabled: false)')) process.stderr.write(`warning: ${reply.docker_error}\n`);
  return EXIT.OK;
}
