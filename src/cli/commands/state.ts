import { existsSync, renameSync, statSync } from 'node:fs';
import Database from 'better-sqlite3';
import { createLogger, SecretRegistry } from '../../logging/logger.js';
import { listBackups } from '../../manifests/store.js';
import type { Manifest } from '../../manifests/schema.js';
import type { BackerConfig } from '../../config/schema.js';
import type { MandateStats } from '../../queue/types.js';
import { claimDataDir, liveOwner, lockedError, ownerKey, recordedOwner, releaseDataDir } from '../../state/daemon-lock.js';
import { openStateDb, stateDbPath, type StateDb } from '../../state/db.js';
import { statsFromManifests, writeMandateStats } from '../../state/rebuild-stats.js';
import type { ProcessOwner } from '../../state/owner.js';
import { createTarget } from '../../targets/index.js';
import { loadCliConfig, type GlobalOptions } from '../context.js';
import { EXIT } from '../exit-codes.js';
import { formatBytes, printJson, printLine } from '../output.js';

export interface StateResetOptions extends GlobalOptions {
  yes?: boolean;
}

const cliLogger = () => createLogger({ level: 'warn', secrets: new SecretRegistry() });

/** The state files: the database and its WAL and shared-memory files, when present. */
function stateFiles(path: string): string[] {
  return [path, `${path}-wal`, `${path}-shm`].filter((p) => existsSync(p));
}

/**
 * The live daemon recorded in a state.db, read without migrating or judging the file: a damaged
 * or newer file names nobody (no daemon could have opened it).
 */
function lockHolder(path: string): ProcessOwner | null {
  if (!existsSync(path)) return null;
  let db: Database.Database | undefined;
  try {
    db = new Database(path, { readonly: true, fileMustExist: true, timeout: 5000 });
    return liveOwner({ path, db, close: () => undefined });
  } catch {
    return null;
  } finally {
    db?.close();
  }
}

/** Every backup on every configured target; any target that cannot be listed stops the reset. */
async function readManifests(config: BackerConfig): Promise<{ manifests: Manifest[]; problems: number; targets: string[] }> {
  const manifests: Manifest[] = [];
  let problems = 0;
  for (const targetConfig of config.targets) {
    const target = createTarget(targetConfig);
    try {
      const listing = await listBackups(target);
      manifests.push(...listing.backups.map((b) => b.manifest));
      problems += listing.problems.length;
    } finally {
      await target.close();
    }
  }
  return { manifests, problems, targets: config.targets.map((t) => t.name) };
}

/** `state.db.reset-20261129T194500Z`: when the reset happened, in UTC. */
function resetSuffix(now: Date): string {
  return `reset-${now.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z')}`;
}

/** Renames the state files; a name already taken (two resets in one second) gets `-2`, `-3` …: nothing is overwritten. */
function moveAway(path: string, now: Date): { from: string; to: string }[] {
  let base = `${path}.${resetSuffix(now)}`;
  for (let n = 2; existsSync(base) || existsSync(`${base}-wal`); n++) base = `${path}.${resetSuffix(now)}-${n}`;
  return stateFiles(path).map((from) => {
    const to = base + from.slice(path.length);
    renameSync(from, to);
    return { from, to };
  });
}

function rebuild(dataDir: string, stats: MandateStats[]): string {
  const state = openStateDb(dataDir, cliLogger());
  try {
    claimDataDir(state);
    writeMandateStats(state, stats);
    releaseDataDir(state);
    return state.path;
  } finally {
    state.close();
  }
}

/**
 * `backer state reset`: moves state.db away (never deletes it) and starts a fresh one whose
 * mandate stats come from the manifests on the targets. Refused while a daemon uses the data_dir.
 */
export async function stateResetCommand(options: StateResetOptions): Promise<number> {
  const { config } = await loadCliConfig(options);
  const path = stateDbPath(config.data_dir);
  const holder = lockHolder(path);
  if (holder) throw lockedError(path, holder);
  const { manifests, problems, targets } = await readManifests(config);
  const stats = statsFromManifests(manifests);
  if (!options.yes) {
    const files = stateFiles(path);
    if (options.json) printJson({ reset: false, path, would_move: files, targets, mandates: stats.map((s) => s.mandate) });
    else {
      printLine(`would move ${files.length > 0 ? files.join(', ') : '(no state.db yet)'} to ${path}.${resetSuffix(new Date())}*`);
      printLine(`and start a fresh ${path} with the stats of ${stats.length} mandate(s) rebuilt from targets ${targets.join(', ') || '(none)'}`);
      printLine('job history is not on the targets: it starts empty. Run again with --yes to do it.');
    }
    return EXIT.FAILED;
  }
  // A daemon started while the targets were read must not lose its database under it.
  const late = lockHolder(path);
  if (late) throw lockedError(path, late);
  const moved = moveAway(path, new Date());
  rebuild(config.data_dir, stats);
  if (options.json) printJson({ reset: true, path, moved, stats, problems });
  else {
    for (const m of moved) printLine(`moved ${m.from} to ${m.to}`);
    printLine(`new ${path}: stats of ${stats.length} mandate(s) rebuilt from ${manifests.length} manifest(s)`);
    if (problems > 0) process.stderr.write(`warning: ${problems} manifest(s) were not trusted; see \`backer backups list\`\n`);
  }
  return EXIT.OK;
}

interface StateSummary {
  path: string;
  exists: boolean;
  schema_version: number | null;
  size_bytes: number;
  jobs: Record<string, number>;
  lock: { pid: number; host: string; key: string; alive: boolean } | null;
}

function summarize(state: StateDb): Omit<StateSummary, 'exists' | 'size_bytes'> {
  const counts = state.db.prepare<[], { state: string; n: number }>('SELECT state, COUNT(*) AS n FROM jobs GROUP BY state ORDER BY state').all();
  const owner = recordedOwner(state);
  return {
    path: state.path,
    schema_version: state.db.pragma('user_version', { simple: true }) as number,
    jobs: Object.fromEntries(counts.map((c) => [c.state, c.n])),
    lock: owner ? { pid: owner.pid, host: owner.host, key: ownerKey(owner), alive: liveOwner(state) !== null } : null,
  };
}

/** `backer state show`: where the state is, its schema, size, jobs by state and the daemon holding it. */
export async function stateShowCommand(options: GlobalOptions): Promise<number> {
  const { config } = await loadCliConfig(options);
  const path = stateDbPath(config.data_dir);
  let summary: StateSummary = { path, exists: false, schema_version: null, size_bytes: 0, jobs: {}, lock: null };
  if (existsSync(path)) {
    const state = openStateDb(config.data_dir, cliLogger());
    try {
      summary = { ...summarize(state), exists: true, size_bytes: stateFiles(path).reduce((n, p) => n + statSync(p).size, 0) };
    } finally {
      state.close();
    }
  }
  if (options.json) printJson(summary);
  else {
    printLine(`path:     ${summary.path}${summary.exists ? '' : ' (not created yet)'}`);
    printLine(`schema:   ${summary.schema_version ?? '-'}`);
    printLine(`size:     ${formatBytes(summary.size_bytes)}`);
    const jobs = Object.entries(summary.jobs).map(([s, n]) => `${s} ${n}`);
    printLine(`jobs:     ${jobs.length > 0 ? jobs.join(', ') : 'none'}`);
    const lock = summary.lock;
    printLine(`daemon:   ${lock ? `pid ${lock.pid} on ${lock.host} (${lock.alive ? 'running' : 'gone'})` : 'none'}`);
  }
  return EXIT.OK;
}
