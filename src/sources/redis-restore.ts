import { randomBytes } from 'node:crypto';
import { posix } from 'node:path';
import { pipeline, type Readable } from 'node:stream';
import { BackerError, describeError } from '../errors.js';
import { openContainerRun, type ContainerRun } from './container-run.js';
import { defaultHelperImage } from './helper-image.js';
import { cliVersion, COMPONENT, connect, CONTROL, query, serverInfo, unsignalledRun, type RedisConnection, type RedisOptions, type ServerInfo } from './redis-conn.js';
import { clearRecord, HELPER_ROOT, helperImagePresent, restoreFailed, startHelper, startServer, stopServer, type Mount } from './redis-helper.js';
import { newestRdbFor, RdbInputCheck } from './redis-rdb.js';
import type { DrillCheck, DumpContext, RestorePlan, RestoreRequest, SourceInfo } from './types.js';

/** What a restore into one running redis needs to know, all checked before anything is touched. */
interface Destination {
  conn: RedisConnection;
  server: ServerInfo;
  containerId: string;
  /** The server's `dir` and `dbfilename` (CONFIG GET). */
  dir: string;
  dbfilename: string;
  /** The volume or bind mount that holds `dir`. */
  mount: Mount;
  helperImage: string;
  /** `uid:gid` of the redis process (owner of a new dump.rdb), or '' when unknown. */
  serverOwner: string;
}

function refused(message: string, container: string | null, details: Record<string, unknown> = {}): BackerError {
  return new BackerError('RESTORE_REFUSED', message, { component: COMPONENT, details: { container, ...details }, permanent: true });
}

/** One CONFIG GET value; refused with the server's reply when CONFIG is denied, renamed or disabled. */
async function configValue(conn: RedisConnection, key: string): Promise<string> {
  let reply: string;
  try {
    reply = await query(conn, ['CONFIG', 'GET', key], 'RESTORE_REFUSED');
  } catch (err) {
    throw refused(`a restore reads the server's ${key} with CONFIG GET, which redis in container ${conn.run.name} refused: ${describeError(err)}`, conn.run.name);
  }
  const lines = reply.split('\n').map((l) => l.trim());
  const value = lines[lines.indexOf(key) + 1];
  if (lines.indexOf(key) < 0 || value === undefined || value === '') {
    throw refused(`CONFIG GET ${key} in container ${conn.run.name} answered nothing (is CONFIG renamed or disabled?)`, conn.run.name);
  }
  return value;
}

/** The dumped server must not be newer than the destination: an older redis cannot load a newer RDB format. */
function checkVersion(manifest: SourceInfo, server: ServerInfo, container: string): void {
  const dumped = typeof manifest.server_version === 'string' ? manifest.server_version : null;
  const dumpedMajor = Number(dumped?.split('.')[0]);
  if (dumped !== null && dumpedMajor > server.major) {
    throw refused(`the backup comes from redis ${dumped} and container ${container} runs redis ${server.version}: an older major version cannot load its RDB; restore into redis ${dumpedMajor} or newer`, container);
  }
  const rdb = typeof manifest.rdb_version === 'number' ? manifest.rdb_version : null;
  const newest = server.valkeyVersion === null ? newestRdbFor(server.version) : null;
  if (rdb !== null && newest !== null && rdb > newest) {
    throw refused(`the backup is an RDB of format ${rdb} (redis ${dumped ?? 'unknown'}), newer than redis ${server.version} in container ${container} loads (format ${newest})`, container);
  }
}

function within(path: string, dir: string): boolean {
  return path === dir || path.startsWith(`${dir.replace(/\/$/, '')}/`);
}

/** The volume or bind mount that holds `dir`, writable, for the helper container. */
function dirMount(mounts: Mount[], dir: string, container: string): Mount {
  const mount = mounts.filter((m) => within(dir, m.Destination)).sort((a, b) => b.Destination.length - a.Destination.length)[0];
  const known = mounts.map((m) => `${m.Destination} (${m.Type})`).join(', ') || 'none';
  if (mount === undefined || (mount.Type !== 'volume' && mount.Type !== 'bind')) {
    const on = mount === undefined ? 'is not on a volume or bind mount' : `is on a ${mount.Type} mount`;
    throw refused(`redis in container ${container} keeps its RDB in ${dir}, which ${on} (mounts: ${known}): a restore writes dump.rdb there through a helper container on the same volume; put redis's dir on a volume`, container, { dir });
  }
  if (!mount.RW) throw refused(`redis in container ${container} keeps its RDB in ${dir}, on the read-only mount ${mount.Destination}: a restore cannot replace it`, container, { dir });
  return mount;
}

