import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chmod, mkdir, mkdtemp, readdir, readFile, readlink, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { Daemon } from '../src/daemon/daemon.js';
import type { Manifest } from '../src/manifests/schema.js';
import type { Job } from '../src/queue/types.js';
import type { OptionOrigin } from '../src/sources/types.js';
import { planMounts, volumeSource, type ContainerMount } from '../src/sources/volume.js';
import { digest, runProgram, s3Get } from './helpers/artifacts.js';
import { backupJob, createTestEnv, startDaemon, storedJob, type TestEnv } from './helpers/env.js';
import { backupAndDecode } from './helpers/matrix.js';
import { docker, HOST_IMAGE } from './setup/services.js';

const host = (): string => inject('dockerHost');
const suffix = randomBytes(3).toString('hex');
const VOLUME = `volume-data-${suffix}`;
const BIG_VOLUME = `volume-big-${suffix}`;
/** Removed while its helper copies; the helper holds the named volume, so the copy goes on. */
const MID_DUMP = `volume-middump-${suffix}`;
/** Not the default daily midnight schedule: a scheduled backup of this mandate would race its test. */
const RARELY = '0 0 29 2 *';
const MID_DUMP_VOLUME = `volume-middump-data-${suffix}`;
const CONTAINERS = ['volume-app', 'volume-paths', 'volume-stop', 'volume-fail', 'volume-nomount', 'volume-bad', MID_DUMP];
const BASE_LABELS = {
  'backer.enabled': 'true',
  'backer.type': 'volume',
  'backer.target': 'local,s3',
  'backer.middleware': 'compression',
};
// PID 1 handles SIGTERM, so `docker stop` takes a moment, not the 10 s kill timeout.
const IDLE = 'trap "exit 0" TERM; while :; do sleep 1 & wait $!; done';

let env: TestEnv;
let daemon: Daemon;
let srvDir: string;

async function startContainer(name: string, labels: Record<string, string>, volume = VOLUME): Promise<void> {
  const args = ['run', '-d', '--name', name, '--network', 'none', '-v', '/usr:/usr:ro', '-v', '/etc:/etc:ro'];
  args.push('-v', `${volume}:/data`, '-v', `${srvDir}:/srv`);
  for (const [k, v] of Object.entries({ ...BASE_LABELS, ...labels })) args.push('--label', `${k}=${v}`);
  await docker(host(), [...args, HOST_IMAGE, 'bash', '-c', IDLE]);
}

async function backup(mandate: string): Promise<Job> {
  await daemon.services.discovery.refresh();
  return backupJob(await daemon.queue.wait(daemon.queue.enqueue(mandate, 'api').id));
}

/**
 * Like backupThrough in helpers/env.ts (one backup of a mandate through other middleware), but with
 * the config's volume settings as the daemon passes them: without them the helper would be
 * busybox:stable, which the test engine does not have.
 */
/** The docker CLI without stdin, for the many short polls. */
async function dockerOut(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('docker', args, { env: { ...process.env, DOCKER_HOST: host() } }, (err, stdout) => {
      if (err) reject(new Error(`docker ${args.join(' ')}: ${err.message}`));
      else resolve(stdout.trim());
    });
  });
}

async function running(name: string): Promise<boolean> {
  return (await dockerOut(['inspect', '-f', '{{.State.Running}}', name])) === 'true';
}

async function startedAt(name: string): Promise<string> {
  return dockerOut(['inspect', '-f', '{{.State.StartedAt}}', name]);
}

/** Helper containers Backer left on the engine for one labelled container. */
async function helpers(container: string): Promise<string> {
  return dockerOut(['ps', '-aq', '--filter', 'label=backer.helper=true', '--filter', `label=backer.helper.container=${container}`]);
}

/** True once the local target's temp file of the mandate holds bytes: the copy is streaming. */
async function copying(mandate: string): Promise<boolean> {
  const dir = join(env.dir, 'backups', mandate);
  for (const name of await readdir(dir).catch(() => [])) {
    if (name.includes('.partial-') && ((await stat(join(dir, name)).catch(() => undefined))?.size ?? 0) > 0) return true;
  }
  return false;
}

