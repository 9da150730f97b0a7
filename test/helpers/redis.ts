import { chown, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, inject } from 'vitest';
import { docker, HOST_IMAGE } from '../setup/services.js';

/**
 * Real redis servers for the redis restore tests: the host's redis-server in containers of the
 * host image, seeded through redis-cli --pipe, compared by a fingerprint of every key's value.
 */

const host = (): string => inject('dockerHost');
export const PASSWORD = 'rest0re-Pw!';

export async function cli(name: string, args: string[], input?: string): Promise<string> {
  return docker(host(), ['exec', '-i', '-e', 'REDISCLI_AUTH', name, 'redis-cli', ...args], input, { REDISCLI_AUTH: PASSWORD });
}

async function waitForPong(name: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    if ((await cli(name, ['PING']).catch(() => '')) === 'PONG') return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`redis in ${name} did not answer PING`);
}

/** A host directory for a bind mount, owned by `uid` (the user redis runs as). */
async function hostDir(uid: number): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'bk-redis-bind-'));
  await chown(dir, uid, uid);
  return dir;
}

/**
 * redis-server (the host's) with its dir /data on a named volume, a bind mount of a host
 * directory owned by `uid` (then redis runs as that user), or the container's own filesystem.
 */
export async function startRedis(name: string, options: { volume?: string; uid?: number; conf?: string; labels?: Record<string, string> } = {}): Promise<void> {
  const args = ['run', '-d', '--name', name, '--network', 'none', '-v', '/usr:/usr:ro', '-v', '/etc:/etc:ro', '-e', 'REDIS_PASSWORD'];
  for (const [k, v] of Object.entries(options.labels ?? {})) args.push('--label', `${k}=${v}`);
  if (options.volume !== undefined) args.push('-v', `${options.volume}:/data`);
  if (options.uid !== undefined) args.push('-v', `${await hostDir(options.uid)}:/data`, '-u', `${options.uid}:${options.uid}`);
  const conf = `requirepass %s\\n${options.conf ?? ''}`;
  args.push(HOST_IMAGE, '/usr/bin/bash', '-c', `printf '${conf}' "$REDIS_PASSWORD" > /tmp/redis.conf && exec /usr/bin/redis-server /tmp/redis.conf --port 6379 --bind 127.0.0.1 --dir /data`);
  await docker(host(), args, undefined, { REDIS_PASSWORD: PASSWORD });
  await waitForPong(name);
}

export function resp(...args: string[]): string {
  return `*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`;
}

export async function pipe(name: string, commands: string[]): Promise<void> {
  expect(await cli(name, ['--pipe'], commands.join(''))).toMatch(/errors: 0, replies: \d+/);
}

/** Strings, hashes, lists, sets, a sorted set, a key with a TTL, and a second database. */
export async function seed(name: string): Promise<void> {
  const commands: string[] = [];
  for (let i = 0; i < 500; i++) commands.push(resp('SET', `str:${i}`, `value-${i}-${'x'.repeat(i % 40)}`));
  for (let i = 0; i < 50; i++) commands.push(resp('HSET', `hash:${i}`, 'name', `user-${i}`, 'bio', `bio ${i} ✓`));
  for (let i = 0; i < 20; i++) commands.push(resp('RPUSH', `list:${i}`, ...Array.from({ length: 30 }, (_, j) => `item-${i}-${j}`)));
  for (let i = 0; i < 10; i++) commands.push(resp('SADD', `set:${i}`, 'a', 'b', `m-${i}`));
  commands.push(resp('ZADD', 'board', '1.5', 'alice', '3', 'bob'), resp('SET', 'session', 'keep-me', 'EX', '86400'));
  commands.push(resp('SELECT', '3'), resp('SET', 'other:db', 'in-db-3'), resp('RPUSH', 'other:list', 'x', 'y'));
  await pipe(name, commands);
}
export const DB0_KEYS = 500 + 50 + 20 + 10 + 2;

