import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { Transform, type TransformCallback } from 'node:stream';
import { BackerError } from '../errors.js';
import { cancelledError } from '../util/abort.js';
import { openContainerRun, type ContainerRun } from './container-run.js';
import { lastLines } from './docker-exec.js';
import { checkSqlite, COMPONENT, planSqliteRestore, restoreSqlite, sqliteTool, tableCounts, UNSAFE_PATH } from './sqlite-restore.js';
import { tempFileRemover, withPrivateUmask } from './temp-copy.js';
import { versionAtLeast } from './versions.js';
import { optionalString, optionIssue, parseOptions, type OptionsSpec } from './options-schema.js';
import { defineSource, type Dump, type DumpContext, type SourceInfo } from './types.js';

export interface SqliteOptions {
  /** Absolute path of the database file inside the container. Required. */
  path: string;
  /**
   * Directory inside the container for the consistent copy that is streamed out and then removed.
   * It needs free space for one copy of the database. Default `/tmp`.
   */
  tempDir: string;
}

/** How long the copy waits for a writer's lock before it gives up, in milliseconds. */
const BUSY_TIMEOUT_MS = 60_000;
const MAGIC = Buffer.from('SQLite format 3\0', 'latin1');
/** `VACUUM INTO` (one read transaction, never restarts under writers) exists since SQLite 3.27. */
const VACUUM_INTO_SINCE = [3, 27, 0] as const;

/** An absolute path inside the container, without characters that the shell commands cannot carry. */
function absolutePath(key: string, what: string): z.ZodType<string | undefined, string | undefined> {
  return optionalString().transform((raw, ctx) => {
    if (raw === undefined) return undefined;
    const path = raw.trim();
    if (!path.startsWith('/')) optionIssue(ctx, key, `expected an absolute path (${what}) inside the container, received ${JSON.stringify(raw)}`);
    else if (UNSAFE_PATH.test(path)) optionIssue(ctx, key, 'paths with quotes, backslashes or control characters are not supported');
    return path;
  });
}

/** `backer.sqlite.*`: the database file (required) and where its consistent copy is made. */
export const sqliteOptions: OptionsSpec<SqliteOptions> = {
  type: 'sqlite',
  keys: ['path', 'temp_dir'],
  schema: z
    .object({ path: absolutePath('path', 'the database file'), temp_dir: absolutePath('temp_dir', 'a directory') })
    .transform((o, ctx) => {
      if (o.path === undefined) optionIssue(ctx, 'path', 'required: the absolute path of the database file inside the container');
      else if (o.path.endsWith('/')) optionIssue(ctx, 'path', `expected the database file, not a directory: ${JSON.stringify(o.path)}`);
      const tempDir = o.temp_dir ?? '/tmp';
      return { path: o.path ?? '', tempDir: tempDir.length > 1 ? tempDir.replace(/\/+$/, '') : tempDir };
    }),
};

/**
 * Why a complete SQLite database image does not look like one, or null. Beyond the magic, the
 * header's page size and (when valid) page count give the exact expected size: a truncated
 * copy is caught even though SQLite files have no trailer.
 */
export function checkSqliteImage(head: Buffer, total: number): string | null {
  if (total === 0) return 'is empty';
  if (head.length < 100 || !head.subarray(0, MAGIC.length).equals(MAGIC)) return 'does not start with the "SQLite format 3" header';
  const raw = head.readUInt16BE(16);
  const pageSize = raw === 1 ? 65536 : raw;
  if (pageSize < 512 || (pageSize & (pageSize - 1)) !== 0) return `has an invalid page size ${raw} in its header`;
  if (total % pageSize !== 0) return `is ${total} bytes, not a whole number of ${pageSize}-byte pages`;
  const pages = head.readUInt32BE(28);
  // The in-header size is valid only when "version-valid-for" equals the change counter.
  if (pages > 0 && head.readUInt32BE(92) === head.readUInt32BE(24) && pages * pageSize !== total) {
    return `is ${total} bytes, but its header says ${pages} pages of ${pageSize} bytes (${pages * pageSize} bytes)`;
  }
  return null;
}