/** Polls `docker inspect` until `until` settles; returns every Running state seen. */
async function watchRunning(name: string, until: Promise<unknown>): Promise<boolean[]> {
  const seen: boolean[] = [];
  let done = false;
  void until.finally(() => (done = true));
  while (!done) {
    seen.push(await running(name));
    await new Promise((r) => setTimeout(r, 20));
  }
  return seen;
}

async function waitFor(check: () => Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** sha256 of every regular file below the given container directories, as `path → hash`. */
async function containerHashes(container: string, dirs: string[]): Promise<Record<string, string>> {
  const out = await docker(host(), ['exec', container, 'bash', '-c', `cd / && find ${dirs.join(' ')} -type f -print0 | sort -z | xargs -0 sha256sum`]);
  const hashes: Record<string, string> = {};
  for (const line of out.split('\n').filter(Boolean)) {
    const [hash, ...path] = line.split('  ');
    hashes[path.join('  ')] = hash ?? '';
  }
  return hashes;
}

/** Untars with the real tar and hashes every regular file, as `path → hash`. */
async function archiveHashes(tar: Buffer): Promise<{ hashes: Record<string, string>; dir: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'bk-volume-x-'));
  await runProgram('tar', ['-x', '-C', dir, '-f', '-'], tar);
  const hashes: Record<string, string> = {};
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const path = join(entry.parentPath, entry.name);
    hashes[path.slice(dir.length + 1)] = createHash('sha256').update(await readFile(path)).digest('hex');
  }
  return { hashes, dir };
}

async function s3Artifact(job: Job): Promise<{ data: Buffer; manifest: Manifest }> {
  const target = job.result?.targets.find((t) => t.target === 's3');
  const key = `backer/${target?.artifact_key ?? ''}`;
  const manifestKey = `backer/${target?.manifest_key ?? ''}`;
  return { data: await s3Get(env.bucket, key), manifest: JSON.parse((await s3Get(env.bucket, manifestKey)).toString()) as Manifest };
}

async function localFiles(mandate: string): Promise<string[]> {
  return readdir(join(env.dir, 'backups', mandate)).catch(() => []);
}

beforeAll(async () => {
  env = await createTestEnv('volume', 'volume:\n  helper_image: hostuser:latest\n  helper_binds: [/usr:/usr:ro]\n');
  srvDir = await mkdtemp(join(tmpdir(), 'bk-volume-srv-'));
  await mkdir(join(srvDir, 'site', 'assets'), { recursive: true });
  await writeFile(join(srvDir, 'site', 'index.html'), '<h1>hello</h1>\n');
  await writeFile(join(srvDir, 'site', 'assets', 'logo.bin'), randomBytes(200_000));
  await writeFile(join(srvDir, 'one.txt'), 'one\n');
  await chmod(join(srvDir, 'one.txt'), 0o600);
  await docker(host(), ['volume', 'create', VOLUME]);
  await docker(host(), ['volume', 'create', BIG_VOLUME]);
  await docker(host(), ['volume', 'create', MID_DUMP_VOLUME]);
  await startContainer('volume-app', {});
  await startContainer('volume-paths', { 'backer.volume.paths': '/data/sub,/srv/one.txt' });
  await startContainer('volume-stop', { 'backer.volume.stop': 'true' }, BIG_VOLUME);
  await startContainer('volume-fail', { 'backer.volume.stop': 'true', 'backer.volume.paths': '/data/does-not-exist' });
  await startContainer('volume-nomount', { 'backer.volume.stop': 'true', 'backer.volume.paths': '/opt/app' });
  await startContainer('volume-bad', { 'backer.volume.stop': 'maybe', 'backer.volume.paths': 'data' });
  await startContainer(MID_DUMP, { 'backer.interval': RARELY }, MID_DUMP_VOLUME);
  // Data owned by another user, mode 600, a symlink and an empty file: the helper reads them all.
  await docker(host(), ['exec', 'volume-app', 'bash', '-c', [
    'mkdir -p /data/sub/deep /data/db',
    'head -c 3000000 /dev/urandom > /data/db/blob.bin',
    'echo secret > /data/db/private && chown 1234:1234 /data/db/private && chmod 600 /data/db/private',
    'printf "a b c" > "/data/sub/with space.txt"',
    ': > /data/sub/deep/empty',
    'ln -s ../db/blob.bin /data/sub/link',
  ].join(' && ')]);
  await docker(host(), ['exec', 'volume-stop', 'bash', '-c', 'head -c 96M /dev/urandom > /data/big.bin && echo small > /data/small.txt']);
  await docker(host(), ['exec', MID_DUMP, 'bash', '-c', 'head -c 96M /dev/urandom > /data/big.bin && echo small > /data/small.txt']);
  daemon = await startDaemon(env);
});