/** `uid:gid` of the running redis process (it may have dropped root at start), '' when the container cannot tell. */
async function processOwner(run: ContainerRun, pid: number): Promise<string> {
  if (!Number.isInteger(pid) || pid <= 0) return '';
  const { exitCode, stdout } = await run.capture(['stat', '-c', '%u:%g', `/proc/${pid}`]).catch(() => ({ exitCode: -1, stdout: '' }));
  return exitCode === 0 && /^\d+:\d+$/.test(stdout.trim()) ? stdout.trim() : '';
}

async function inspectDestination(options: RedisOptions, request: RestoreRequest, context: DumpContext): Promise<Destination> {
  const dest = request.destination;
  if (dest.kind !== 'container') {
    throw refused(`a redis backup restores into a running redis container (--to original, new:NAME or container:NAME), not into a ${dest.kind}`, request.source.container);
  }
  const run = await openContainerRun(context, dest.container, COMPONENT);
  await cliVersion(run);
  const conn = await connect(options, run);
  const server = await serverInfo(conn, 'RESTORE_REFUSED');
  if (server.aofEnabled) {
    throw refused(
      `redis in container ${run.name} has AOF on (appendonly yes): at start it loads its append-only file, not the restored dump.rdb. Set appendonly no in its configuration (file or command line) and restart it, restore, then turn AOF on again with CONFIG SET appendonly yes (which rewrites the AOF from the restored data) before putting it back in the configuration`,
      run.name,
    );
  }
  checkVersion(request.manifest, server, run.name);
  const dir = await configValue(conn, 'dir');
  const dbfilename = await configValue(conn, 'dbfilename');
  if (!dir.startsWith('/') || CONTROL.test(dir)) throw refused(`redis in container ${run.name} reports dir ${JSON.stringify(dir)}, not an absolute path`, run.name);
  if (dbfilename.includes('/') || dbfilename === '.' || dbfilename === '..' || CONTROL.test(dbfilename)) {
    throw refused(`redis in container ${run.name} reports dbfilename ${JSON.stringify(dbfilename)}, not a plain file name`, run.name);
  }
  const inspect = await run.docker
    .getContainer(run.name)
    .inspect()
    .catch((err: unknown) => {
      throw new BackerError('DOCKER_UNAVAILABLE', `cannot inspect container ${run.name}: ${describeError(err)}`, { component: COMPONENT, details: { container: run.name }, cause: err });
    });
  const mount = dirMount(inspect.Mounts, dir, run.name);
  const helperImage = context.settings?.volumeHelperImage ?? (await defaultHelperImage(run.docker, context.logger));
  await helperImagePresent(run.docker, helperImage, run.name);
  return { conn, server, containerId: inspect.Id, dir, dbfilename, mount, helperImage, serverOwner: await processOwner(run, server.pid) };
}

/**
 * Checks that the destination can take the backup (see inspectDestination) and names the steps:
 * redis's data is replaced by the RDB with the server stopped, so the container is stopped.
 */
export async function planRedisRestore(options: RedisOptions, request: RestoreRequest, context: DumpContext): Promise<RestorePlan> {
  const d = await inspectDestination(options, request, context);
  const name = d.conn.run.name;
  const file = posix.join(d.dir, d.dbfilename);
  const on = d.mount.Type === 'volume' ? `volume ${d.mount.Name ?? d.mount.Source}` : `bind mount ${d.mount.Source}`;
  return {
    steps: [
      `stop container ${name} (redis ${d.server.version}; with save points, it saves its current data to ${file} as it stops)`,
      `write the backup to ${file} (on ${on}) through a helper container of image ${d.helperImage}; the current ${d.dbfilename} is replaced only once the new one is complete, and put back if redis does not load it`,
      `start container ${name} again and wait until redis answers PING`,
    ],
    stops: [name],
  };
}

/** The files of one restore, as the helper sees them. */
interface Files {
  dir: string;
  temp: string;
  target: string;
  previous: string;
}

/**
 * Owner and mode of the current file (else the redis process's owner, else the dir's, mode
 * 0600), an fsync, then the atomic swap; the current file stays as `previous`.
 */
