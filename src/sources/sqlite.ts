import { randomUUID } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import type Docker from 'dockerode';
import { BackerError } from '../errors.js';
import { cancelledError } from '../util/abort.js';
import { execCapture, lastLines, runningContainer } from './docker-exec.js';
import { streamTempFile, tempFileRemover, withPrivateUmask } from './temp-copy.js';
import { parseVersion, versionAtLeast } from './versions.js';
import { labelError } from './options.js';
import type { Dump, DumpContext, OptionOrigin, SourceDefinition, SourceInfo } from './types.js';

export interface SqliteOptions {
  /** Absolute path of the database file inside the container. Required. */
  path: string;
  /**
   * Directory inside the container for the consistent copy that is streamed out and then removed.
   * It needs free space for one copy of the database. Default `/tmp`.
   */
  tempDir: string;
}

const COMPONENT = 'source sqlite';
const KNOWN_KEYS = new Set(['path', 'temp_dir']);
/** How long the copy waits for a writer's lock before it gives up, in milliseconds. */
const BUSY_TIMEOUT_MS = 60_000;
const MAGIC = Buffer.from('SQLite format 3\0', 'latin1');
/** `VACUUM INTO` (one read transaction, never restarts under writers) exists since SQLite 3.27. */
const VACUUM_INTO_SINCE = [3, 27, 0] as const;

/**
 * Paths travel in argv (no shell) and the copy's path inside an SQL string literal: quotes,
 * backslashes and control characters are refused instead of escaped.
 */