afterAll(async () => {
  await daemon?.close();
  for (const name of CONTAINERS) await docker(host(), ['rm', '-f', name]).catch(() => undefined);
  await docker(host(), ['volume', 'rm', '-f', VOLUME, BIG_VOLUME, MID_DUMP_VOLUME]).catch(() => undefined);
  await rm(srvDir, { recursive: true, force: true });
  // The big volume's backups are ~100 MB: don't leave them in /tmp.
  if (env) await rm(env.dir, { recursive: true, force: true });
});

describe('volume mount selection and options', () => {
  const mount = (Type: string, Destination: string, RW = true, Source = `/host${Destination}`, Name?: string): ContainerMount => ({ Type, Destination, RW, Source, Name });
  const origin: OptionOrigin = { container: 'app', describe: (key) => `container app label backer.volume.${key}` };

  it('by default takes volumes and data binds, not system mounts, sockets, pseudo filesystems or tmpfs', () => {
    const plan = planMounts('app', [
      mount('volume', '/data', true, '/var/lib/docker/volumes/v/_data', 'v'),
      mount('volume', '/config', false, '/var/lib/docker/volumes/c/_data', 'c'),
      mount('bind', '/srv'),
      mount('bind', '/app/config.yml', false),
      mount('bind', '/usr', false, '/usr'),
      mount('bind', '/etc/localtime', false, '/etc/localtime'),
      mount('bind', '/etc/app', true, '/opt/app-config'),
      mount('bind', '/var/run/docker.sock', true, '/var/run/docker.sock'),
      mount('bind', '/host/proc', false, '/proc'),
      mount('bind', '/rootfs', false, '/'),
      mount('tmpfs', '/cache', true, ''),
      mount('volume', '/data/nested', true, '/x', 'n'),
    ], null);
    expect(plan.members).toEqual(['/data', '/config', '/srv', '/app/config.yml', '/etc/app']);
    expect(plan.mounts.map((m) => m.Destination)).toEqual(['/data', '/config', '/srv', '/app/config.yml', '/etc/app', '/data/nested']);
    expect(plan.skipped.map((s) => s.destination)).toEqual(['/usr', '/etc/localtime', '/var/run/docker.sock', '/host/proc', '/rootfs', '/cache']);
  });

  it('with paths mounts the mount that holds each path and the mounts nested below it', () => {
    const plan = planMounts('app', [mount('volume', '/data', true, '/v', 'v'), mount('bind', '/data/a/b'), mount('bind', '/srv')], ['/data/a', '/data/a/b/c']);
    expect(plan.members).toEqual(['/data/a']);
    expect(plan.mounts.map((m) => m.Destination)).toEqual(['/data', '/data/a/b']);
    expect(() => planMounts('app', [mount('bind', '/srv')], ['/opt/x'])).toThrow(/container app label backer\.volume\.paths: \/opt\/x is not on a volume or bind mount \(mounts: \/srv\)/);
    expect(() => planMounts('app', [mount('tmpfs', '/cache')], ['/cache/x'])).toThrow(/tmpfs mount/);
    expect(() => planMounts('app', [mount('bind', '/usr', false, '/usr')], null)).toThrow(/no volume or bind mount to back up; skipped: \/usr \(a read-only system mount\)/);
  });

  it('validates labels with their origin', () => {
    expect(volumeSource.parse({}, origin)).toEqual({ paths: null, stop: false });
    expect(volumeSource.parse({ paths: '/var/lib/app/, /data', stop: 'TRUE' }, origin)).toEqual({ paths: ['/var/lib/app', '/data'], stop: true });
    expect(() => volumeSource.parse({ paths: 'data' }, origin)).toThrow('container app label backer.volume.paths: expected absolute paths inside the container, got "data"');
    expect(() => volumeSource.parse({ paths: '/data/../etc' }, origin)).toThrow(/"\/data\/\.\.\/etc" contains/);
    expect(() => volumeSource.parse({ paths: '/' }, origin)).toThrow(/"\/" is not a mount/);
    expect(volumeSource.parse({ stop: 'yes' }, origin)).toEqual({ paths: null, stop: true });
    expect(() => volumeSource.parse({ stop: 'maybe' }, origin)).toThrow('container app label backer.volume.stop: expected true or false (also yes/no, on/off, 1/0), received "maybe"');
    expect(() => volumeSource.parse({ path: '/data' }, origin)).toThrow(/backer\.volume\.path: unknown volume option; known: paths, stop/);
  });

  it('reports bad labels of a discovered container and skips it', () => {
    const { problems, mandates } = daemon.services.discovery.current();
    expect(problems.map((p) => p.where)).toContain('container volume-bad label backer.volume.stop');
    expect(mandates.map((m) => m.name)).not.toContain('volume-bad');
  });
});

