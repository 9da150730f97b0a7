import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, open, readdir, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  HeadObjectCommand,
  PutObjectCommand,
  UploadPartCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { callApi } from '../src/cli/client.js';
import { sweepTargets } from '../src/daemon/sweep.js';
import { BackerError, describeError } from '../src/errors.js';
import { createLocalTarget } from '../src/targets/local.js';
import { createS3Target } from '../src/targets/s3.js';
import { sweepMultipartUploads } from '../src/targets/s3-sweep.js';
import { TEMP_PATTERN, tempName } from '../src/targets/temp-names.js';
import type { Target } from '../src/targets/types.js';
import { spawnDaemon, waitForHealth } from './helpers/daemon-proc.js';
import { spawnCli } from './helpers/cli.js';
import { createBucket, createTestEnv, filesMandateYaml, listUploads, s3Client } from './helpers/env.js';
import { capturingLogger, parseLines, type LogLine } from './helpers/logs.js';
import { startFaultyS3, type FaultyS3 } from './helpers/faulty-s3.js';

const suffix = randomBytes(3).toString('hex');
const TEMP_NAMES = fileURLToPath(new URL('../src/targets/temp-names.ts', import.meta.url));
const DAY_S = 24 * 60 * 60;
const children: ChildProcess[] = [];
let dir: string;



/**
 * A temp file name made by another real process (through the same code a backup uses). With
 * `alive` the process stays running until `stop` (a `backer backup --once` beside the daemon).
 */
async function tempNameOf(base: string, alive: boolean): Promise<{ name: string; stop: () => Promise<void> }> {
  const script = `const m = await import(${JSON.stringify(TEMP_NAMES)}); console.log(m.tempName(${JSON.stringify(base)}));${alive ? ' setInterval(() => {}, 1000);' : ''}`;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(child);
  const exited = new Promise<void>((resolve) => child.on('close', () => resolve()));
  const name = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('\n')) resolve(out.trim());
    });
    child.on('close', (code) => reject(new Error(`temp name process exited with ${code} before printing`)));
  });
  if (!alive) await exited;
  return {
    name,
    stop: async () => {
      child.kill('SIGTERM');
      await exited;
    },
  };
}

async function put(path: string, bytes: number, ageS = 0): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, Buffer.alloc(bytes, 0x61));
  if (ageS > 0) {
    const when = new Date(Date.now() - ageS * 1000);
    await utimes(path, when, when);
  }
}

const exists = (path: string): Promise<boolean> => stat(path).then(() => true, () => false);
const local = (name: string, path: string): Target => createLocalTarget({ name, type: 'local', default: false, path });
const pause = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const sortByKey = <T extends { key: string; uploadId?: string }>(items: T[]): T[] =>
  [...items].sort((a, b) => (a.key === b.key ? ((a.uploadId ?? '') < (b.uploadId ?? '') ? -1 : 1) : a.key < b.key ? -1 : 1));

interface OpenUpload {
  key: string;
  uploadId: string;
  etags: string[];
}

/** An unfinished multipart upload with parts of these sizes, begun through the SDK. */
async function beginUpload(client: S3Client, bucket: string, key: string, sizes: number[]): Promise<OpenUpload> {
  const created = await client.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key }));
  const uploadId = created.UploadId ?? '';
  const etags: string[] = [];
  for (const [i, size] of sizes.entries()) {
    const part = await client.send(new UploadPartCommand({ Bucket: bucket, Key: key, UploadId: uploadId, PartNumber: i + 1, Body: Buffer.alloc(size, 0x61) }));
    etags.push(part.ETag ?? '');
  }
  return { key, uploadId, etags };
}

/** `count` calls of `make`, `width` at a time. */
async function inBatches(count: number, width: number, make: (i: number) => Promise<unknown>): Promise<void> {
  for (let i = 0; i < count; i += width) await Promise.all(Array.from({ length: Math.min(width, count - i) }, (_, j) => make(i + j)));
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), `bk-sweep-${suffix}-`));
});

afterAll(async () => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  await rm(dir, { recursive: true, force: true });
});

