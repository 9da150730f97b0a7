import type { Database, Statement } from 'better-sqlite3';
import type { ErrorCode } from '../errors.js';
import { addToStats } from '../queue/stats.js';
import { TERMINAL_STATES, type AnyJob, type RecentBackups, type JobEvent, type JobFilter, type JobStore, type MandateStats } from '../queue/types.js';
import type { StateDb } from './db.js';

interface JobRow {
  id: string;
  kind: string;
  mandate: string;
  params: string | null;
  progress: string | null;
  trigger: string;
  state: string;
  priority: number;
  attempts: number;
  not_before: string | null;
  wait_ms: number | null;
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
  error: string | null;
  result: string | null;
}

interface StatsRow extends Omit<MandateStats, 'last_error'> {
  last_error: string | null;
}

const JOB_COLUMNS = 'id, kind, mandate, params, progress, trigger, state, priority, attempts, not_before, wait_ms, created_at, started_at, finished_at, error, result';
const TERMINAL_SQL = [...TERMINAL_STATES].map((s) => `'${s}'`).join(', ');
const NEWEST_FIRST = 'ORDER BY created_at DESC, seq DESC';

/** The newest succeeded backup jobs of a mandate `m.value`, newest first (an index walk on jobs_mandate_created that stops early). */
const SUCCEEDED_BACKUPS = `FROM jobs WHERE mandate = m.value AND kind = 'backup' AND state = 'succeeded' ${NEWEST_FIRST}`;

/**
 * For each named mandate, in one statement (`GET /v1/mandates`, issue 11): the newest succeeded
 * backup's name, times and sizes (the stored size of its first succeeded target with one), and the
 * raw sizes of the newest N, newest first. Per mandate two index walks that stop early, never a
 * scan of the whole history; only those rows' JSON is read. `name` is null when the result is not
 * a backup's (no `raw_size` key), as lastBackup() in src/api/mandate-status.ts expects.
 */
const RECENT_BACKUPS_SQL = `
  SELECT m.value AS mandate, n.created_at, n.started_at,
    CASE WHEN json_type(n.result, '$.raw_size') IS NOT NULL THEN json_extract(n.result, '$.name') END AS name,
    json_extract(n.result, '$.raw_size') AS raw_bytes,
    (SELECT json_extract(t.value, '$.size') FROM json_each(n.result, '$.targets') t
     WHERE json_extract(t.value, '$.status') = 'succeeded' AND json_extract(t.value, '$.size') IS NOT NULL ORDER BY t.key LIMIT 1) AS stored_bytes,
    (SELECT json_group_array(raw ORDER BY created_at DESC, seq DESC)
     FROM (SELECT json_extract(result, '$.raw_size') AS raw, created_at, seq ${SUCCEEDED_BACKUPS} LIMIT @per)) AS sizes
  FROM json_each(@mandates) m
  LEFT JOIN jobs n ON n.seq = (SELECT seq ${SUCCEEDED_BACKUPS} LIMIT 1)
  ORDER BY m.key`;

interface RecentRow {
  mandate: string;
  created_at: string | null;
  started_at: string | null;
  name: string | null;
  raw_bytes: number | null;
  stored_bytes: number | null;
  sizes: string;
}

function toRecent(row: RecentRow): RecentBackups {
  const { mandate, created_at, started_at, name, raw_bytes, stored_bytes } = row;
  const newest = created_at === null ? null : { name, created_at, started_at, raw_bytes, stored_bytes };
  return { mandate, newest, raw_sizes: JSON.parse(row.sizes) as (number | null)[] };
}

const json = (value: unknown): string | null => (value === null || value === undefined ? null : JSON.stringify(value));
const parse = <T>(text: string | null): T | null => (text === null ? null : (JSON.parse(text) as T));

function toRow(job: AnyJob): JobRow {
  return { ...job, params: json(job.params), progress: json(job.progress), error: json(job.error), result: json(job.result) };
}

function toJob(row: JobRow): AnyJob {
  return {
    ...row,
    params: parse(row.params),
    progress: parse(row.progress),
    error: parse(row.error),
    result: parse(row.result),
  } as AnyJob;
}

function toStats(row: StatsRow): MandateStats {
  return { ...row, last_error: parse<{ code: ErrorCode; message: string }>(row.last_error) };
}

