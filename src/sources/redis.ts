import { randomUUID } from 'node:crypto';
import { Transform, type Readable, type TransformCallback } from 'node:stream';
import type Docker from 'dockerode';
import { BackerError } from '../errors.js';
import { parseRef, type Ref } from '../config/refs.js';
import { resolveInContainer } from './resolve.js';
import { cancelledError } from '../util/abort.js';
import { execCapture, execStream, lastLines, runningContainer, type ContainerInfo } from './docker-exec.js';
import { labelError, optionWhere } from './options.js';
import { streamTempFile, tempFileRemover, withPrivateUmask } from './temp-copy.js';
import { parseVersion, versionAtLeast } from './versions.js';
import type { Dump, DumpContext, OptionOrigin, SourceDefinition, SourceInfo } from './types.js';

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

const COMPONENT = 'source redis';
const KNOWN_KEYS = new Set(['password', 'user', 'socket', 'port']);
/** `--rdb -` streams to stdout from redis-cli 7.0 (6.2 had it, but exited 1 on a failed fsync of stdout). */
const RDB_TO_STDOUT_SINCE = [7, 0, 0] as const;
const MAGIC = /^REDIS\d{4}$/;
/** An RDB ends with the EOF opcode 0xFF and an 8-byte CRC64 (zeros when checksums are off). */
const EOF_OPCODE = 0xff;
const CHECKSUM_SIZE = 8;
/**
 * With diskless replication (the default since Redis 7.0) the server ends the transfer with a
 * 40-character hex mark. redis-cli removes it with ftruncate() from a file, which it cannot do
 * on stdout, so `--rdb -` leaves it after the RDB; the verifier strips it.
 */
const EOF_MARK_SIZE = 40;
const HOLD = 1 + CHECKSUM_SIZE + EOF_MARK_SIZE;
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;

function checkPort(value: string): string | null {
  const text = value.trim();
  const port = /^\d{1,5}$/.test(text) ? Number(text) : NaN;
  return port >= 1 && port <= 65535 ? null : `expected a TCP port 1..65535, received ${JSON.stringify(value)}`;
}

function checkSocket(value: string): string | null {
  if (!value.startsWith('/')) return `expected the absolute path of the unix socket inside the container, received ${JSON.stringify(value)}`;
  return CONTROL.test(value) ? 'the socket path may not contain control characters' : null;
}

/** Literal values are checked now; `Env:`/`File:` values when they are resolved. */
function literal(ref: Ref): string | null {
  return ref.kind === 'literal' || ref.kind === 'text' ? ref.value : null;
}

function parse(raw: Record<string, string>, origin: OptionOrigin): RedisOptions {
  for (const key of Object.keys(raw)) {
    if (!KNOWN_KEYS.has(key)) throw labelError(origin, key, `unknown redis option; known: ${[...KNOWN_KEYS].join(', ')}`);
  }
  if (raw.socket !== undefined && raw.port !== undefined) {
    throw labelError(origin, 'port', 'set either backer.redis.socket or backer.redis.port, not both');
  }
  const socket = raw.socket === undefined ? null : parseRef(raw.socket);
  const port = parseRef(raw.port ?? '6379');
  const socketValue = socket === null ? null : literal(socket);
  const socketProblem = socketValue === null ? null : checkSocket(socketValue);
  if (socketProblem !== null) throw labelError(origin, 'socket', socketProblem);
  const portValue = literal(port);
  const portProblem = portValue === null ? null : checkPort(portValue);
  if (portProblem !== null) throw labelError(origin, 'port', portProblem);
  const user = raw.user === undefined ? null : parseRef(raw.user);
  const userValue = user === null ? null : literal(user);
  if (userValue !== null && (userValue.trim() === '' || CONTROL.test(userValue))) {
    throw labelError(origin, 'user', 'expected an ACL user name without control characters');
  }
  return { password: raw.password === undefined ? null : parseRef(raw.password), user, socket, port };
}

function resolve(ref: Ref, info: ContainerInfo, context: DumpContext, secret = false): Promise<string> {
  return resolveInContainer(ref, info, context, COMPONENT, { secret });
}

function invalid(context: DumpContext, container: string, key: string, message: string): BackerError {
  return new BackerError('LABEL_INVALID', `${optionWhere(context, container, `redis.${key}`)}: ${message}`, { component: COMPONENT, permanent: true });
}