describe('local target sweep', () => {
  it('removes temp files of dead writers and of the old name form in nested dirs, keeps a live writer\'s and every object', async () => {
    const root = join(dir, 'local-sweep');
    const target = local('disk', root);
    const dead = await tempNameOf('a.sql.gz', false);
    const live = await tempNameOf('b.sql.gz', true);
    const files = {
      dead: join(root, 'shop', dead.name),
      old: join(root, 'shop', 'nested', 'deeper', '.d.tar.partial-0123abcd89ef'),
      live: join(root, 'crm', live.name),
      object: join(root, 'shop', 'x.sql.gz'),
    };
    await put(files.dead, 1000);
    await put(files.old, 2345);
    await put(files.live, 77);
    await put(files.object, 10);
    // A temp file of this very process (a write in flight in the daemon itself) stays as well.
    const own = join(root, 'crm', tempName('e.bin'));
    await put(own, 5);

    const report = await target.sweep({ startedAt: new Date(), logger: capturingLogger().logger });
    expect(report.failed).toEqual([]);
    expect([...report.removed].sort((a, b) => (a.key < b.key ? -1 : 1))).toEqual([
      { key: `shop/${dead.name}`, bytes: 1000, kind: 'partial' },
      { key: 'shop/nested/deeper/.d.tar.partial-0123abcd89ef', bytes: 2345, kind: 'partial' },
    ]);
    expect(await exists(files.dead)).toBe(false);
    expect(await exists(files.old)).toBe(false);
    expect(await exists(files.live)).toBe(true);
    expect(await exists(own)).toBe(true);
    expect(await exists(files.object)).toBe(true);
    // `list` never shows temp files, in either form.
    expect((await target.list('')).map((o) => o.key)).toEqual(['shop/x.sql.gz']);

    // Once the live writer is gone, its temp file is abandoned too.
    await live.stop();
    const after = await target.sweep({ startedAt: new Date(), logger: capturingLogger().logger });
    expect(after.removed).toEqual([{ key: `crm/${live.name}`, bytes: 77, kind: 'partial' }]);
    expect(await exists(own)).toBe(true);
  });

  it('names temp files after their writer and refuses such names as keys', async () => {
    const name = tempName('x.bin');
    expect(name).toMatch(new RegExp(`^\\.x\\.bin\\.partial-${process.pid}\\.[0-9a-f]{8}-[0-9a-f]{12}$`));
    expect(TEMP_PATTERN.test(name)).toBe(true);
    expect(TEMP_PATTERN.test('.x.bin.partial-0123abcd')).toBe(true);
    const target = local('disk', join(dir, 'names'));
    const err = await target.stat(`m/${name}`).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BackerError);
    expect((err as BackerError).code).toBe('TARGET_READ_FAILED');
  });

  it('a missing root has nothing to sweep', async () => {
    const report = await local('disk', join(dir, 'never-created')).sweep({ startedAt: new Date(), logger: capturingLogger().logger });
    expect(report).toEqual({ removed: [], failed: [] });
  });
});