function verifier(result: () => Promise<{ exitCode: number; stderr: string }>, container: string, path: string): Transform {
  let head = Buffer.alloc(0);
  let total = 0;
  return new Transform({
    transform(chunk: Buffer, _enc, callback: TransformCallback) {
      if (head.length < 100) head = Buffer.concat([head, chunk.subarray(0, 100 - head.length)]);
      total += chunk.length;
      callback(null, chunk);
    },
    flush(callback: TransformCallback) {
      result().then(
        ({ exitCode, stderr }) => {
          const problem = exitCode === 0 ? checkSqliteImage(head, total) : null;
          if (exitCode !== 0) {
            const reason = lastLines(stderr);
            callback(new BackerError('DUMP_FAILED', `cat of the copy of ${path} in container ${container} exited with code ${exitCode}${reason ? `: ${reason}` : ''}`, {
              component: COMPONENT,
              details: { container, path, exit_code: exitCode },
            }));
          } else if (problem !== null) {
            callback(new BackerError('DUMP_TRUNCATED', `the copy of ${path} streamed from container ${container} ${problem}: the backup is incomplete`, {
              component: COMPONENT,
              details: { container, path, size: total },
            }));
          } else {
            callback();
          }
        },
        (err: unknown) => callback(err as Error),
      );
    },
  });
}

/**
 * Makes a consistent copy inside the container. `VACUUM INTO` reads the whole database in one
 * read transaction (a snapshot; writers are not blocked in WAL mode and wait at most for the
 * copy in rollback mode); older sqlite3 uses the online backup API (`.backup`). `-readonly`:
 * Backer never writes the live database, and a missing file fails instead of being created.
 * Not given the job's signal: an exec cannot be killed, so a cancelled copy is waited for and
 * then removed, rather than removed while sqlite3 still writes it.
 */
async function makeCopy(run: ContainerRun, path: string, copy: string, version: readonly number[]): Promise<string> {
  const literal = `'${copy.replace(/'/g, "''")}'`;
  const copyCommand = versionAtLeast(version, VACUUM_INTO_SINCE) ? `VACUUM INTO ${literal};` : `.backup ${literal}`;
  const cmd = ['sqlite3', '-init', '/dev/null', '-batch', '-bail', '-readonly', '-cmd', `.timeout ${BUSY_TIMEOUT_MS}`, '-cmd', 'PRAGMA journal_mode;', path, copyCommand];
  const { exitCode, stdout, stderr } = await run.capture(withPrivateUmask(cmd));
  if (exitCode !== 0) {
    const reason = lastLines(`${stderr}\n${stdout}`);
    const hint = /unable to open database/.test(reason) ? ` (does ${path} exist, and may the container's user read it?)` : '';
    throw new BackerError('DUMP_FAILED', `sqlite3 could not copy ${path} in container ${run.name} (exit code ${exitCode})${reason ? `: ${reason}` : ''}${hint}`, {
      component: COMPONENT,
      details: { container: run.name, path, exit_code: exitCode },
    });
  }
  return stdout.trim().split('\n')[0]?.trim().toLowerCase() ?? '';
}

/** VACUUM INTO writes a rollback-journal database; WAL mode is a persistent property of the file, so it is set on the copy again. */
async function restoreWalMode(run: ContainerRun, path: string, copy: string): Promise<void> {
  const mode = await run.run(['sqlite3', '-init', '/dev/null', '-batch', '-bail', copy, 'PRAGMA journal_mode=WAL;'], { what: `sqlite3 setting WAL mode on the copy of ${path}` });
  if (mode.trim().toLowerCase() !== 'wal') {
    throw new BackerError('DUMP_FAILED', `sqlite3 could not set WAL mode on the copy of ${path} in container ${run.name}: ${lastLines(mode)}`, {
      component: COMPONENT,
      details: { container: run.name, path },
    });
  }
}

/**
 * The copy, its journal mode and its tables' row counts (the drill's reference), made before it
 * streams; the copy is removed if anything fails here.
 */