/** Every statement the store runs, prepared once. */
function prepare(db: Database) {
  return {
    state: db.prepare<[string], { state: string }>('SELECT state FROM jobs WHERE id = ?'),
    upsert: db.prepare<[JobRow]>(
      `INSERT INTO jobs (${JOB_COLUMNS}) VALUES (@id, @kind, @mandate, @params, @progress, @trigger, @state, @priority, @attempts, @not_before, @wait_ms, @created_at, @started_at, @finished_at, @error, @result)
       ON CONFLICT (id) DO UPDATE SET kind = excluded.kind, mandate = excluded.mandate, params = excluded.params, progress = excluded.progress,
         trigger = excluded.trigger, state = excluded.state, priority = excluded.priority, attempts = excluded.attempts, not_before = excluded.not_before,
         wait_ms = excluded.wait_ms, created_at = excluded.created_at, started_at = excluded.started_at, finished_at = excluded.finished_at,
         error = excluded.error, result = excluded.result`,
    ),
    get: db.prepare<[string], JobRow>(`SELECT ${JOB_COLUMNS} FROM jobs WHERE id = ?`),
    active: db.prepare<[], JobRow>(`SELECT ${JOB_COLUMNS} FROM jobs WHERE state IN ('queued', 'running') ORDER BY created_at, seq`),
    finishedSince: db.prepare<[string], JobRow>(
      `SELECT ${JOB_COLUMNS} FROM jobs WHERE state IN (${TERMINAL_SQL}) AND finished_at >= ? ORDER BY finished_at, seq`,
    ),
    addEvent: db.prepare<[{ id: string; at: string; attempt: number; type: string; message: string | null }]>(
      `INSERT INTO job_events (job_id, seq, at, attempt, type, message)
       SELECT @id, COALESCE((SELECT MAX(seq) FROM job_events WHERE job_id = @id), 0) + 1, @at, @attempt, @type, @message
       WHERE EXISTS (SELECT 1 FROM jobs WHERE id = @id)`,
    ),
    events: db.prepare<[string], JobEvent>('SELECT at, attempt, type, message FROM job_events WHERE job_id = ? ORDER BY seq'),
    lease: db.prepare<[string, string, string]>('UPDATE jobs SET lease_owner = ?, lease_until = ? WHERE id = ?'),
    orphaned: db.prepare<[string], JobRow>(
      `SELECT ${JOB_COLUMNS} FROM jobs WHERE state = 'running' AND lease_owner IS NOT NULL AND lease_owner <> ? ORDER BY seq`,
    ),
    stats: db.prepare<[string], StatsRow>('SELECT * FROM mandate_stats WHERE mandate = ?'),
    allStats: db.prepare<[], StatsRow>('SELECT * FROM mandate_stats ORDER BY mandate'),
    putStats: db.prepare<[StatsRow]>(
      `INSERT OR REPLACE INTO mandate_stats (mandate, last_success_at, last_failure_at, last_error, successes, failures, last_duration_ms, avg_duration_ms, last_raw_bytes, last_stored_bytes)
       VALUES (@mandate, @last_success_at, @last_failure_at, @last_error, @successes, @failures, @last_duration_ms, @avg_duration_ms, @last_raw_bytes, @last_stored_bytes)`,
    ),
    recentBackups: db.prepare<[{ mandates: string; per: number }], RecentRow>(RECENT_BACKUPS_SQL),
    claimFire: db.prepare<[string, string, string]>('INSERT OR IGNORE INTO schedule_fires (mandate, kind, at) VALUES (?, ?, ?)'),
    lastFire: db.prepare<[string, string], { at: string | null }>('SELECT MAX(at) AS at FROM schedule_fires WHERE mandate = ? AND kind = ?'),
    prune: db.prepare<[string]>(`DELETE FROM jobs WHERE state IN (${TERMINAL_SQL}) AND finished_at IS NOT NULL AND finished_at < ?`),
    pruneFires: db.prepare<[string]>(
      `DELETE FROM schedule_fires WHERE at < ? AND at < (SELECT MAX(f.at) FROM schedule_fires f WHERE f.mandate = schedule_fires.mandate AND f.kind = schedule_fires.kind)`,
    ),
  };
}

type Statements = ReturnType<typeof prepare>;