describe('S3 target sweep on s3rver', () => {
  const bucket = `bk-sweep-${suffix}`;
  let client: S3Client;
  let faulty: FaultyS3;

  beforeAll(async () => {
    await createBucket(bucket);
    client = s3Client();
    faulty = await startFaultyS3(inject('s3').endpoint);
  });
  afterAll(async () => {
    client.destroy();
    await faulty.close();
  });

  const s3Target = (name: string, opts: { bucket?: string; prefix?: string; endpoint?: string } = {}): Target => {
    const s3 = inject('s3');
    return createS3Target({
      name,
      type: 's3',
      default: false,
      bucket: opts.bucket ?? bucket,
      prefix: opts.prefix ?? 'backer/',
      endpoint: opts.endpoint ?? s3.endpoint,
      region: s3.region,
      force_path_style: true,
      access_key_id: s3.accessKeyId,
      secret_access_key: s3.secretAccessKey,
      part_size_mb: 5,
      queue_size: 2,
    });
  };

  const begin = (key: string, sizes: number[]): Promise<OpenUpload> => beginUpload(client, bucket, key, sizes);

  it('aborts the uploads under the prefix begun before the start, with their bytes; keeps those outside it and those begun after', async () => {
    const target = s3Target('bucket', { prefix: 'a/backer/' });
    await begin('a/backer/shop/a.sql.gz', [5, 5, 5, 1]);
    await begin('a/backer/crm/b.tar', []);
    await begin('a/backer/crm/c.tar', [7, 3]);
    const kept = [await begin('a/other/x.bin', [9]), await begin('a/backer-2/y.bin', [9])];
    // Upload start times come from the file system's clock, which may trail Date.now() by a tick.
    await pause(50);
    const startedAt = new Date();
    await pause(50);
    kept.push(await begin('a/backer/shop/a.sql.gz', [5]));
    const { logger, lines } = capturingLogger();
    const report = await target.sweep({ startedAt, logger });
    expect(report.failed).toEqual([]);
    expect(sortByKey(report.removed)).toEqual([
      { key: 'crm/b.tar', bytes: 0, kind: 'multipart' },
      { key: 'crm/c.tar', bytes: 10, kind: 'multipart' },
      { key: 'shop/a.sql.gz', bytes: 16, kind: 'multipart' },
    ]);
    expect(lines().filter((l) => l.msg === 'aborted an abandoned multipart upload').map((l) => l.object)).toHaveLength(3);
    expect(sortByKey(await listUploads(bucket, 'a/'))).toEqual(sortByKey(kept.map(({ key, uploadId }) => ({ key, uploadId }))));
    await target.close();
  });

  it('pages through more than a thousand uploads, and through the parts of one with more than a thousand', async () => {
    const target = s3Target('bucket', { prefix: 'b/', endpoint: faulty.endpoint });
    // Seven keys: pages also end between two uploads of the same key (upload id marker).
    await inBatches(1001, 16, (i) => begin(`b/many/${i % 7}.bin`, []));
    const big = await begin('b/big.bin', []);
    await inBatches(1001, 16, (i) => client.send(new UploadPartCommand({ Bucket: bucket, Key: big.key, UploadId: big.uploadId, PartNumber: i + 1, Body: 'x' })));
    await pause(50);
    const report = await target.sweep({ startedAt: new Date(), logger: capturingLogger().logger });
    expect(report.failed).toEqual([]);
    expect(report.removed).toHaveLength(1002);
    expect(report.removed.filter((r) => r.bytes > 0)).toEqual([{ key: 'big.bin', bytes: 1001, kind: 'multipart' }]);
    const gets = faulty.seen.filter((r) => r.startsWith('GET '));
    expect(gets.filter((r) => r.startsWith(`GET /${bucket}/?`) && /[?&]uploads=/.test(r))).toHaveLength(2);
    expect(gets.filter((r) => r.startsWith(`GET /${bucket}/b/big.bin?`) && r.includes(`uploadId=${big.uploadId}`))).toHaveLength(2);
    expect(await listUploads(bucket, 'b/')).toEqual([]);
    await target.close();
  });

  it('skips an upload completed while the sweep runs, and aborts the others', async () => {
    const done = await begin('c/backer/done.bin', [3]);
    await begin('c/backer/left.bin', [4]);
    await pause(50);
    // A real race: the upload is completed on the server just before the sweep's abort goes out.
    const racing = s3Client();
    racing.middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName === 'AbortMultipartUploadCommand' && (args.input as { UploadId?: string }).UploadId === done.uploadId) {
          const parts = done.etags.map((ETag, i) => ({ ETag, PartNumber: i + 1 }));
          await client.send(new CompleteMultipartUploadCommand({ Bucket: bucket, Key: done.key, UploadId: done.uploadId, MultipartUpload: { Parts: parts } }));
        }
        return next(args);
      },
      { step: 'initialize', name: 'completeBeforeAbort' },
    );
    try {
      const report = await sweepMultipartUploads({ client: racing, bucket, prefix: 'c/backer/', startedAt: new Date(), logger: capturingLogger().logger });
      expect(report).toEqual({ removed: [{ key: 'left.bin', bytes: 4, kind: 'multipart' }], failed: [] });
    } finally {
      racing.destroy();
    }
    expect((await client.send(new HeadObjectCommand({ Bucket: bucket, Key: done.key }))).ContentLength).toBe(3);
    expect(await listUploads(bucket, 'c/')).toEqual([]);
  });

  it('reports the uploads it may not abort and leaves them; aborts them once it may', async () => {
    const open = [await begin('d/backer/a.bin', [2]), await begin('d/backer/b.bin', [])].map(({ key, uploadId }) => ({ key, uploadId }));
    await pause(50);
    const target = s3Target('bucket', { prefix: 'd/backer/', endpoint: faulty.endpoint });
    await faulty.arm('deny-abort');
    try {
      const denied = await target.sweep({ startedAt: new Date(), logger: capturingLogger().logger });
      expect(denied.removed).toEqual([]);
      expect(denied.failed.map((f) => f.key)).toEqual(['a.bin', 'b.bin']);
      for (const f of denied.failed) expect(f.error).toMatch(/injected by the test/);
      expect(sortByKey(await listUploads(bucket, 'd/'))).toEqual(open);
      const { logger, lines } = capturingLogger();
      await sweepTargets(new Map([['bucket', target]]), logger, new Date());
      expect(lines().filter((l) => l.level === 40 && l.msg.startsWith('start-up sweep could not remove')).map((l) => l.object)).toEqual(['a.bin', 'b.bin']);
      expect(lines().find((l) => l.msg === 'start-up sweep')).toMatchObject({ target: 'bucket', removed: 0, removed_bytes: 0, failed: 2 });
    } finally {
      await faulty.arm('none');
    }
    const allowed = await target.sweep({ startedAt: new Date(), logger: capturingLogger().logger });
    expect(allowed).toEqual({ removed: [{ key: 'a.bin', bytes: 2, kind: 'multipart' }, { key: 'b.bin', bytes: 0, kind: 'multipart' }], failed: [] });
    expect(await listUploads(bucket, 'd/')).toEqual([]);
    await target.close();
  });

  it('fails loudly where the uploads cannot be listed, and the other targets go on', async () => {
    const missing = `${bucket}-missing`;
    const target = s3Target('bucket', { bucket: missing });
    const err = await target.sweep({ startedAt: new Date(), logger: capturingLogger().logger }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BackerError);
    expect((err as BackerError).code).toBe('TARGET_READ_FAILED');
    expect((err as BackerError).message).toContain(`bucket ${missing}`);
    expect(describeError(err)).toMatch(/bucket does not exist/i);

    const root = join(dir, 's3-sibling');
    const dead = await tempNameOf('a.bin', false);
    await put(join(root, 'm', dead.name), 321);
    const { logger, lines } = capturingLogger();
    const summary = await sweepTargets(new Map([['bucket', target], ['disk', local('disk', root)]]), logger, new Date());
    expect(summary.targets.map((t) => [t.target, t.removed.length, t.removed_bytes, t.error === undefined])).toEqual([
      ['bucket', 0, 0, false],
      ['disk', 1, 321, true],
    ]);
    const failed = lines().find((l) => l.msg.startsWith('start-up sweep failed'));
    expect(failed).toMatchObject({ level: 50, target: 'bucket' });
    expect(String(failed?.err)).toMatch(/could not list the unfinished multipart uploads in bucket .*bucket does not exist/i);
    expect(lines().filter((l) => l.msg === 'start-up sweep').map((l) => [l.target, l.removed, l.removed_bytes, l.orphans])).toEqual([
      ['bucket', 0, 0, 0],
      ['disk', 1, 321, 0],
    ]);
    await target.close();
  });

  it('reports a manifest without artifact on S3, never deletes it, and leaves a young artifact alone', async () => {
    const manifest = JSON.stringify({ artifact: { key: 'shop/gone.sql.gz' } });
    await client.send(new PutObjectCommand({ Bucket: bucket, Key: 'backer/shop/gone.manifest.json', Body: manifest }));
    await client.send(new PutObjectCommand({ Bucket: bucket, Key: 'backer/shop/in-flight.sql.gz', Body: 'young' }));
    const target = s3Target('bucket');
    const { logger, lines } = capturingLogger();
    const summary = await sweepTargets(new Map([['bucket', target]]), logger, new Date());
    expect(summary.targets[0]?.orphans).toEqual([{ kind: 'manifest_without_artifact', key: 'shop/gone.manifest.json', size: manifest.length, age_s: expect.any(Number) as unknown }]);
    expect(lines().filter((l) => l.level === 40 && l.msg.includes('manifest whose artifact is missing')).map((l) => [l.target, l.object, l.size])).toEqual([
      ['bucket', 'shop/gone.manifest.json', manifest.length],
    ]);
    expect((await target.list('shop/')).map((o) => o.key).sort()).toEqual(['shop/gone.manifest.json', 'shop/in-flight.sql.gz']);
    await target.close();
  });
});

