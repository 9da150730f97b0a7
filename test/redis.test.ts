import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { Daemon } from '../src/daemon/daemon.js';
import type { Manifest } from '../src/manifests/schema.js';
import type { Job } from '../src/queue/types.js';
import { rdbLength } from '../src/sources/redis.js';
import { digest, runProgram, s3Get } from './helpers/artifacts.js';
import { backupJob, backupNow, CCRYPT_KEY, createTestEnv, localFiles as listLocalFiles, startDaemon, type TestEnv } from './helpers/env.js';
import { backupAndDecode } from './helpers/matrix.js';
import { allCommandLines, sampleCommandLines } from './helpers/proc.js';
import { docker, HOST_IMAGE } from './setup/services.js';

const host = (): string => inject('dockerHost');
const PASSWORD = 'r3dis-S3cret-pw!';
const BACKUP_USER_PASSWORD = 'backup-Us3r-pw!';
/** Removed while redis-cli --rdb runs; unique (name and socket) so that /proc polling finds its dump only. */
const MID_DUMP_ID = randomBytes(3).toString('hex');
const MID_DUMP = `redis-middump-${MID_DUMP_ID}`;
/** Not the default daily midnight schedule: a scheduled backup of this mandate would race its test. */
const RARELY = '0 0 29 2 *';
const MID_DUMP_SOCKET = `/run/redis-middump-${MID_DUMP_ID}.sock`;
const CONTAINERS = ['redis-main', 'redis-wrongpw', 'redis-notool', 'redis-oldcli', 'redis-restore', 'redis-restore-zstd-gpg', 'redis-restore-age', MID_DUMP];
const LABELS = {
  'backer.enabled': 'true',
  'backer.type': 'redis',
  'backer.target': 'local,s3',
  'backer.middleware': 'compression,encryption',
  'backer.redis.password': 'Env:REDIS_PASSWORD',
};

/** redis-cli inside a container, authenticated through REDISCLI_AUTH. */
async function cli(container: string, args: string[], password: string | null = PASSWORD, input?: string): Promise<string> {
  const execArgs = ['exec', '-i'];
  if (password !== null) execArgs.push('-e', 'REDISCLI_AUTH');
  return docker(host(), [...execArgs, container, 'redis-cli', ...args], input, password === null ? {} : { REDISCLI_AUTH: password });
}

async function waitForPong(container: string, password: string | null, socket?: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    const reply = await cli(container, socket ? ['-s', socket, 'PING'] : ['PING'], password).catch(() => '');
    if (reply === 'PONG') return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`redis in ${container} did not answer PING`);
}

interface RedisContainer {
  name: string;
  labels?: Record<string, string>;
  /** PATH of the container (and so of docker exec). */
  path?: string;
  /** Extra lines for redis.conf (written inside the container from its environment). */
  conf?: string;
  socket?: string;
}

/** A real redis-server (the host's) in a labelled container; the password reaches it through a config file, not argv. */
async function startRedis(options: RedisContainer): Promise<void> {
  const args = ['run', '-d', '--name', options.name, '--network', 'none', '-v', '/usr:/usr:ro', '-v', '/etc:/etc:ro', '-e', 'REDIS_PASSWORD', '-e', 'BACKUP_PASSWORD'];
  if (options.path !== undefined) args.push('-e', `PATH=${options.path}`);
  for (const [k, v] of Object.entries(options.labels ?? {})) args.push('--label', `${k}=${v}`);
  // printf (a bash builtin) writes the secrets from the environment; options.conf uses the second %s.
  const format = options.conf === undefined ? 'requirepass %s\\n' : `requirepass %s\\n${options.conf}\\n`;
  const values = options.conf === undefined ? '"$REDIS_PASSWORD"' : '"$REDIS_PASSWORD" "$BACKUP_PASSWORD"';
  const socketArgs = options.socket ? ` --unixsocket ${options.socket}` : '';
  args.push(
    HOST_IMAGE,
    '/usr/bin/bash',
    '-c',
    `printf '${format}' ${values} > /data/redis.conf && exec /usr/bin/redis-server /data/redis.conf --port 6379 --bind 127.0.0.1 --dir /data${socketArgs}`,
  );
  await docker(host(), args, undefined, { REDIS_PASSWORD: PASSWORD, BACKUP_PASSWORD: BACKUP_USER_PASSWORD });
  if (options.path === undefined) await waitForPong(options.name, PASSWORD);
}

