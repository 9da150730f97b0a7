import { randomUUID } from 'node:crypto';
import { posix } from 'node:path';
import type { Readable } from 'node:stream';
import { BackerError, describeError, type ErrorCode } from '../errors.js';
import { cancelledError } from '../util/abort.js';
import { openContainerRun, type ContainerRun } from './container-run.js';
import { lastLines } from './docker-exec.js';
import type { SqliteOptions } from './sqlite.js';
import { requireHelperImage, swapDatabase, swapHelperImage, swapMount, type SwapTarget } from './sqlite-swap.js';
import { tempFileRemover, withPrivateUmask } from './temp-copy.js';
import type { DrillCheck, DumpContext, RestorePlan, RestoreRequest, SourceInfo } from './types.js';
import { parseVersion, versionAtLeast } from './versions.js';

/*
 * SQLite restore: the app keeps running while the backup streams (docker exec with stdin) into a
 * temp file next to the database and `PRAGMA integrity_check` accepts it; only then is the
 * container stopped, the temp file renamed over the database by a helper container on the same
 * mount (the container is stopped, so nothing can exec in it), its -wal/-shm removed, and the
 * container started again, whatever happened. The old database is untouched until the rename.
 */

export const COMPONENT = 'source sqlite';

/**
 * Paths travel in argv (no shell) and the copy's path inside an SQL string literal: quotes,
 * backslashes and control characters are refused instead of escaped.
 */