describe('orphans on a local target', () => {
  it('reports a manifest without artifact and an old artifact without manifest, never deletes either', async () => {
    const root = join(dir, 'orphans');
    const manifest = (key: string): string => JSON.stringify({ artifact: { key } });
    const files: Record<string, [string, number]> = {
      'shop/gone.manifest.json': [manifest('shop/gone.sql.gz'), 3 * DAY_S],
      'shop/lost.sql.gz': ['x'.repeat(4096), 2 * DAY_S],
      'shop/in-flight.sql.gz': ['young', 60],
      'shop/ok.manifest.json': [manifest('shop/ok.sql.gz'), 5 * DAY_S],
      'shop/ok.sql.gz': ['complete', 5 * DAY_S],
      'shop/ok.verify-20260101T000000Z.json': ['{}', 5 * DAY_S],
      // Paired by the manifest's artifact key rather than by name.
      'shop/renamed.manifest.json': [manifest('shop/elsewhere.bin'), 5 * DAY_S],
      'shop/elsewhere.bin': ['moved', 5 * DAY_S],
      // An unreadable manifest is reported by `backups list`, not here; its artifact is not an orphan.
      'crm/broken.manifest.json': ['not json', 5 * DAY_S],
      'crm/broken.tar.zst': ['data', 5 * DAY_S],
    };
    for (const [key, [body, age]] of Object.entries(files)) {
      await mkdir(dirname(join(root, key)), { recursive: true });
      await writeFile(join(root, key), body);
      const when = new Date(Date.now() - age * 1000);
      await utimes(join(root, key), when, when);
    }
    const { logger, lines } = capturingLogger();
    const summary = await sweepTargets(new Map([['disk', local('disk', root)]]), logger, new Date());
    const orphans = summary.targets[0]?.orphans ?? [];
    expect(orphans.map((o) => [o.kind, o.key, o.size])).toEqual([
      ['manifest_without_artifact', 'shop/gone.manifest.json', files['shop/gone.manifest.json']?.[0].length],
      ['artifact_without_manifest', 'shop/lost.sql.gz', 4096],
    ]);
    expect(orphans.map((o) => Math.round(o.age_s / 3600))).toEqual([72, 48]);
    const warned = lines().filter((l) => l.level === 40);
    expect(warned.map((l) => [l.target, l.object, l.size, typeof l.age_s])).toEqual([
      ['disk', 'shop/gone.manifest.json', files['shop/gone.manifest.json']?.[0].length, 'number'],
      ['disk', 'shop/lost.sql.gz', 4096, 'number'],
    ]);
    expect(lines().find((l) => l.msg === 'start-up sweep')).toMatchObject({ target: 'disk', removed: 0, removed_bytes: 0, orphans: 2 });
    for (const key of Object.keys(files)) expect(await exists(join(root, key))).toBe(true);
  });
});