describe('volume backups of labelled containers', () => {
  it('backs up every data mount (volume and bind) as one tar through gzip to local and S3', async () => {
    const job = await backup('volume-app');
    expect(job.error).toBeNull();
    expect(job.result?.targets.map((t) => [t.target, t.status])).toEqual([['local', 'succeeded'], ['s3', 'succeeded']]);
    const { data, manifest } = await s3Artifact(job);
    expect(manifest.artifact.key).toMatch(/\.tar\.gz$/);
    expect(manifest.source).toMatchObject({ type: 'volume', container: 'volume-app', image: HOST_IMAGE, volumes: [VOLUME], stopped: false });
    expect([...(manifest.source.paths as string[])].sort()).toEqual(['/data', '/srv']);
    expect(manifest.steps.map((s) => [s.processor, s.mime])).toEqual([['source:volume', 'application/x-tar'], ['middleware:gzip:compression', 'application/gzip']]);
    expect(digest(data).sha256).toBe(manifest.artifact.sha256);
    const local = await readFile(join(env.dir, 'backups', job.result?.targets[0]?.artifact_key ?? ''));
    expect(digest(local).sha256).toBe(manifest.artifact.sha256);

    const tar = await runProgram('gzip', ['-d'], data);
    expect(digest(tar).sha256).toBe(manifest.steps[0]?.sha256);
    const { hashes, dir } = await archiveHashes(tar);
    expect(hashes).toEqual(await containerHashes('volume-app', ['data', 'srv']));
    expect(Object.keys(hashes)).toContain('data/db/private');
    expect(await readlink(join(dir, 'data/sub/link'))).toBe('../db/blob.bin');
    // Read-only system mounts (/usr, /etc) are not part of the archive.
    expect((await readdir(dir)).sort()).toEqual(['data', 'srv']);
    const listing = (await runProgram('tar', ['-tv', '--numeric-owner', '-f', '-'], tar)).toString();
    expect(listing).toMatch(/-rw------- 1234\/1234 .* \.\/data\/db\/private/);
    await rm(dir, { recursive: true, force: true });
    expect(await helpers('volume-app')).toBe('');
  });

  it('backs up through zstd, gpg, age and ccrypt too, and the real tools restore every file', async () => {
    const chains: { chain: string[]; extension: RegExp; processors: string[] }[] = [
      { chain: ['zstd', 'gpg'], extension: /\.tar\.zst\.gpg$/, processors: ['middleware:zstd:zstd', 'middleware:gpg:gpg'] },
      { chain: ['age'], extension: /\.tar\.age$/, processors: ['middleware:age:age'] },
      { chain: ['encryption'], extension: /\.tar\.cpt$/, processors: ['middleware:ccrypt:encryption'] },
    ];
    const expected = await containerHashes('volume-app', ['data', 'srv']);
    for (const { chain, extension, processors } of chains) {
      const { key, manifest, raw: tar } = await backupAndDecode(daemon, env.bucket, 'volume-app', chain);
      expect(key).toMatch(extension);
      expect(manifest.steps.map((s) => s.processor)).toEqual(['source:volume', ...processors]);
      const { hashes, dir } = await archiveHashes(tar);
      expect(hashes).toEqual(expected);
      expect(Object.keys(hashes)).toContain('data/db/private');
      expect(await readlink(join(dir, 'data/sub/link'))).toBe('../db/blob.bin');
      expect((await readdir(dir)).sort()).toEqual(['data', 'srv']);
      await rm(dir, { recursive: true, force: true });
    }
    expect(await helpers('volume-app')).toBe('');
  });

  it('backs up only the paths named in backer.volume.paths', async () => {
    const job = await backup('volume-paths');
    expect(job.error).toBeNull();
    const { data, manifest } = await s3Artifact(job);
    expect(manifest.source).toMatchObject({ paths: ['/data/sub', '/srv/one.txt'], volumes: [VOLUME], stopped: false });
    const { hashes, dir } = await archiveHashes(await runProgram('gzip', ['-d'], data));
    const expected = await containerHashes('volume-paths', ['data/sub', 'srv/one.txt']);
    expect(Object.keys(expected).sort()).toEqual(['data/sub/deep/empty', 'data/sub/with space.txt', 'srv/one.txt']);
    expect(hashes).toEqual(expected);
    await rm(dir, { recursive: true, force: true });
  });

  it('stop=true: stops the container during the copy and starts it again after success', async () => {
    const before = await startedAt('volume-stop');
    await daemon.services.discovery.refresh();
    const done = daemon.queue.wait(daemon.queue.enqueue('volume-stop', 'api').id);
    const seen = await watchRunning('volume-stop', done);
    const job = backupJob(await done);
    expect(job.error).toBeNull();
    expect(seen).toContain(false);
    // Started again before the job ended, not some time later.
    expect(await running('volume-stop')).toBe(true);
    expect(await startedAt('volume-stop')).not.toBe(before);
    const { data, manifest } = await s3Artifact(job);
    // Docker lists mounts in no fixed order.
    expect([...(manifest.source.paths as string[])].sort()).toEqual(['/data', '/srv']);
    expect(manifest.source).toMatchObject({ volumes: [BIG_VOLUME], stopped: true });
    const { hashes, dir } = await archiveHashes(await runProgram('gzip', ['-d'], data));
    expect(hashes['data/big.bin']).toBe((await containerHashes('volume-stop', ['data']))['data/big.bin']);
    await rm(dir, { recursive: true, force: true });
    const logs = env.logs.join('');
    expect(logs).toMatch(/"container":"volume-stop".*"msg":"container stopped for the volume copy"/);
    expect(logs).toMatch(/"container":"volume-stop".*"msg":"container started again after the volume copy"/);
    expect(await helpers('volume-stop')).toBe('');
  });

  it('stop=true: a failing helper (path missing on the volume) fails the job and the container runs again', async () => {
    const before = await startedAt('volume-fail');
    const job = await backup('volume-fail');
    expect(job.state).toBe('failed');
    expect(job.error?.code).toBe('DUMP_FAILED');
    expect(job.error?.message).toMatch(/tar in the volume helper of container volume-fail exited with code 2: .*does-not-exist: Cannot stat: No such file or directory/);
    expect(await running('volume-fail')).toBe(true);
    expect(await startedAt('volume-fail')).not.toBe(before);
    expect(await helpers('volume-fail')).toBe('');
    expect(await localFiles('volume-fail')).toEqual([]);
    expect(await daemon.services.targets.get('s3')?.list('volume-fail/')).toEqual([]);
  });

  it('a path on no mount fails before the container is stopped', async () => {
    const before = await startedAt('volume-nomount');
    const job = await backup('volume-nomount');
    expect(job.state).toBe('failed');
    expect(job.error?.code).toBe('LABEL_INVALID');
    expect(job.error?.message).toMatch(/container volume-nomount label backer\.volume\.paths: \/opt\/app is not on a volume or bind mount \(mounts: .*\/data/);
    expect(await startedAt('volume-nomount')).toBe(before);
    expect(await helpers('volume-nomount')).toBe('');
  });

  it('stop=true: a job cancelled mid-copy starts the container again and leaves no helper and no backup', async () => {
    const filesBefore = await localFiles('volume-stop');
    const s3Before = await daemon.services.targets.get('s3')?.list('volume-stop/');
    await new Promise((r) => setTimeout(r, 1100)); // backup names carry the second
    await daemon.services.discovery.refresh();
    const job = daemon.queue.enqueue('volume-stop', 'api');
    await waitFor(async () => (await copying('volume-stop')) && !(await running('volume-stop')), 'the copy to stream');
    expect(await helpers('volume-stop')).not.toBe('');
    daemon.queue.cancel(job.id);
    const ended = await daemon.queue.wait(job.id);
    expect(ended.state).toBe('cancelled');
    expect(await running('volume-stop')).toBe(true);
    expect(await helpers('volume-stop')).toBe('');
    expect(await localFiles('volume-stop')).toEqual(filesBefore);
    expect(await daemon.services.targets.get('s3')?.list('volume-stop/')).toEqual(s3Before);
  });

  it('completes the backup when the container is removed mid-dump: the helper holds the volumes', async () => {
    // Removing the container does not remove its named volume, and the helper has it mounted: the
    // copy is not cut short, so the correct outcome is a complete backup of the data as it was.
    const expected = await containerHashes(MID_DUMP, ['data', 'srv']);
    await daemon.services.discovery.refresh();
    const queued = daemon.queue.enqueue(MID_DUMP, 'api');
    await waitFor(async () => (await helpers(MID_DUMP)) !== '' && (await copying(MID_DUMP)), 'the copy to stream');
    await docker(host(), ['rm', '-f', MID_DUMP]);
    expect(daemon.queue.get(queued.id)?.state).toBe('running'); // removed mid-copy, not after it
    const job = backupJob(await daemon.queue.wait(queued.id));
    expect(job.error).toBeNull();
    expect(job.state).toBe('succeeded');
    expect(job.result?.targets.map((t) => [t.target, t.status])).toEqual([['local', 'succeeded'], ['s3', 'succeeded']]);
    expect(await helpers(MID_DUMP)).toBe('');
    expect(await dockerOut(['ps', '-aq', '--filter', 'label=backer.helper=true', '--filter', `label=backer.helper.mandate=${MID_DUMP}`])).toBe('');

    const { data, manifest } = await s3Artifact(job);
    expect(manifest.source).toMatchObject({ type: 'volume', container: MID_DUMP, volumes: [MID_DUMP_VOLUME], stopped: false });
    expect(digest(data)).toEqual({ size: manifest.artifact.size, md5: manifest.artifact.md5, sha256: manifest.artifact.sha256 });
    const local = await readFile(join(env.dir, 'backups', job.result?.targets[0]?.artifact_key ?? ''));
    expect(digest(local).sha256).toBe(manifest.artifact.sha256);
    const listed = (await daemon.services.targets.get('local')?.list(`${MID_DUMP}/`))?.map((o) => o.key);
    expect(listed).toEqual([job.result?.targets[0]?.artifact_key, job.result?.targets[0]?.manifest_key].sort());
    const tar = await runProgram('gzip', ['-d'], data);
    expect(digest(tar).sha256).toBe(manifest.steps[0]?.sha256);
    const { hashes, dir } = await archiveHashes(tar);
    expect(Object.keys(hashes)).toContain('data/big.bin');
    expect(hashes).toEqual(expected);
    await rm(dir, { recursive: true, force: true });
  });

  it('stop=true: a daemon shutdown mid-copy starts the container again and queues the backup for the next start', async () => {
    await new Promise((r) => setTimeout(r, 1100));
    await daemon.services.discovery.refresh();
    const job = daemon.queue.enqueue('volume-stop', 'api');
    await waitFor(async () => (await copying('volume-stop')) && !(await running('volume-stop')), 'the copy to stream');
    await daemon.close();
    // Stopped, not cancelled: the backup is queued again for the next start (state.db keeps it).
    const stored = storedJob(daemon.services.config.data_dir, job.id);
    expect(stored.job).toMatchObject({ state: 'queued', attempts: 1 });
    expect(stored.events.map((e) => e.type)).toEqual(['queued', 'started', 'note', 'interrupted']);
    expect(await running('volume-stop')).toBe(true);
    expect(await helpers('volume-stop')).toBe('');
    expect(env.logs.join('').match(/container started again after the volume copy/g)?.length).toBeGreaterThanOrEqual(4);
  });
});