// eslint-disable-next-line no-control-regex
export const UNSAFE_PATH = /['"\\\u0000-\u001f\u007f]/;

const SQLITE = ['sqlite3', '-init', '/dev/null', '-batch', '-bail'];
/** Every ordinary table (no sqlite_* internals, no virtual tables whose module may be missing), names hex-encoded. */
const LIST_TABLES = "SELECT hex(name) FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' AND coalesce(sql, '') NOT LIKE 'CREATE VIRTUAL%' ORDER BY name;";
/** Writes stdin to $1 (private while it is written), then gives it the mode and owner of the database $2, if that exists. */
const WRITE_TEMP = 'umask 077 && cat > "$1" && if [ -e "$2" ]; then chmod "$(stat -c %a "$2")" "$1" && { [ "$(id -u)" != 0 ] || chown "$(stat -c %u:%g "$2")" "$1"; }; fi';

function refused(message: string, details: Record<string, unknown> = {}): BackerError {
  return new BackerError('RESTORE_REFUSED', message, { component: COMPONENT, details, permanent: true });
}

/** sqlite3's version in the container; TOOL_MISSING naming sqlite3 otherwise. */
export async function sqliteTool(run: ContainerRun): Promise<[number, number, number]> {
  let answer = '';
  try {
    answer = (await run.probe(['sqlite3'], { wrap: withPrivateUmask })).version;
  } catch (err) {
    if (!(err instanceof BackerError && err.code === 'TOOL_MISSING')) throw err;
  }
  const version = parseVersion(answer, /^(\d+)\.(\d+)\.(\d+)/);
  if (version !== null) return version;
  throw new BackerError('TOOL_MISSING', `container ${run.name} has no working sqlite3 on its PATH (Backer runs sqlite3 and sh)${answer ? `: ${lastLines(answer, 1)}` : ''}`, {
    component: COMPONENT,
    details: { container: run.name },
    permanent: true,
  });
}

/** Row count of every table of the database `file` in the container (read-only). */
export async function tableCounts(run: ContainerRun, file: string, code: ErrorCode): Promise<Record<string, number>> {
  const listed = await run.run([...SQLITE, '-readonly', file, LIST_TABLES], { code, what: `sqlite3 listing the tables of ${file}` });
  const names = listed.split('\n').map((l) => l.trim()).filter((l) => l !== '').map((hex) => Buffer.from(hex, 'hex').toString('utf8'));
  if (names.length === 0) return {};
  const sql = names.map((n) => `SELECT count(*) FROM "${n.replace(/"/g, '""')}";`).join('\n');
  const counted = (await run.run([...SQLITE, '-readonly', file, sql], { code, what: `sqlite3 counting the rows of ${file}` })).trim().split('\n');
  if (counted.length !== names.length) {
    throw new BackerError(code, `sqlite3 counted ${counted.length} of ${names.length} tables of ${file} in container ${run.name}`, { component: COMPONENT, details: { container: run.name } });
  }
  return Object.fromEntries(names.map((name, i) => [name, Number(counted[i])]));
}

/** `PRAGMA integrity_check` of `file`: `ok`, or what sqlite3 reports (its errors included). */
async function integrity(run: ContainerRun, file: string): Promise<string> {
  const { exitCode, stdout, stderr } = await run.capture([...SQLITE, file, 'PRAGMA integrity_check;']);
  const out = stdout.trim();
  return exitCode === 0 && out === 'ok' ? 'ok' : lastLines(`${out}\n${stderr}`) || `sqlite3 exited with code ${exitCode}`;
}

/** The row counts recorded at dump time, or null (manifest version 1, or not a record of this source). */
function recordedTables(manifest: SourceInfo): Record<string, number> | null {
  const stats = manifest.stats as { tables?: unknown } | undefined;
  const tables = stats?.tables;
  if (typeof tables !== 'object' || tables === null) return null;
  const entries = Object.entries(tables as Record<string, unknown>);
  return entries.every(([, n]) => typeof n === 'number') ? Object.fromEntries(entries as [string, number][]) : null;
}

interface Destination {
  run: ContainerRun;
  /** The database file that is replaced (the mandate's path, or the destination's own). */
  path: string;
  dir: string;
}

async function destinationOf(options: SqliteOptions, request: RestoreRequest, context: DumpContext): Promise<Destination> {
  const to = request.destination;
  if (to.kind !== 'container') throw refused('sqlite backups restore into a container: --to original, --to container:NAME or --to new:NAME');
  const path = to.path ?? options.path;
  if (!path.startsWith('/') || path.endsWith('/') || UNSAFE_PATH.test(path)) {
    throw refused(`the database path ${JSON.stringify(path)} must be an absolute file path without quotes, backslashes or control characters`);
  }
  const run = await openContainerRun(context, to.container, COMPONENT);
  return { run, path, dir: posix.dirname(path) };
}

async function swapTarget(d: Destination): Promise<SwapTarget> {
  const inspect = await d.run.docker.getContainer(d.run.name).inspect().catch((err: unknown) => {
    throw new BackerError('DOCKER_UNAVAILABLE', `cannot inspect container ${d.run.name}: ${describeError(err)}`, { component: COMPONENT, details: { container: d.run.name }, cause: err });
  });
  const found = swapMount(inspect.Mounts, d.dir);
  if (found === null) {
    throw refused(`${d.dir} in container ${d.run.name} is not on a writable volume or bind mount: Backer swaps the database through a helper container on that mount`, { container: d.run.name, path: d.path });
  }
  return { container: d.run.name, containerId: inspect.Id, ...found };
}

/** The directory exists and the container's user may write it, and the path is not a directory. */
async function checkDirectory(d: Destination): Promise<void> {
  const script = 'test -d "$1" || exit 3; test -w "$1" || exit 4; test ! -d "$2" || exit 5';
  const { exitCode, stderr } = await d.run.capture(['sh', '-c', script, 'sh', d.dir, d.path]);
  const where = `in container ${d.run.name}`;
  if (exitCode === 3) throw refused(`the directory ${d.dir} of the database does not exist ${where}`, { container: d.run.name, path: d.path });
  if (exitCode === 4) throw refused(`the directory ${d.dir} ${where} is not writable by the container's user`, { container: d.run.name, path: d.path });
  if (exitCode === 5) throw refused(`${d.path} ${where} is a directory, not a database file`, { container: d.run.name, path: d.path });
  if (exitCode !== 0) throw refused(`cannot check ${d.dir} ${where} (exit code ${exitCode}): ${lastLines(stderr)}`, { container: d.run.name });
}

/** Refuses a destination whose sqlite3 is of an older major version than the dumped one. */
function checkVersion(d: Destination, version: readonly number[], manifest: SourceInfo): string | null {
  const dumped = typeof manifest.sqlite_version === 'string' ? parseVersion(manifest.sqlite_version, /^(\d+)\.(\d+)\.(\d+)/) : null;
  if (dumped === null) return null;
  if (version[0] !== undefined && version[0] < dumped[0]) {
    throw refused(`container ${d.run.name} has sqlite3 ${version.join('.')}, older than the dumped ${dumped.join('.')}`, { container: d.run.name });
  }
  return !versionAtLeast(version, dumped) ? `note: sqlite3 ${version.join('.')} in container ${d.run.name} is older than the dumped ${dumped.join('.')}` : null;
}

export async function planSqliteRestore(options: SqliteOptions, request: RestoreRequest, context: DumpContext): Promise<RestorePlan> {
  const d = await destinationOf(options, request, context);
  const version = await sqliteTool(d.run);
  const note = checkVersion(d, version, request.manifest);
  await checkDirectory(d);
  await swapTarget(d);
  const image = await swapHelperImage(d.run.docker, context);
  await requireHelperImage(d.run.docker, image, d.run.name);
  const name = d.run.name;
  const steps = [
    ...(note === null ? [] : [note]),
    `write the backup to a temp file in ${d.dir} in container ${name} (the app keeps running) and check it (PRAGMA integrity_check)`,
    `stop container ${name}`,
    `replace ${d.path} by the checked copy (helper container of image ${image}), remove ${d.path}-wal and ${d.path}-shm`,
    `start container ${name} again`,
  ];
  return { steps, stops: [name] };
}

async function writeAndCheck(d: Destination, temp: string, input: Readable): Promise<void> {
  await d.run.feed(['sh', '-c', WRITE_TEMP, 'sh', temp, d.path], input);
  const result = await integrity(d.run, temp);
  if (result !== 'ok') {
    throw new BackerError('RESTORE_FAILED', `the restored copy failed PRAGMA integrity_check in container ${d.run.name}: ${result}; ${d.path} was not touched`, {
      component: COMPONENT,
      details: { container: d.run.name, path: d.path },
    });
  }
}

export async function restoreSqlite(options: SqliteOptions, request: RestoreRequest, input: Readable, context: DumpContext): Promise<void> {
  const d = await destinationOf(options, request, context);
  const target = await swapTarget(d);
  const temp = `${d.dir === '/' ? '' : d.dir}/.backer-restore-${randomUUID()}.sqlite`;
  const remove = tempFileRemover(d.run.docker, d.run.name, [temp, ...['-journal', '-wal', '-shm'].map((s) => temp + s)], context.logger, COMPONENT);
  try {
    await writeAndCheck(d, temp, input);
    if (context.signal.aborted) throw cancelledError(COMPONENT, context.signal.reason);
    await swapDatabase(d.run.docker, target, temp, d.path, context);
    context.logger.info({ container: d.run.name, path: d.path }, 'sqlite database restored');
  } finally {
    // After a swap the temp file is gone (renamed); otherwise it goes here, the database untouched.
    await remove();
  }
}

/** Drill checks: `PRAGMA integrity_check` is ok and every table holds the rows counted at dump time. */
export async function checkSqlite(options: SqliteOptions, request: RestoreRequest, context: DumpContext): Promise<DrillCheck[]> {
  const d = await destinationOf(options, request, context);
  const result = await integrity(d.run, d.path);
  const checks: DrillCheck[] = [{ check: `PRAGMA integrity_check of ${d.path}`, ok: result === 'ok', expected: 'ok', actual: result }];
  const expected = recordedTables(request.manifest);
  if (result !== 'ok' || expected === null) return checks;
  const actual = await tableCounts(d.run, d.path, 'DRILL_FAILED');
  const names = [...new Set([...Object.keys(expected), ...Object.keys(actual)])].sort();
  for (const name of names) {
    checks.push({ check: `table ${name} rows`, ok: expected[name] === actual[name], expected: expected[name] ?? null, actual: actual[name] ?? null });
  }
  return checks;
}