describe('a real daemon sweeps at start', () => {
  it('removes abandoned temp files and unfinished uploads under the S3 prefix, logs count and bytes, and answers', async () => {
    const env = await createTestEnv(`sweep-${suffix}`);
    const backups = join(env.dir, 'backups');
    const dead = await tempNameOf('db.sql.gz', false);
    const live = await tempNameOf('db2.sql.gz', true);
    await put(join(backups, 'shop', dead.name), 4000);
    await put(join(backups, 'shop', '.old.sql.gz.partial-00ff00ff00ff'), 96);
    await put(join(backups, 'crm', live.name), 10);
    const client = s3Client();
    await beginUpload(client, env.bucket, 'backer/shop/left.sql.gz', [1000, 234]);
    const outside = await beginUpload(client, env.bucket, 'elsewhere/x.bin', [5]);
    client.destroy();
    const daemon = spawnDaemon(env.configPath);
    const socket = join(env.dir, 'data', 'backer.sock');
    try {
      await waitForHealth(daemon, socket);
      const deadline = Date.now() + 20_000;
      const sweepLines = (): LogLine[] => parseLines(daemon.output()).filter((l) => l.msg === 'start-up sweep');
      while (sweepLines().length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      expect(sweepLines().map((l) => [l.target, l.removed, l.removed_bytes, l.orphans])).toEqual([
        ['local', 2, 4096, 0],
        ['s3', 1, 1234, 0],
      ]);
      expect(parseLines(daemon.output()).filter((l) => l.msg.startsWith('start-up sweep failed'))).toEqual([]);
      expect(await listUploads(env.bucket, 'backer/')).toEqual([]);
      expect(await listUploads(env.bucket)).toEqual([{ key: outside.key, uploadId: outside.uploadId }]);
      expect(await readdir(join(backups, 'shop'))).toEqual([]);
      expect(await readdir(join(backups, 'crm'))).toEqual([live.name]);
      expect((await callApi<{ status: string }>(socket, 'GET', '/v1/health')).status).toBe('ok');
    } finally {
      expect(await daemon.stop()).toBe(0);
      await live.stop();
      await rm(env.dir, { recursive: true, force: true });
    }
  });
});

describe('a real daemon beside a real backup --once', () => {
  it('leaves the temp file of a live --once alone and removes it once that process is dead', async () => {
    const mandate = `sweep-once-${suffix}`;
    const env = await createTestEnv(`sweeponce-${suffix}`, `mandates:\n${filesMandateYaml(mandate, 'SWEEP_FILES', { target: 'local', middleware: 'compression' })}`);
    // A large sparse file: tar and gzip take long enough over it to freeze the copy mid-stream.
    const source = join(env.dir, 'files');
    await mkdir(source);
    const sparse = await open(join(source, 'big.img'), 'w');
    await sparse.truncate(8 * 1024 ** 3);
    await sparse.close();
    const extraEnv = { SWEEP_FILES: source };
    const target = join(env.dir, 'backups', mandate);
    const socket = join(env.dir, 'data', 'backer.sock');
    const once = spawnCli(['backup', mandate, '--once', '--config', env.configPath], extraEnv);
    children.push(once.child);
    const onceClosed = new Promise((resolve) => once.child.on('close', resolve));
    const mine = (name: string): boolean => name.includes(`.partial-${once.child.pid}.`);
    const deadline = Date.now() + 30_000;
    while (!(await readdir(target).catch(() => [])).some(mine)) {
      if (Date.now() > deadline || once.child.exitCode !== null) throw new Error(`no temp file of the --once:\n${once.output()}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    once.child.kill('SIGSTOP');
    const [temp = ''] = (await readdir(target)).filter(mine);

    const first = spawnDaemon(env.configPath, { env: extraEnv });
    try {
      await waitForHealth(first, socket);
      await waitForLine(() => first.output(), (l) => l.msg === 'start-up sweep' && l.target === 'local');
      expect(parseLines(first.output()).find((l) => l.msg === 'start-up sweep' && l.target === 'local')).toMatchObject({ removed: 0, removed_bytes: 0 });
      expect(await readdir(target)).toEqual([temp]);
    } finally {
      expect(await first.stop()).toBe(0);
    }

    once.child.kill('SIGKILL');
    await onceClosed;
    const bytes = (await stat(join(target, temp))).size;
    const second = spawnDaemon(env.configPath, { env: extraEnv });
    try {
      await waitForHealth(second, socket);
      await waitForLine(() => second.output(), (l) => l.msg === 'start-up sweep' && l.target === 'local');
      expect(parseLines(second.output()).find((l) => l.msg === 'start-up sweep' && l.target === 'local')).toMatchObject({ removed: 1, removed_bytes: bytes });
      expect(await readdir(target)).toEqual([]);
      expect((await callApi<{ status: string }>(socket, 'GET', '/v1/health')).status).toBe('ok');
    } finally {
      expect(await second.stop()).toBe(0);
      await rm(env.dir, { recursive: true, force: true });
    }
  });
});

async function waitForLine(output: () => string, match: (line: LogLine) => boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!parseLines(output()).some(match)) {
    if (Date.now() > deadline) throw new Error(`no such log line:\n${output()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