async function prepareCopy(run: ContainerRun, options: SqliteOptions, version: readonly number[], copy: string, sideFiles: string[]): Promise<{ journalMode: string; tables: Record<string, number> }> {
  const { logger, signal } = run.context;
  const remove = tempFileRemover(run.docker, run.name, [copy, ...sideFiles], logger, COMPONENT);
  logger.debug({ container: run.name, path: options.path, copy }, 'copying the sqlite database inside the container');
  try {
    const journalMode = await makeCopy(run, options.path, copy, version);
    // Counted while the copy is still in rollback mode: a read opens no -wal/-shm beside it.
    const tables = await tableCounts(run, copy, 'DUMP_FAILED');
    if (journalMode === 'wal') await restoreWalMode(run, options.path, copy);
    if (signal.aborted) throw cancelledError(COMPONENT, signal.reason);
    return { journalMode, tables };
  } catch (err) {
    await remove();
    throw err;
  }
}

async function dump(options: SqliteOptions, target: { container: string | null }, context: DumpContext): Promise<Dump> {
  const run = await openContainerRun(context, target.container, COMPONENT);
  const version = await sqliteTool(run);
  const copy = `${options.tempDir === '/' ? '' : options.tempDir}/backer-${randomUUID()}.sqlite`;
  const sideFiles = ['-journal', '-wal', '-shm'].map((s) => copy + s);
  const { journalMode, tables } = await prepareCopy(run, options, version, copy, sideFiles);
  const stream = await run.streamTempFile(copy, sideFiles, (result) => verifier(result, run.name, options.path));
  const sourceInfo: SourceInfo = {
    type: 'sqlite',
    container: run.name,
    image: run.info.image,
    databases: [options.path],
    sqlite_version: version.join('.'),
    journal_mode: journalMode,
    stats: { tables },
  };
  return { stream, mime: 'application/vnd.sqlite3', extension: '.sqlite', info: () => sourceInfo };
}

/**
 * `backer mandates test`: opens the database read-only as the dump would (a missing file fails
 * instead of being created) and reads its schema; the copy's directory must be writable.
 */
async function probeFile(options: SqliteOptions, target: { container: string | null }, context: DumpContext): Promise<string> {
  const run = await openContainerRun(context, target.container, COMPONENT);
  const version = await sqliteTool(run);
  const cmd = ['sqlite3', '-init', '/dev/null', '-batch', '-bail', '-readonly', options.path, 'SELECT count(*) FROM sqlite_master;'];
  const { exitCode, stdout, stderr } = await run.capture(cmd);
  if (exitCode !== 0) {
    const reason = lastLines(`${stderr}\n${stdout}`);
    throw new BackerError('CHECK_FAILED', `sqlite3 cannot read ${options.path} in container ${run.name} (exit code ${exitCode})${reason ? `: ${reason}` : ''}`, {
      component: COMPONENT,
      details: { container: run.name, path: options.path, exit_code: exitCode },
    });
  }
  const writable = await run.capture(['sh', '-c', 'test -d "$1" && test -w "$1"', 'sh', options.tempDir]);
  if (writable.exitCode !== 0) {
    throw new BackerError('CHECK_FAILED', `temp_dir ${options.tempDir} in container ${run.name} is not a writable directory (the consistent copy is made there)`, {
      component: COMPONENT,
      details: { container: run.name, path: options.tempDir },
    });
  }
  return `${options.path} opens read-only (${stdout.trim()} schema entries, sqlite3 ${version.join('.')}); ${options.tempDir} writable`;
}

export const sqliteSource = defineSource<SqliteOptions>({
  type: 'sqlite',
  needsContainer: true,
  tools: ['sqlite3', 'sh'],
  databases: false,
  options: sqliteOptions,
  parse: (raw, origin) => parseOptions(sqliteOptions, raw, origin),
  dump,
  planRestore: planSqliteRestore,
  restore: restoreSqlite,
  check: checkSqlite,
  probe: { name: 'database readable', run: probeFile },
});