/** redis-cli arguments that select the server and user; the password never appears here. */
async function connectionArgs(options: RedisOptions, info: ContainerInfo, context: DumpContext): Promise<string[]> {
  const args: string[] = [];
  if (options.socket !== null) {
    const socket = (await resolve(options.socket, info, context)).trim();
    const problem = checkSocket(socket);
    if (problem !== null) throw invalid(context, info.name, 'socket', problem);
    args.push('-s', socket);
  } else {
    const port = (await resolve(options.port, info, context)).trim();
    const problem = checkPort(port);
    if (problem !== null) throw invalid(context, info.name, 'port', problem);
    args.push('-h', '127.0.0.1', '-p', port);
  }
  if (options.user !== null) {
    const user = await resolve(options.user, info, context);
    if (user.trim() === '' || CONTROL.test(user)) throw invalid(context, info.name, 'user', 'expected an ACL user name without control characters');
    args.push('--user', user);
  }
  return args;
}

async function findTool(docker: Docker, container: string): Promise<[number, number, number]> {
  let detail = '';
  try {
    const { exitCode, stdout, stderr } = await execCapture(docker, container, { cmd: ['redis-cli', '--version'] }, COMPONENT);
    const version = exitCode === 0 ? parseVersion(stdout, /redis-cli (\d+)\.(\d+)\.(\d+)/) : null;
    if (version !== null) return version;
    detail = lastLines(`${stdout}\n${stderr}`, 1);
  } catch (err) {
    // A missing program can surface as a failed exec start: only container problems are rethrown.
    if (err instanceof BackerError && err.code !== 'DOCKER_UNAVAILABLE') throw err;
  }
  throw new BackerError('TOOL_MISSING', `container ${container} has no working redis-cli on its PATH${detail ? ` (${detail})` : ''}`, {
    component: COMPONENT,
    details: { container },
    permanent: true,
  });
}

/**
 * `INFO` checks connection and credentials before the dump (redis-cli exits 0 even when AUTH
 * failed and prints the server's NOAUTH reply) and gives the server version and keyspace.
 */
async function serverInfo(docker: Docker, container: string, args: string[], env: string[]): Promise<{ version: string; databases: string[] }> {
  const { exitCode, stdout, stderr } = await execCapture(docker, container, { cmd: ['redis-cli', ...args, 'INFO'], env }, COMPONENT);
  const version = /^redis_version:(\S+)/m.exec(stdout)?.[1];
  if (exitCode !== 0 || version === undefined) {
    const reason = lastLines(`${stderr}\n${stdout}`);
    throw new BackerError('DUMP_FAILED', `redis-cli INFO in container ${container} failed${exitCode === 0 ? '' : ` (exit code ${exitCode})`}${reason ? `: ${reason}` : ''}`, {
      component: COMPONENT,
      details: { container, exit_code: exitCode },
    });
  }
  const databases = [...stdout.matchAll(/^(db\d+):keys=/gm)].map((m) => m[1] as string);
  return { version, databases };
}

/** How many of the held-back last bytes belong to the RDB, or null when it does not end like one. */
export function rdbLength(tail: Buffer): number | null {
  const n = tail.length;
  if (n >= 1 + CHECKSUM_SIZE && tail[n - 1 - CHECKSUM_SIZE] === EOF_OPCODE) return n;
  // The mark is hex, so it never holds the 0xFF above: the two cases cannot be confused.
  if (n >= HOLD && tail[n - HOLD] === EOF_OPCODE && /^[0-9a-f]{40}$/.test(tail.subarray(n - EOF_MARK_SIZE).toString('latin1'))) {
    return n - EOF_MARK_SIZE;
  }
  return null;
}

/**
 * Passes the RDB through while holding back its last bytes, and ends only if redis-cli exited 0,
 * the stream starts with the `REDIS` magic and ends with the EOF opcode and checksum.
 */
class RdbVerifier extends Transform {
  private head = Buffer.alloc(0);
  private tail = Buffer.alloc(0);
  private total = 0;