function resp(...args: string[]): string {
  return `*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`;
}

/** Strings, hashes, lists, sets, sorted sets, a TTL and a second database, through redis-cli --pipe. */
async function seed(container: string): Promise<void> {
  const commands: string[] = [];
  for (let i = 0; i < 3000; i++) commands.push(resp('SET', `str:${i}`, `value-${i}-${'x'.repeat(i % 40)}`));
  for (let i = 0; i < 200; i++) commands.push(resp('HSET', `hash:${i}`, 'name', `user-${i}`, 'age', String(20 + (i % 50)), 'bio', `bio ${i} ✓`));
  for (let i = 0; i < 100; i++) commands.push(resp('RPUSH', `list:${i}`, ...Array.from({ length: 50 }, (_, j) => `item-${i}-${j}`)));
  for (let i = 0; i < 20; i++) commands.push(resp('SADD', `set:${i}`, 'a', 'b', `m-${i}`));
  commands.push(resp('ZADD', 'board', '1.5', 'alice', '3', 'bob', '-2', 'carol'));
  commands.push(resp('SET', 'session', 'keep-me', 'EX', '86400'));
  commands.push(resp('SELECT', '3'), resp('SET', 'other:db', 'in-db-3'), resp('RPUSH', 'other:list', 'x', 'y'));
  const out = await cli(container, ['--pipe'], PASSWORD, commands.join(''));
  expect(out).toMatch(/errors: 0, replies: \d+/);
}

const SAMPLES: [string, string[]][] = [
  ['string', ['GET', 'str:1234']],
  ['string', ['GET', 'str:0']],
  ['hash', ['HGETALL', 'hash:77']],
  ['list', ['LRANGE', 'list:42', '0', '-1']],
  ['set', ['SMEMBERS', 'set:7']],
  ['zset', ['ZRANGE', 'board', '0', '-1', 'WITHSCORES']],
  ['db 3', ['-n', '3', 'LRANGE', 'other:list', '0', '-1']],
  ['db 3', ['-n', '3', 'GET', 'other:db']],
];

async function snapshot(container: string, password: string | null): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  out.dbsize0 = await cli(container, ['DBSIZE'], password);
  out.dbsize3 = await cli(container, ['-n', '3', 'DBSIZE'], password);
  for (const [, command] of SAMPLES) {
    const value = await cli(container, command, password);
    out[command.join(' ')] = command[0] === 'SMEMBERS' ? value.split('\n').sort().join('\n') : value;
  }
  return out;
}

let env: TestEnv;
let daemon: Daemon;

const backup = (mandate: string): Promise<Job> => backupNow(daemon, mandate);

const localFiles = (mandate: string): Promise<string[]> => listLocalFiles(env, mandate);

async function decode(encrypted: Buffer): Promise<Buffer> {
  return runProgram('gzip', ['-d'], await runProgram('ccrypt', ['-d', '-E', 'KEY'], encrypted, { KEY: CCRYPT_KEY }));
}

/** A fresh redis-server (no password) in a new container that loads `raw` as its dump.rdb at start. */
async function startRestored(name: string, raw: Buffer): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'bk-redis-restore-'));
  await writeFile(join(dir, 'dump.rdb'), raw);
  await docker(host(), ['create', '--name', name, '--network', 'none', '-v', '/usr:/usr:ro', '-v', '/etc:/etc:ro', HOST_IMAGE,
    '/usr/bin/redis-server', '--port', '6379', '--bind', '127.0.0.1', '--dir', '/data', '--dbfilename', 'dump.rdb']);
  await docker(host(), ['cp', join(dir, 'dump.rdb'), `${name}:/data/dump.rdb`]);
  await docker(host(), ['start', name]);
  await waitForPong(name, null);
}

