import { BackerError, type ErrorCode } from '../errors.js';
import type { Ref } from '../config/refs.js';
import { bindContainerRun, type ContainerRun } from './container-run.js';
import { lastLines } from './docker-exec.js';
import { optionWhere } from './options.js';
import { parseVersion } from './versions.js';

export interface RedisOptions {
  /** Password (through `REDISCLI_AUTH` in the exec's environment). Default: none. */
  password: Ref | null;
  /** ACL user (`--user`). Default: none (the `default` user). */
  user: Ref | null;
  /** Unix socket inside the container. Default: none (TCP on 127.0.0.1). */
  socket: Ref | null;
  /** TCP port on 127.0.0.1 inside the container. Default `6379`. */
  port: Ref;
}

export const COMPONENT = 'source redis';
// eslint-disable-next-line no-control-regex
export const CONTROL = /[\u0000-\u001f\u007f]/;

export function checkPort(value: string): string | null {
  const text = value.trim();
  const port = /^\d{1,5}$/.test(text) ? Number(text) : NaN;
  return port >= 1 && port <= 65535 ? null : `expected a TCP port 1..65535, received ${JSON.stringify(value)}`;
}

export function checkSocket(value: string): string | null {
  if (!value.startsWith('/')) return `expected the absolute path of the unix socket inside the container, received ${JSON.stringify(value)}`;
  return CONTROL.test(value) ? 'the socket path may not contain control characters' : null;
}

/** How redis-cli reaches the server in one container: arguments (never the password) and environment. */
export interface RedisConnection {
  run: ContainerRun;
  args: string[];
  /** `REDISCLI_AUTH=…`: redis-cli's documented variable for the password, so it never shows in argv. */
  env: string[];
}

function invalid(run: ContainerRun, key: string, message: string): BackerError {
  return new BackerError('LABEL_INVALID', `${optionWhere(run.context, run.name, `redis.${key}`)}: ${message}`, { component: COMPONENT, permanent: true });
}

/** Resolves the mandate's connection options against the container `run` acts on. */
export async function connect(options: RedisOptions, run: ContainerRun): Promise<RedisConnection> {
  const password = options.password === null ? null : await run.resolve(options.password, { secret: true });
  const args: string[] = [];
  if (options.socket !== null) {
    const socket = (await run.resolve(options.socket)).trim();
    const problem = checkSocket(socket);
    if (problem !== null) throw invalid(run, 'socket', problem);
    args.push('-s', socket);
  } else {
    const port = (await run.resolve(options.port)).trim();
    const problem = checkPort(port);
    if (problem !== null) throw invalid(run, 'port', problem);
    args.push('-h', '127.0.0.1', '-p', port);
  }
  if (options.user !== null) {
    const user = await run.resolve(options.user);
    if (user.trim() === '' || CONTROL.test(user)) throw invalid(run, 'user', 'expected an ACL user name without control characters');
    args.push('--user', user);
  }
  return { run, args, env: password === null ? [] : [`REDISCLI_AUTH=${password}`] };
}

/** The version of the container's redis-cli; TOOL_MISSING when there is none that answers. */
export async function cliVersion(run: ContainerRun): Promise<[number, number, number]> {
  let detail = '';
  try {
    const { version } = await run.probe(['redis-cli']);
    const parsed = parseVersion(version, /redis-cli (\d+)\.(\d+)\.(\d+)/);
    if (parsed !== null) return parsed;
    detail = version;
  } catch (err) {
    if (!(err instanceof BackerError && err.code === 'TOOL_MISSING')) throw err;
  }
  throw new BackerError('TOOL_MISSING', `container ${run.name} has no working redis-cli on its PATH${detail ? ` (${detail})` : ''}`, {
    component: COMPONENT,
    details: { container: run.name },
    permanent: true,
  });
}

/**
 * Runs one redis-cli command and returns its reply. redis-cli exits 0 even when the server
 * answered with an error (NOAUTH, NOPERM, ERR unknown command), so a reply matching `error`
 * fails too, with `code`.
 */
export async function query(conn: RedisConnection, command: string[], code: ErrorCode, error = /^(ERR|NOAUTH|WRONGPASS|NOPERM|LOADING)\b/m): Promise<string> {
  const { exitCode, stdout, stderr } = await conn.run.capture(['redis-cli', ...conn.args, ...command], { env: conn.env });
  if (exitCode !== 0 || error.test(stdout)) {
    const reason = lastLines(`${stderr}\n${stdout}`);
    throw new BackerError(code, `redis-cli ${command[0] ?? ''} in container ${conn.run.name} failed${exitCode === 0 ? '' : ` (exit code ${exitCode})`}${reason ? `: ${reason}` : ''}`, {
      component: COMPONENT,
      details: { container: conn.run.name, exit_code: exitCode },
    });
  }
  return stdout;
}

export interface ServerInfo {
  version: string;
  /** Major version as a number (NaN when unknown). */
  major: number;
  /** Set for Valkey, which reports a fixed redis_version. */
  valkeyVersion: string | null;
  aofEnabled: boolean;
  /** The server's process id (INFO process_id), in the container's pid namespace. */
  pid: number;
  /** INFO keyspace: `db0` → keys (including keys with a TTL) and keys with a TTL. */
  keyspace: Map<string, { keys: number; expires: number }>;
}

/**
 * `INFO` checks connection and credentials (redis-cli exits 0 even when AUTH failed and prints
 * the server's NOAUTH reply) and gives the server version, persistence and keyspace.
 */
export async function serverInfo(conn: RedisConnection, code: ErrorCode): Promise<ServerInfo> {
  const { exitCode, stdout, stderr } = await conn.run.capture(['redis-cli', ...conn.args, 'INFO'], { env: conn.env });
  const version = /^redis_version:(\S+)/m.exec(stdout)?.[1];
  if (exitCode !== 0 || version === undefined) {
    const reason = lastLines(`${stderr}\n${stdout}`);
    throw new BackerError(code, `redis-cli INFO in container ${conn.run.name} failed${exitCode === 0 ? '' : ` (exit code ${exitCode})`}${reason ? `: ${reason}` : ''}`, {
      component: COMPONENT,
      details: { container: conn.run.name, exit_code: exitCode },
    });
  }
  const keyspace = new Map<string, { keys: number; expires: number }>();
  for (const m of stdout.matchAll(/^(db\d+):keys=(\d+),expires=(\d+)/gm)) {
    keyspace.set(m[1] as string, { keys: Number(m[2]), expires: Number(m[3]) });
  }
  return {
    version,
    major: Number(version.split('.')[0]),
    valkeyVersion: /^valkey_version:(\S+)/m.exec(stdout)?.[1] ?? null,
    aofEnabled: /^aof_enabled:1/m.test(stdout),
    pid: Number(/^process_id:(\d+)/m.exec(stdout)?.[1] ?? NaN),
    keyspace,
  };
}

/** The same container, with a signal that never aborts: for commands that must run to their end (clean-up, restart). */
export function unsignalledRun(run: ContainerRun): ContainerRun {
  return bindContainerRun({ ...run.context, signal: new AbortController().signal }, run.info, run.component);
}