const PLACE = `set -e
temp="$1"; target="$2"; previous="$3"; dir="$4"; owner="$5"
if [ -e "$target" ]; then
  chown "$(stat -c %u:%g "$target")" "$temp"; chmod "$(stat -c %a "$target")" "$temp"
else
  chown "\${owner:-$(stat -c %u:%g "$dir")}" "$temp"; chmod 0600 "$temp"
fi
sync
if [ -e "$target" ]; then ln -f "$target" "$previous"; fi
mv -f "$temp" "$target"
sync`;
/** Undoes PLACE: the previous file back in place (or no file, when there was none). */
const PUT_BACK = 'if [ -e "$3" ]; then mv -f "$3" "$2"; else rm -f "$2"; fi; sync';

/** Streams the RDB into a temp file next to dump.rdb, then swaps it in; the old file is kept as `previous`. */
async function writeRdb(helper: ContainerRun, files: Files, input: Readable, d: Destination): Promise<void> {
  const newest = d.server.valkeyVersion === null ? newestRdbFor(d.server.version) : null;
  const checked = new RdbInputCheck(d.conn.run.name, newest);
  // pipeline: an error of the input (a decode that failed) errors `checked`, which ends the feed.
  pipeline(input, checked, () => undefined);
  // A cancel ends the input (an exec, once started, does not stop on the job's signal).
  const { signal } = helper.context;
  const onAbort = (): void => {
    checked.destroy(new BackerError('JOB_CANCELLED', 'the restore was cancelled', { component: COMPONENT, cause: signal.reason, permanent: true }));
  };
  if (signal.aborted) onAbort();
  signal.addEventListener('abort', onAbort, { once: true });
  try {
    await helper.feed(['sh', '-c', 'umask 077 && exec cat > "$1"', 'sh', files.temp], checked);
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
  await helper.run(['sh', '-c', PLACE, 'sh', files.temp, files.target, files.previous, files.dir, d.serverOwner], { code: 'RESTORE_FAILED', what: 'placing the restored RDB' });
}

/** Best-effort command in the helper after a failure; its own failure is logged, never thrown. */
async function helperCleanup(helper: ContainerRun, cmd: string[], context: DumpContext, what: string): Promise<boolean> {
  const result = await unsignalledRun(helper)
    .capture(cmd)
    .catch((err: unknown) => ({ exitCode: -1, stdout: '', stderr: describeError(err) }));
  if (result.exitCode !== 0) context.logger.error({ container: helper.name, exit_code: result.exitCode, stderr: result.stderr }, `redis restore: could not ${what}`);
  return result.exitCode === 0;
}

/** After the server dies on the restored RDB: stop it, put the previous file back, start it again. */
async function putBack(d: Destination, helper: ContainerRun, files: Files, context: DumpContext): Promise<string> {
  const name = d.conn.run.name;
  await d.conn.run.docker
    .getContainer(name)
    .stop({ t: 30 })
    .catch(() => undefined);
  if (!(await helperCleanup(helper, ['sh', '-c', PUT_BACK, 'sh', files.temp, files.target, files.previous], context, 'put the previous RDB back'))) {
    return `the previous ${d.dbfilename} could not be put back (see the log)`;
  }
  try {
    await startServer(d.conn);
    return `the previous ${d.dbfilename} was put back and redis runs again with it`;
  } catch (err) {
    return `the previous ${d.dbfilename} was put back, but redis did not start with it either: ${describeError(err)}`;
  }
}

function writeFailure(err: unknown, d: Destination, context: DumpContext): BackerError {
  const name = d.conn.run.name;
  if (context.signal.aborted) {
    return new BackerError('JOB_CANCELLED', `the restore into container ${name} was cancelled before ${d.dbfilename} was replaced; redis runs again with its previous data`, {
      component: COMPONENT,
      details: { container: name },
      cause: err,
      permanent: true,
    });
  }
  return restoreFailed(`cannot write the backup into ${posix.join(d.dir, d.dbfilename)} of container ${name}: ${describeError(err)}; ${d.dbfilename} was not replaced`, name, err);
}

/** With the server stopped: write, swap, start; on any failure the previous data is what runs again. */
async function replaceAndStart(d: Destination, helper: ContainerRun, input: Readable, context: DumpContext, record: string | undefined): Promise<void> {
  const name = d.conn.run.name;
  const dir = `${HELPER_ROOT}${d.dir.replace(/\/$/, '')}`;
  const tag = randomBytes(4).toString('hex');
  const files: Files = { dir, temp: `${dir}/.backer-restore-${tag}.rdb`, target: `${dir}/${d.dbfilename}`, previous: `${dir}/.backer-previous-${tag}.rdb` };
  try {
    await writeRdb(helper, files, input, d);
  } catch (err) {
    await helperCleanup(helper, ['rm', '-f', '--', files.temp], context, 'remove the partial RDB');
    await startServer(d.conn).then(
      () => clearRecord(record, name, context),
      (startErr: unknown) => context.logger.error({ container: name, err: describeError(startErr) }, 'redis did not start again with its previous data after a failed restore'),
    );
    throw writeFailure(err, d, context);
  }
  try {
    await startServer(d.conn);
    if ((await serverInfo(d.conn, 'RESTORE_FAILED')).aofEnabled) {
      throw restoreFailed(`redis in container ${name} started with AOF on (appendonly yes in its configuration) and loaded its append-only file instead of the restored RDB`, name);
    }
  } catch (err) {
    const outcome = await putBack(d, helper, files, context);
    if (outcome.endsWith('runs again with it')) await clearRecord(record, name, context);
    throw restoreFailed(`${describeError(err)}; ${outcome}`, name, err);
  }
  await clearRecord(record, name, context);
  await helperCleanup(helper, ['rm', '-f', '--', files.previous], context, 'remove the previous RDB');
}

/**
 * Replaces the server's data with the RDB: the container is stopped (recorded, so a crash
 * restarts it), dump.rdb is written next to the old one through a helper container and swapped
 * in, and the container is started again whatever happens; if redis does not load the new file,
 * the old one is put back. Rejects with RESTORE_FAILED (JOB_CANCELLED on a cancel).
 */
export async function restoreRedis(options: RedisOptions, request: RestoreRequest, input: Readable, context: DumpContext): Promise<void> {
  const d = await inspectDestination(options, request, context);
  const { docker, name } = d.conn.run;
  const helper = await startHelper(docker, name, d.mount, d.helperImage, context);
  try {
    const scratch = request.destination.kind === 'container' && request.destination.scratch;
    const record = await stopServer(docker, name, d.containerId, context, scratch);
    await replaceAndStart(d, helper.run, input, context, record);
    context.logger.info({ container: name }, 'redis restored');
  } finally {
    await helper.remove();
  }
}

/** The manifest's key counts (`source.stats`), or null for a backup made before they were recorded. */
function recordedStats(manifest: SourceInfo): { keys: Record<string, number>; withTtl: Record<string, number> } | null {
  const stats = manifest.stats as { keys?: unknown; keys_with_ttl?: unknown } | undefined;
  if (stats === undefined || stats === null || typeof stats.keys !== 'object' || stats.keys === null) return null;
  const withTtl = typeof stats.keys_with_ttl === 'object' && stats.keys_with_ttl !== null ? stats.keys_with_ttl : {};
  return { keys: stats.keys as Record<string, number>, withTtl: withTtl as Record<string, number> };
}

/**
 * Drill: DBSIZE of every database the backup or the server has, against the key counts recorded
 * at dump time. Keys with a TTL may have expired since the backup (the loading server drops
 * them), so up to that many fewer keys still pass; more keys, or fewer than that, fail.
 */
export async function checkRestored(options: RedisOptions, request: RestoreRequest, context: DumpContext): Promise<DrillCheck[]> {
  const dest = request.destination;
  if (dest.kind !== 'container') throw refused(`a redis drill checks a container, not a ${dest.kind}`, request.source.container);
  const conn = await connect(options, await openContainerRun(context, dest.container, COMPONENT));
  const server = await serverInfo(conn, 'DRILL_FAILED');
  const stats = recordedStats(request.manifest);
  if (stats === null) return [{ check: 'redis loaded the backup (the manifest records no key counts)', ok: true }];
  const dbs = [...new Set([...Object.keys(stats.keys), ...server.keyspace.keys()])].sort((a, b) => Number(a.slice(2)) - Number(b.slice(2)));
  const checks: DrillCheck[] = [];
  for (const db of dbs) {
    const actual = Number((await query(conn, ['-n', db.slice(2), 'DBSIZE'], 'DRILL_FAILED')).trim());
    const expected = stats.keys[db] ?? 0;
    const withTtl = stats.withTtl[db] ?? 0;
    const ok = actual === expected || (actual < expected && actual >= expected - withTtl);
    checks.push({ check: `${db} keys${withTtl > 0 ? ` (${withTtl} with a TTL, which may have expired)` : ''}`, ok, expected, actual });
  }
  return checks;
}