function expectCleanRdb(raw: Buffer): void {
  expect(raw.subarray(0, 5).toString()).toBe('REDIS');
  expect(raw.subarray(5, 9).toString()).toMatch(/^\d{4}$/);
  // EOF opcode then the 8-byte checksum: the diskless-sync EOF mark redis-cli leaves on stdout is stripped.
  expect(raw[raw.length - 9]).toBe(0xff);
}

beforeAll(async () => {
  env = await createTestEnv('redis');
  await Promise.all(CONTAINERS.map((name) => docker(host(), ['rm', '-f', '-v', name]).catch(() => undefined)));
  await Promise.all([
    startRedis({ name: 'redis-main', labels: LABELS }),
    startRedis({ name: 'redis-wrongpw', labels: { ...LABELS, 'backer.redis.password': 'Text:not-the-password' } }),
    startRedis({ name: 'redis-notool', labels: LABELS, path: '/nonexistent' }),
    // An ACL user with only what a dump needs, over a unix socket; redis-cli claims to be 6.x (see below).
    startRedis({
      name: 'redis-oldcli',
      labels: {
        ...LABELS,
        'backer.redis.user': 'Text:backup',
        'backer.redis.password': 'Env:BACKUP_PASSWORD',
        'backer.redis.socket': '/run/redis.sock',
      },
      path: '/opt/old:/usr/bin:/bin',
      conf: 'user backup on >%s ~* +info +replconf +sync +psync +ping',
      socket: '/run/redis.sock',
    }),
    startRedis({ name: MID_DUMP, labels: { ...LABELS, 'backer.interval': RARELY, 'backer.redis.socket': MID_DUMP_SOCKET }, socket: MID_DUMP_SOCKET }),
  ]);
  await seed('redis-main');
  await seed(MID_DUMP);
  // A stand-in for redis-cli < 7.0: reports an old version and otherwise is the real redis-cli.
  await docker(host(), ['exec', '-i', 'redis-oldcli', '/usr/bin/bash', '-c', 'mkdir -p /opt/old && cat > /opt/old/redis-cli && chmod +x /opt/old/redis-cli'],
    '#!/bin/bash\nif [ "$1" = "--version" ]; then echo "redis-cli 6.0.16"; exit 0; fi\nexec /usr/bin/redis-cli "$@"\n');
  await waitForPong('redis-oldcli', PASSWORD, '/run/redis.sock');
  await seed('redis-oldcli');
  daemon = await startDaemon(env);
});

afterAll(async () => {
  await daemon?.close();
  for (const name of CONTAINERS) await docker(host(), ['rm', '-f', '-v', name]).catch(() => undefined);
});