  constructor(
    private readonly result: () => Promise<{ exitCode: number; stderr: string }>,
    private readonly container: string,
  ) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, callback: TransformCallback): void {
    this.total += chunk.length;
    if (this.head.length < 9) this.head = Buffer.concat([this.head, chunk.subarray(0, 9 - this.head.length)]);
    if (chunk.length >= HOLD) {
      if (this.tail.length > 0) this.push(this.tail);
      if (chunk.length > HOLD) this.push(chunk.subarray(0, chunk.length - HOLD));
      this.tail = Buffer.from(chunk.subarray(chunk.length - HOLD));
    } else {
      const all = Buffer.concat([this.tail, chunk]);
      if (all.length > HOLD) this.push(all.subarray(0, all.length - HOLD));
      this.tail = all.length > HOLD ? all.subarray(all.length - HOLD) : all;
    }
    callback();
  }

  override _flush(callback: TransformCallback): void {
    const fail = (code: 'DUMP_FAILED' | 'DUMP_TRUNCATED', message: string, details: Record<string, unknown> = {}): void =>
      callback(new BackerError(code, message, { component: COMPONENT, details: { container: this.container, ...details } }));
    this.result().then(
      ({ exitCode, stderr }) => {
        const length = rdbLength(this.tail);
        if (exitCode !== 0) {
          const reason = lastLines(stderr);
          fail('DUMP_FAILED', `redis-cli --rdb in container ${this.container} exited with code ${exitCode}${reason ? `: ${reason}` : ''}`, { exit_code: exitCode });
        } else if (this.total === 0) {
          fail('DUMP_TRUNCATED', `redis-cli --rdb in container ${this.container} produced no data`);
        } else if (!MAGIC.test(this.head.toString('latin1'))) {
          fail('DUMP_FAILED', `the dump from container ${this.container} does not start with the REDIS magic: it is not an RDB file`);
        } else if (length === null || this.total - this.tail.length + length < 9 + 1 + CHECKSUM_SIZE) {
          fail('DUMP_TRUNCATED', `the RDB from container ${this.container} does not end with the EOF opcode and checksum: the dump is incomplete`, { size: this.total });
        } else {
          this.push(this.tail.subarray(0, length));
          callback();
        }
      },
      (err: unknown) => callback(err as Error),
    );
  }
}

/** redis-cli 7+: the RDB streams straight to stdout, nothing is written in the container. */
async function streamRdb(container: string, args: string[], env: string[], context: DumpContext): Promise<Readable> {
  const handle = await execStream(context.docker, container, { cmd: ['redis-cli', ...args, '--rdb', '-'], env, signal: context.signal }, COMPONENT);
  const stream = handle.stdout.pipe(new RdbVerifier(() => handle.result(), container));
  handle.stdout.on('error', (err) => stream.destroy(err));
  stream.on('close', () => {
    if (!handle.stdout.destroyed) handle.stdout.destroy();
  });
  return stream;
}

/**
 * Older redis-cli: `--rdb FILE` to the container's /tmp (a consistent snapshot that neither
 * replaces the server's dump.rdb nor needs CONFIG), streamed out with `cat` and always removed.
 */
async function streamRdbViaFile(container: string, args: string[], env: string[], context: DumpContext): Promise<Readable> {
  const { docker, signal, logger } = context;
  const file = `/tmp/backer-${randomUUID()}.rdb`;
  const remove = tempFileRemover(docker, container, [file], logger, COMPONENT);
  try {
    // Without the job's signal: an exec cannot be killed, so a cancelled copy is awaited, then removed.
    const { exitCode, stderr } = await execCapture(docker, container, { cmd: withPrivateUmask(['redis-cli', ...args, '--rdb', file]), env }, COMPONENT);
    if (exitCode !== 0) {
      const reason = lastLines(stderr);
      throw new BackerError('DUMP_FAILED', `redis-cli --rdb in container ${container} exited with code ${exitCode}${reason ? `: ${reason}` : ''}`, {
        component: COMPONENT,
        details: { container, exit_code: exitCode },
      });
    }
    if (signal.aborted) throw cancelledError(COMPONENT, signal.reason);
  } catch (err) {
    await remove();
    throw err;
  }
  return streamTempFile({ docker, container, file, signal, logger, component: COMPONENT, verifier: (result) => new RdbVerifier(result, container) });
}

async function dump(options: RedisOptions, target: { container: string | null }, context: DumpContext): Promise<Dump> {
  const container = target.container;
  if (container === null) throw new BackerError('LABEL_INVALID', 'redis mandates need a container', { component: COMPONENT, permanent: true });
  const info = await runningContainer(context.docker, container, COMPONENT);
  const password = options.password === null ? null : await resolve(options.password, info, context, true);
  const args = await connectionArgs(options, info, context);
  // REDISCLI_AUTH: redis-cli's documented variable for the password, so it never shows in argv.
  const env = password === null ? [] : [`REDISCLI_AUTH=${password}`];
  const version = await findTool(context.docker, container);
  const server = await serverInfo(context.docker, container, args, env);
  const method = versionAtLeast(version, RDB_TO_STDOUT_SINCE) ? 'stdout' : 'temp_file';

  context.logger.debug({ container, args, method }, 'starting dump');
  const stream = method === 'stdout' ? await streamRdb(container, args, env, context) : await streamRdbViaFile(container, args, env, context);
  const sourceInfo: SourceInfo = {
    type: 'redis',
    container,
    image: info.image,
    databases: server.databases,
    server_version: server.version,
    tool: 'redis-cli',
    tool_version: version.join('.'),
    method,
  };
  return { stream, mime: 'application/x-redis-rdb', extension: '.rdb', info: () => sourceInfo };
}

export const redisSource: SourceDefinition<RedisOptions> = { type: 'redis', needsContainer: true, parse, dump };