/** Every encoding the key counter reads, in db5: hashtable hash/set, intset, skiplist, long list, int and LZF strings, a stream, a function. */
export async function seedTypes(name: string): Promise<void> {
  const many = (n: number, f: (i: number) => string[]): string[] => Array.from({ length: n }, (_, i) => f(i)).flat();
  await pipe(name, [
    resp('SELECT', '5'),
    resp('HSET', 'big:hash', ...many(600, (i) => [`f${i}`, `v${i}`])),
    resp('SADD', 'big:set', ...many(600, (i) => [`m${i}`])),
    resp('SADD', 'int:set', '1', '2', '300000'),
    resp('ZADD', 'big:zset', ...many(300, (i) => [String(i / 3), `z${i}`])),
    resp('RPUSH', 'big:list', ...many(3000, (i) => [`e${i}`])),
    resp('SET', 'int:str', '12345'),
    resp('SET', 'neg:str', '-70000'),
    resp('SET', 'lzf:str', 'abc'.repeat(500)),
    resp('SET', 'ttl:ms', 'x', 'PX', '86400000'),
    resp('XADD', 'events', '*', 'type', 'a'),
    resp('XADD', 'events', '*', 'type', 'b'),
    resp('XGROUP', 'CREATE', 'events', 'workers', '0'),
    resp('XREADGROUP', 'GROUP', 'workers', 'w1', 'COUNT', '1', 'STREAMS', 'events', '>'),
  ]);
  await cli(name, ['FUNCTION', 'LOAD', "#!lua name=backerlib\nredis.register_function('noop', function() return 1 end)"]);
}
export const DB5_KEYS = 10;

/** Keys added, changed and deleted, in both databases. */
export async function change(name: string): Promise<void> {
  await pipe(name, [resp('SET', 'str:1', 'changed'), resp('DEL', 'hash:7', 'list:3'), resp('SET', 'new:key', 'new'), resp('SELECT', '3'), resp('DEL', 'other:db'), resp('SET', 'new:in3', 'n')]);
}

/**
 * Per database: the key count and a digest of every key (sorted) with its type, value (members
 * sorted where the type has no order) and whether it has a TTL.
 */
const FINGERPRINT = `local keys = redis.call('KEYS', '*') table.sort(keys) local out = {}
local function sorted(t) table.sort(t) return table.concat(t, ',') end
for _, k in ipairs(keys) do
  local t = redis.call('TYPE', k).ok local v
  if t == 'string' then v = redis.call('GET', k)
  elseif t == 'hash' then local h, p = redis.call('HGETALL', k), {} for i = 1, #h, 2 do p[#p + 1] = h[i] .. '=' .. h[i + 1] end v = sorted(p)
  elseif t == 'list' then v = table.concat(redis.call('LRANGE', k, 0, -1), ',')
  elseif t == 'set' then v = sorted(redis.call('SMEMBERS', k))
  elseif t == 'zset' then v = table.concat(redis.call('ZRANGE', k, 0, -1, 'WITHSCORES'), ',')
  elseif t == 'stream' then v = redis.call('XLEN', k) .. ':' .. #redis.call('XPENDING', k, 'workers', '-', '+', 10)
  else v = redis.sha1hex(redis.call('DUMP', k)) end
  out[#out + 1] = k .. '=' .. t .. ':' .. redis.sha1hex(v) .. ':' .. tostring(redis.call('PTTL', k) > 0)
end
return #keys .. ':' .. redis.sha1hex(table.concat(out, '\\n'))`;

export async function fingerprint(name: string): Promise<string> {
  const dbs = [...(await cli(name, ['INFO', 'keyspace'])).matchAll(/^db(\d+):/gm)].map((m) => m[1] as string);
  const parts: string[] = [];
  for (const db of dbs) parts.push(`db${db}=${await cli(name, ['-n', db, 'EVAL', FINGERPRINT, '0'])}`);
  return parts.join(' ');
}

export async function state(name: string): Promise<{ running: boolean; startedAt: string }> {
  const [running = '', startedAt = ''] = (await docker(host(), ['inspect', '-f', '{{.State.Running}} {{.State.StartedAt}}', name])).split(' ');
  return { running: running === 'true', startedAt };
}