// eslint-disable-next-line no-control-regex
const UNSAFE_PATH = /['"\\\u0000-\u001f\u007f]/;

function parsePath(raw: string | undefined, origin: OptionOrigin, key: string, what: string): string | undefined {
  if (raw === undefined) return undefined;
  const path = raw.trim();
  if (!path.startsWith('/')) throw labelError(origin, key, `expected an absolute path (${what}) inside the container, received ${JSON.stringify(raw)}`);
  if (UNSAFE_PATH.test(path)) throw labelError(origin, key, 'paths with quotes, backslashes or control characters are not supported');
  return path;
}

function parse(raw: Record<string, string>, origin: OptionOrigin): SqliteOptions {
  for (const key of Object.keys(raw)) {
    if (!KNOWN_KEYS.has(key)) throw labelError(origin, key, `unknown sqlite option; known: ${[...KNOWN_KEYS].join(', ')}`);
  }
  const path = parsePath(raw.path, origin, 'path', 'the database file');
  if (path === undefined) throw labelError(origin, 'path', 'required: the absolute path of the database file inside the container');
  if (path.endsWith('/')) throw labelError(origin, 'path', `expected the database file, not a directory: ${JSON.stringify(path)}`);
  const tempDir = parsePath(raw.temp_dir, origin, 'temp_dir', 'a directory') ?? '/tmp';
  return { path, tempDir: tempDir.length > 1 ? tempDir.replace(/\/+$/, '') : tempDir };
}

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

async function findTool(docker: Docker, container: string): Promise<[number, number, number]> {
  let detail = '';
  try {
    const { exitCode, stdout, stderr } = await execCapture(docker, container, { cmd: withPrivateUmask(['sqlite3', '--version']) }, COMPONENT);
    const version = exitCode === 0 ? parseVersion(stdout, /^(\d+)\.(\d+)\.(\d+)/) : null;
    if (version !== null) return version;
    detail = lastLines(`${stdout}\n${stderr}`, 1);
  } catch (err) {
    // A missing program can surface as a failed exec start: only container problems are rethrown.
    if (err instanceof BackerError && err.code !== 'DOCKER_UNAVAILABLE') throw err;
  }
  throw new BackerError('TOOL_MISSING', `container ${container} has no working sqlite3 on its PATH (Backer runs sqlite3 and sh)${detail ? `: ${detail}` : ''}`, {
    component: COMPONENT,
    details: { container },
    permanent: true,
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
async function makeCopy(docker: Docker, container: string, path: string, copy: string, version: readonly number[]): Promise<string> {
  const literal = `'${copy.replace(/'/g, "''")}'`;
  const copyCommand = versionAtLeast(version, VACUUM_INTO_SINCE) ? `VACUUM INTO ${literal};` : `.backup ${literal}`;
  const cmd = ['sqlite3', '-init', '/dev/null', '-batch', '-bail', '-readonly', '-cmd', `.timeout ${BUSY_TIMEOUT_MS}`, '-cmd', 'PRAGMA journal_mode;', path, copyCommand];
  const { exitCode, stdout, stderr } = await execCapture(docker, container, { cmd: withPrivateUmask(cmd) }, COMPONENT);
  if (exitCode !== 0) {
    const reason = lastLines(`${stderr}\n${stdout}`);
    const hint = /unable to open database/.test(reason) ? ` (does ${path} exist, and may the container's user read it?)` : '';
    throw new BackerError('DUMP_FAILED', `sqlite3 could not copy ${path} in container ${container} (exit code ${exitCode})${reason ? `: ${reason}` : ''}${hint}`, {
      component: COMPONENT,
      details: { container, path, exit_code: exitCode },
    });
  }
  return stdout.trim().split('\n')[0]?.trim().toLowerCase() ?? '';
}

/** VACUUM INTO writes a rollback-journal database; WAL mode is a persistent property of the file, so it is set on the copy again. */
async function restoreWalMode(docker: Docker, container: string, path: string, copy: string): Promise<void> {
  const cmd = ['sqlite3', '-init', '/dev/null', '-batch', '-bail', copy, 'PRAGMA journal_mode=WAL;'];
  const { exitCode, stdout, stderr } = await execCapture(docker, container, { cmd }, COMPONENT);
  if (exitCode !== 0 || stdout.trim().toLowerCase() !== 'wal') {
    throw new BackerError('DUMP_FAILED', `sqlite3 could not set WAL mode on the copy of ${path} in container ${container}: ${lastLines(`${stderr}\n${stdout}`)}`, {
      component: COMPONENT,
      details: { container, path, exit_code: exitCode },
    });
  }
}

async function dump(options: SqliteOptions, target: { container: string | null }, context: DumpContext): Promise<Dump> {
  const container = target.container;
  if (container === null) throw new BackerError('LABEL_INVALID', 'sqlite mandates need a container', { component: COMPONENT, permanent: true });
  const { docker, signal, logger } = context;
  const info = await runningContainer(docker, container, COMPONENT);
  const version = await findTool(docker, container);

  const copy = `${options.tempDir === '/' ? '' : options.tempDir}/backer-${randomUUID()}.sqlite`;
  const sideFiles = ['-journal', '-wal', '-shm'].map((s) => copy + s);
  const remove = tempFileRemover(docker, container, [copy, ...sideFiles], logger, COMPONENT);
  logger.debug({ container, path: options.path, copy }, 'copying the sqlite database inside the container');
  let journalMode: string;
  try {
    journalMode = await makeCopy(docker, container, options.path, copy, version);
    if (journalMode === 'wal') await restoreWalMode(docker, container, options.path, copy);
    if (signal.aborted) throw cancelledError(COMPONENT, signal.reason);
  } catch (err) {
    await remove();
    throw err;
  }

  const stream = await streamTempFile({
    docker,
    container,
    file: copy,
    extra: sideFiles,
    signal,
    logger,
    component: COMPONENT,
    verifier: (result) => verifier(result, container, options.path),
  });
  const sourceInfo: SourceInfo = {
    type: 'sqlite',
    container,
    image: info.image,
    databases: [options.path],
    sqlite_version: version.join('.'),
    journal_mode: journalMode,
  };
  return { stream, mime: 'application/vnd.sqlite3', extension: '.sqlite', info: () => sourceInfo };
}

export const sqliteSource: SourceDefinition<SqliteOptions> = { type: 'sqlite', needsContainer: true, parse, dump };