describe('redis backups of labelled containers', () => {
  let job: Job;

  it('streams the RDB with redis-cli --rdb - to local and S3, with no secret in any argv', async () => {
    const started = daemon.services.discovery.refresh().then(() => daemon.queue.enqueue('redis-main', 'api'));
    const argvs = await sampleCommandLines(started.then((j) => daemon.queue.wait(j.id)), 5);
    job = backupJob(await daemon.queue.wait((await started).id));
    expect(job.error).toBeNull();
    expect(job.state).toBe('succeeded');
    expect(job.result?.targets.map((t) => [t.target, t.status])).toEqual([
      ['local', 'succeeded'],
      ['s3', 'succeeded'],
    ]);
    expect(argvs.some((a) => a.includes('redis-cli') && a.includes('--rdb'))).toBe(true);
    for (const a of argvs) {
      expect(a).not.toContain(PASSWORD);
      expect(a).not.toContain(CCRYPT_KEY);
    }
    const files = await localFiles('redis-main');
    expect(files.filter((f) => f.endsWith('.rdb.gz.cpt'))).toHaveLength(1);
    const manifestFile = files.find((f) => f.endsWith('.manifest.json')) ?? '';
    const manifest = JSON.parse(await readFile(join(env.dir, 'backups', 'redis-main', manifestFile), 'utf8')) as Manifest;
    expect(manifest.source).toMatchObject({
      type: 'redis',
      container: 'redis-main',
      image: HOST_IMAGE,
      databases: ['db0', 'db3'],
      server_version: expect.stringMatching(/^\d+\.\d+\.\d+$/) as unknown,
      tool: 'redis-cli',
      method: 'stdout',
    });
    expect(manifest.steps.map((s) => [s.processor, s.mime])).toEqual([
      ['source:redis', 'application/x-redis-rdb'],
      ['middleware:gzip:compression', 'application/gzip'],
      ['middleware:ccrypt:encryption', 'application/x-ccrypt'],
    ]);
  });

  it('stores an S3 artifact that decodes with ccrypt -d and gzip -d and loads into a fresh redis-server with the same data', async () => {
    const s3Key = `backer/${job.result?.targets[1]?.artifact_key ?? ''}`;
    const encrypted = await s3Get(env.bucket, s3Key);
    const manifest = JSON.parse((await s3Get(env.bucket, s3Key.replace(/\.rdb\.gz\.cpt$/, '.manifest.json'))).toString()) as Manifest;
    expect(digest(encrypted)).toEqual({ size: manifest.artifact.size, md5: manifest.artifact.md5, sha256: manifest.artifact.sha256 });
    const raw = await decode(encrypted);
    const rawStep = manifest.steps[0];
    expect(digest(raw)).toEqual({ size: rawStep?.size, md5: rawStep?.md5, sha256: rawStep?.sha256 });
    expectCleanRdb(raw);

    await startRestored('redis-restore', raw);

    const restored = await snapshot('redis-restore', null);
    expect(restored.dbsize0).toBe(String(3000 + 200 + 100 + 20 + 2));
    expect(restored.dbsize3).toBe('2');
    expect(restored).toEqual(await snapshot('redis-main', PASSWORD));
    expect(Number(await cli('redis-restore', ['TTL', 'session'], null))).toBeGreaterThan(80_000);
  });

  it('backs up through zstd, gpg and age too, and the real tools restore it into a fresh redis-server', async () => {
    for (const chain of [['zstd', 'gpg'], ['age']]) {
      const { key, manifest, raw } = await backupAndDecode(daemon, env.bucket, 'redis-main', chain);
      expect(key).toMatch(chain[0] === 'age' ? /\.rdb\.age$/ : /\.rdb\.zst\.gpg$/);
      expect(manifest.steps.map((s) => s.processor)).toEqual(['source:redis', ...chain.map((name) => `middleware:${name}:${name}`)]);
      expectCleanRdb(raw);

      const restore = `redis-restore-${chain.join('-')}`;
      await startRestored(restore, raw);
      const restored = await snapshot(restore, null);
      expect(restored.dbsize0).toBe(String(3000 + 200 + 100 + 20 + 2));
      expect(restored.dbsize3).toBe('2');
      expect(restored).toEqual(await snapshot('redis-main', PASSWORD));
    }
  }, 120_000);

  it('falls back to --rdb into a temp file for redis-cli before 7.0, with an ACL user over a unix socket, and removes the file', async () => {
    const done = await backup('redis-oldcli');
    expect(done.error).toBeNull();
    expect(done.state).toBe('succeeded');
    const files = await localFiles('redis-oldcli');
    const manifestFile = files.find((f) => f.endsWith('.manifest.json')) ?? '';
    const manifest = JSON.parse(await readFile(join(env.dir, 'backups', 'redis-oldcli', manifestFile), 'utf8')) as Manifest;
    expect(manifest.source).toMatchObject({ type: 'redis', method: 'temp_file', tool_version: '6.0.16', databases: ['db0', 'db3'] });
    const artifact = files.find((f) => f.endsWith('.rdb.gz.cpt')) ?? '';
    const raw = await decode(await readFile(join(env.dir, 'backups', 'redis-oldcli', artifact)));
    expectCleanRdb(raw);
    expect(raw.includes(Buffer.from('in-db-3'))).toBe(true);
    expect(await docker(host(), ['exec', 'redis-oldcli', 'ls', '-A', '/tmp'])).toBe('');
  });

  it('fails a backup with a wrong password: failed job, no manifest, no artifact', async () => {
    const failed = await backup('redis-wrongpw');
    expect(failed.state).toBe('failed');
    expect(failed.error?.code).toBe('DUMP_FAILED');
    expect(failed.error?.message).toMatch(/redis-wrongpw/);
    expect(failed.error?.message).toMatch(/WRONGPASS|NOAUTH/);
    expect(await localFiles('redis-wrongpw')).toEqual([]);
    expect(await daemon.services.targets.get('s3')?.list('redis-wrongpw/')).toEqual([]);
  });

  it('fails with TOOL_MISSING when redis-cli is not on the container PATH', async () => {
    const failed = await backup('redis-notool');
    expect(failed.state).toBe('failed');
    expect(failed.error?.code).toBe('TOOL_MISSING');
    expect(failed.error?.message).toMatch(/container redis-notool has no working redis-cli/);
    expect(await localFiles('redis-notool')).toEqual([]);
  });

  it('fails with CONTAINER_NOT_RUNNING when the container is stopped', async () => {
    await docker(host(), ['stop', '-t', '1', 'redis-wrongpw']);
    const failed = await backup('redis-wrongpw');
    expect(failed.state).toBe('failed');
    expect(failed.error?.code).toBe('CONTAINER_NOT_RUNNING');
    expect(await localFiles('redis-wrongpw')).toEqual([]);
  });

  it('fails cleanly when the container is removed mid-dump', async () => {
    await daemon.services.discovery.refresh();
    const queued = daemon.queue.enqueue(MID_DUMP, 'api');
    // With diskless replication the server waits repl-diskless-sync-delay (5 s) before it sends the
    // RDB: once redis-cli --rdb runs, it is connected and waiting, and the removal lands mid-dump.
    const deadline = Date.now() + 30_000;
    let seenAt = 0;
    while (seenAt === 0 && Date.now() < deadline) {
      const dumping = (await allCommandLines()).some((p) => p.argv.startsWith('redis-cli') && p.argv.includes(MID_DUMP_SOCKET) && p.argv.includes('--rdb'));
      if (dumping) seenAt = Date.now();
      else await new Promise((r) => setTimeout(r, 5));
    }
    expect(seenAt).toBeGreaterThan(0);
    await docker(host(), ['rm', '-f', '-v', MID_DUMP]);
    expect(Date.now() - seenAt).toBeLessThan(4_000); // still inside the server's 5 s delay: no RDB byte was sent yet
    const failed = await daemon.queue.wait(queued.id);
    expect(failed.state).toBe('failed');
    expect(['DUMP_FAILED', 'DUMP_TRUNCATED', 'CONTAINER_NOT_FOUND']).toContain(failed.error?.code);
    expect(failed.error?.message).toMatch(new RegExp(`redis-cli.* in container ${MID_DUMP}\\b`));
    expect(await localFiles(MID_DUMP)).toEqual([]);
    expect(await daemon.services.targets.get('local')?.list(`${MID_DUMP}/`)).toEqual([]);
    expect(await daemon.services.targets.get('s3')?.list(`${MID_DUMP}/`)).toEqual([]);
  });

  it('never writes a secret to the logs', () => {
    const logs = env.logs.join('');
    expect(logs).toContain('backup succeeded');
    for (const secret of [PASSWORD, BACKUP_USER_PASSWORD, CCRYPT_KEY, inject('s3').secretAccessKey]) {
      expect(logs).not.toContain(secret);
    }
  });
});

describe('RDB end verification', () => {
  const body = Buffer.concat([Buffer.from('REDIS0010'), Buffer.alloc(200, 7), Buffer.from([0xff]), Buffer.alloc(8, 0xab)]);
  const mark = Buffer.from('0123456789abcdef0123456789abcdef01234567');

  it('keeps a complete RDB, strips the diskless EOF mark, and rejects a cut one', () => {
    const tail = (b: Buffer): Buffer => b.subarray(b.length - 49);
    expect(rdbLength(tail(body))).toBe(49);
    expect(rdbLength(tail(Buffer.concat([body, mark])))).toBe(9);
    expect(rdbLength(tail(body.subarray(0, body.length - 1)))).toBeNull();
    expect(rdbLength(tail(Buffer.concat([body, mark.subarray(0, 39)])))).toBeNull();
    expect(rdbLength(tail(Buffer.concat([body.subarray(0, body.length - 9), Buffer.alloc(9, 0x41)])))).toBeNull();
  });
});
