import { randomUUID } from 'node:crypto';
import type { Readable } from 'node:stream';
import { BackerError } from '../errors.js';
import { cancelledError } from '../util/abort.js';
import { openContainerRun } from './container-run.js';
import { lastLines } from './docker-exec.js';
import { parseOptions } from './options-schema.js';
import { cliVersion, COMPONENT, connect, query, serverInfo, unsignalledRun, type RedisConnection, type RedisOptions, type ServerInfo } from './redis-conn.js';
import { redisOptions } from './redis-options.js';
import { RdbVerifier } from './redis-rdb.js';
import { checkRestored, planRedisRestore, restoreRedis } from './redis-restore.js';
import { tempFileRemover, withPrivateUmask } from './temp-copy.js';
import { versionAtLeast } from './versions.js';
import { defineSource, type Dump, type DumpContext, type SourceInfo } from './types.js';

export type { RedisOptions } from './redis-conn.js';
export { rdbLength } from './redis-rdb.js';
export { redisOptions } from './redis-options.js';

/** `--rdb -` streams to stdout from redis-cli 7.0 (6.2 had it, but exited 1 on a failed fsync of stdout). */
const RDB_TO_STDOUT_SINCE = [7, 0, 0] as const;

/** redis-cli 7+: the RDB streams straight to stdout, nothing is written in the container. */
async function streamRdb(conn: RedisConnection, verifier: (result: () => Promise<{ exitCode: number; stderr: string }>) => RdbVerifier): Promise<Readable> {
  const handle = await conn.run.exec(['redis-cli', ...conn.args, '--rdb', '-'], { env: conn.env });
  const stream = handle.stdout.pipe(verifier(() => handle.result()));
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
async function streamRdbViaFile(conn: RedisConnection, verifier: (result: () => Promise<{ exitCode: number; stderr: string }>) => RdbVerifier): Promise<Readable> {
  const { run } = conn;
  const file = `/tmp/backer-${randomUUID()}.rdb`;
  const remove = tempFileRemover(run.docker, run.name, [file], run.context.logger, COMPONENT);
  try {
    // Without the job's signal: an exec cannot be killed, so a cancelled copy is awaited, then removed.
    const unsignalled = unsignalledRun(run);
    const { exitCode, stderr } = await unsignalled.capture(withPrivateUmask(['redis-cli', ...conn.args, '--rdb', file]), { env: conn.env });
    if (exitCode !== 0) {
      const reason = lastLines(stderr);
      throw new BackerError('DUMP_FAILED', `redis-cli --rdb in container ${run.name} exited with code ${exitCode}${reason ? `: ${reason}` : ''}`, {
        component: COMPONENT,
        details: { container: run.name, exit_code: exitCode },
      });
    }
    if (run.context.signal.aborted) throw cancelledError(COMPONENT, run.context.signal.reason);
  } catch (err) {
    await remove();
    throw err;
  }
  return run.streamTempFile(file, [], verifier);
}

/**
 * What a drill compares with (manifest `source.stats`): the keys per database counted in the RDB
 * stream itself, exact for the snapshot (`counted_from: rdb`). When the stream holds a format the
 * counter does not know, INFO keyspace read right before the dump (`counted_from: info`): writes
 * between that moment and the server's fork for the RDB can make it differ by a few keys.
 * `keys_with_ttl`: keys that expire by the time a backup is loaded are dropped by the server.
 */
function keyStats(verifier: RdbVerifier | undefined, server: ServerInfo, context: DumpContext): Record<string, unknown> {
  const counted = verifier?.keyCounts();
  if (counted?.counts) return { ...counted.counts, counted_from: 'rdb' };
  context.logger.info({ reason: counted?.why }, 'redis: key counts from INFO keyspace (the RDB could not be counted)');
  const keys: Record<string, number> = {};
  const withTtl: Record<string, number> = {};
  for (const [db, { keys: n, expires }] of server.keyspace) {
    keys[db] = n;
    withTtl[db] = expires;
  }
  return { keys, keys_with_ttl: withTtl, counted_from: 'info' };
}

async function dump(options: RedisOptions, target: { container: string | null }, context: DumpContext): Promise<Dump> {
  const run = await openContainerRun(context, target.container, COMPONENT);
  const conn = await connect(options, run);
  const version = await cliVersion(run);
  const server = await serverInfo(conn, 'DUMP_FAILED');
  const method = versionAtLeast(version, RDB_TO_STDOUT_SINCE) ? 'stdout' : 'temp_file';

  context.logger.debug({ container: run.name, args: conn.args, method }, 'starting dump');
  let verifier: RdbVerifier | undefined;
  const make = (result: () => Promise<{ exitCode: number; stderr: string }>): RdbVerifier => (verifier = new RdbVerifier(result, run.name));
  const stream = method === 'stdout' ? await streamRdb(conn, make) : await streamRdbViaFile(conn, make);
  let counted: Record<string, unknown> | undefined;
  const sourceInfo: SourceInfo = {
    type: 'redis',
    container: run.name,
    image: run.info.image,
    databases: [...server.keyspace.keys()],
    server_version: server.version,
    tool: 'redis-cli',
    tool_version: version.join('.'),
    method,
  };
  return {
    stream,
    mime: 'application/x-redis-rdb',
    extension: '.rdb',
    info: () => {
      // Complete once the stream has ended: only then are the counts kept.
      const stats = counted ?? keyStats(verifier, server, context);
      if (stream.readableEnded) counted = stats;
      return { ...sourceInfo, rdb_version: verifier?.version() ?? null, stats };
    },
  };
}

/** `backer mandates test`: PING as the dump would connect (REDISCLI_AUTH, never argv); a NOAUTH or WRONGPASS reply fails. */
async function probeLogin(options: RedisOptions, target: { container: string | null }, context: DumpContext): Promise<string> {
  const run = await openContainerRun(context, target.container, COMPONENT);
  const conn = await connect(options, run);
  const reply = await query(conn, ['PING'], 'CHECK_FAILED');
  if (reply.trim() !== 'PONG') {
    throw new BackerError('CHECK_FAILED', `redis-cli PING in container ${run.name} answered ${JSON.stringify(lastLines(reply, 1))} instead of PONG`, {
      component: COMPONENT,
      details: { container: run.name },
    });
  }
  const server = await serverInfo(conn, 'CHECK_FAILED');
  return `PING answered PONG (Redis ${server.version}${options.password === null ? ', no password' : ', password accepted'})`;
}

export const redisSource = defineSource<RedisOptions>({
  type: 'redis',
  needsContainer: true,
  tools: ['redis-cli'],
  databases: false,
  options: redisOptions,
  parse: (raw, origin) => parseOptions(redisOptions, raw, origin),
  dump,
  planRestore: planRedisRestore,
  restore: restoreRedis,
  check: checkRestored,
  probe: { name: 'credentials accepted', run: probeLogin },
});