/** list() runs one of eight statements (which filters are set), prepared on first use. */
function lister(db: Database): (filter: JobFilter) => { jobs: AnyJob[]; total: number } {
  const cache = new Map<string, { page: Statement<unknown[], JobRow>; count: Statement<unknown[], { n: number }> }>();
  return (filter) => {
    const keys = (['mandate', 'kind', 'state'] as const).filter((k) => filter[k] !== undefined);
    const id = keys.join(',');
    let statements = cache.get(id);
    if (!statements) {
      const where = keys.length === 0 ? '' : `WHERE ${keys.map((k) => `${k} = ?`).join(' AND ')}`;
      statements = {
        page: db.prepare<unknown[], JobRow>(`SELECT ${JOB_COLUMNS} FROM jobs ${where} ${NEWEST_FIRST} LIMIT ? OFFSET ?`),
        count: db.prepare<unknown[], { n: number }>(`SELECT COUNT(*) AS n FROM jobs ${where}`),
      };
      cache.set(id, statements);
    }
    const values = keys.map((k) => filter[k]);
    const read = db.transaction(() => ({
      jobs: statements.page.all(...values, filter.limit ?? 100, filter.offset ?? 0).map(toJob),
      total: statements.count.get(...values)?.n ?? 0,
    }));
    return read();
  };
}

/** save(): the job, and the mandate's stats when a backup just became terminal, in one transaction. */
function saver(db: Database, s: Statements): (job: AnyJob) => void {
  return db.transaction((job: AnyJob) => {
    const before = s.state.get(job.id)?.state;
    s.upsert.run(toRow(job));
    if (!TERMINAL_STATES.has(job.state) || (before !== undefined && TERMINAL_STATES.has(before as AnyJob['state']))) return;
    const previous = s.stats.get(job.mandate);
    const next = addToStats(previous ? toStats(previous) : null, job);
    if (next) s.putStats.run({ ...next, last_error: json(next.last_error) });
  });
}

/**
 * recentBackups() answers (GET /v1/mandates asks for all mandates on every request: issue 11)
 * kept until the next write of a job (save, prune): the jobs table changes only through this store
 * (the daemon holds the data_dir lock). The same answer is returned as long as nothing was
 * written, so a caller may key its own cache on it; callers must not modify it.
 */
function recentBackupsCache(s: Statements): { get: JobStore['recentBackups']; clear(): void } {
  let cached: { key: string; value: RecentBackups[] } | undefined;
  return {
    get(mandates, perMandate) {
      const names = JSON.stringify([...new Set(mandates)]);
      const key = `${perMandate}:${names}`;
      if (cached?.key === key) return cached.value;
      const value = s.recentBackups.all({ mandates: names, per: perMandate }).map(toRecent);
      cached = { key, value };
      return value;
    },
    clear: () => void (cached = undefined),
  };
}

/**
 * Jobs in `<data_dir>/state.db`: the daemon's store. Same semantics as the memory store (the
 * contract suite in test/state/ runs against both), without its size limit: history is pruned by
 * age (`prune`, state.history_days). close() leaves the shared StateDb open: the daemon closes it.
 */
export function createSqliteJobStore(state: StateDb): JobStore {
  const { db } = state;
  const s = prepare(db);
  const list = lister(db);
  const written = saver(db, s);
  const recent = recentBackupsCache(s);
  const save = (job: AnyJob): void => {
    // Cleared after the write (a throwing write may have changed nothing, but clearing costs one query).
    try {
      written(job);
    } finally {
      recent.clear();
    }
  };
  const prune = db.transaction((before: Date) => {
    const at = before.toISOString();
    // Older fires are never looked at again; the newest of each schedule stays for lastFire.
    s.pruneFires.run(at);
    return s.prune.run(at).changes;
  });
  return {
    save,
    get: (id) => {
      const row = s.get.get(id);
      return row ? toJob(row) : undefined;
    },
    list: (filter = {}) => list(filter),
    active: () => s.active.all().map(toJob),
    finishedSince: (since) => s.finishedSince.all(since.toISOString()).map(toJob),
    addEvent(id, event) {
      s.addEvent.run({ id, at: event.at, attempt: event.attempt, type: event.type, message: event.message });
    },
    events: (id) => s.events.all(id),
    lease(id, owner, until) {
      s.lease.run(owner, until.toISOString(), id);
    },
    orphaned: (owner) => s.orphaned.all(owner).map(toJob),
    mandateStats: (mandate) => {
      const row = s.stats.get(mandate);
      return row ? toStats(row) : null;
    },
    allMandateStats: () => s.allStats.all().map(toStats),
    recentBackups: recent.get,
    claimFire: (mandate, kind, at) => s.claimFire.run(mandate, kind, at.toISOString()).changes === 1,
    lastFire(mandate, kind) {
      const at = s.lastFire.get(mandate, kind)?.at ?? null;
      return at === null ? null : new Date(at);
    },
    prune(before) {
      try {
        return prune(before);
      } finally {
        recent.clear();
      }
    },
    close: () => undefined,
  };
}
