import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { BackerError } from '../../src/errors.js';
import { redisSource, type RedisOptions } from '../../src/sources/redis.js';
import { RdbKeyCounter } from '../../src/sources/redis-rdb-keys.js';
import type { DumpContext, RestoreDestination, SourceInfo } from '../../src/sources/types.js';
import { parseRef } from '../../src/config/refs.js';
import { change, cli, DB0_KEYS, DB5_KEYS, fingerprint, seed, seedTypes, startRedis, state } from '../helpers/redis.js';
import { docker, HOST_IMAGE } from '../setup/services.js';
import { callApi } from '../../src/cli/client.js';
import type { Manifest } from '../../src/manifests/schema.js';
import type { RestoreResult } from '../../src/pipeline/run-restore.js';
import type { AnyJob } from '../../src/queue/types.js';
import { digest } from '../helpers/artifacts.js';
import { cli as backer } from '../helpers/cli.js';
import { spawnDaemon, waitForHealth } from '../helpers/daemon-proc.js';
import { createTestEnv, testProcessEnv, type TestEnv } from '../helpers/env.js';
import { dumpAll, failingInput, original, restoreRequest, restoreSuite, sourceContext } from './suite.js';

const host = (): string => inject('dockerHost');
const ID = randomBytes(3).toString('hex');
const MAIN = `rr-main-${ID}`;
const SECOND = `rr-second-${ID}`;
const DRILL = `rr-drill-${ID}`;
const AOF = `rr-aof-${ID}`;
const ROOTFS = `rr-rootfs-${ID}`;
const FRESH = `rr-fresh-${ID}`;
const DAEMON = `rr-daemon-${ID}`;
const DAEMON_AOF = `rr-daemon-aof-${ID}`;
const CONTAINERS = [MAIN, SECOND, DRILL, AOF, ROOTFS, FRESH, DAEMON, DAEMON_AOF];
const VOLUMES = [MAIN, DRILL, AOF, DAEMON, DAEMON_AOF].map((n) => `${n}-data`);
const OPTIONS: RedisOptions = { password: parseRef('Env:REDIS_PASSWORD'), user: null, socket: null, port: parseRef('6379') };
let stoppedDir = '';
const LABELS = {
  'backer.enabled': 'true',
  'backer.type': 'redis',
  'backer.interval': '0 0 29 2 *',
  'backer.target': 'local',
  'backer.redis.password': 'Env:REDIS_PASSWORD',
};

/** The plugin's context with the settings the daemon passes: the host image (with /usr bound) as helper. */
function context(mandate: string, signal?: AbortSignal): DumpContext {
  return { ...sourceContext(mandate, signal), settings: { volumeHelperImage: HOST_IMAGE, volumeHelperBinds: ['/usr:/usr:ro'], stoppedContainersDir: stoppedDir } };
}

const container = (name: string, isOriginal = false): RestoreDestination => ({ kind: 'container', container: name, original: isOriginal, scratch: false });

/** Nothing left behind: no helper container, no stopped-container record, no temp file next to dump.rdb. */
async function expectClean(name: string): Promise<void> {
  expect(await docker(host(), ['ps', '-aq', '--filter', `label=backer.helper.container=${name}`])).toBe('');
  expect(await readdir(stoppedDir).catch(() => [])).toEqual([]);
  expect((await docker(host(), ['exec', name, 'ls', '-A', '/data'])).split('\n')).toEqual(['dump.rdb']);
}

beforeAll(async () => {
  stoppedDir = join(await mkdtemp(join(tmpdir(), 'bk-redis-restore-')), 'stopped-containers');
  await Promise.all(CONTAINERS.map((n) => docker(host(), ['rm', '-f', '-v', n]).catch(() => undefined)));
  await Promise.all(VOLUMES.map((v) => docker(host(), ['volume', 'rm', '-f', v]).catch(() => undefined)));
  await Promise.all([
    startRedis(MAIN, { volume: `${MAIN}-data` }),
    // Another user than root, on a bind mount: the restored dump.rdb must get the server's owner.
    startRedis(SECOND, { uid: 1234 }),
    // No save points: no dump.rdb before the restore; the new one gets the redis process's owner.
    startRedis(FRESH, { uid: 1235, conf: 'save ""' }),
    startRedis(DRILL, { volume: `${DRILL}-data` }),
    startRedis(AOF, { volume: `${AOF}-data`, conf: 'appendonly yes' }),
    startRedis(ROOTFS),
    startRedis(DAEMON, { volume: `${DAEMON}-data`, labels: LABELS }),
    startRedis(DAEMON_AOF, { volume: `${DAEMON_AOF}-data`, conf: 'appendonly yes', labels: LABELS }),
  ]);
  await Promise.all([seed(MAIN), seed(AOF), seed(ROOTFS), seed(DAEMON), seed(DAEMON_AOF)]);
  await seedTypes(MAIN);
  await cli(MAIN, ['SAVE']);
});

afterAll(async () => {
  for (const name of CONTAINERS) await docker(host(), ['rm', '-f', '-v', name]).catch(() => undefined);
  for (const volume of VOLUMES) await docker(host(), ['volume', 'rm', '-f', volume]).catch(() => undefined);
});

describe('redis restore (shared suite)', () => {
  restoreSuite('redis', () => ({
    source: redisSource,
    options: OPTIONS,
    container: MAIN,
    change: () => change(MAIN),
    fingerprint: () => fingerprint(MAIN),
    context: (mandate) => context(mandate),
  }));
});

describe('redis restore specifics', () => {
  let full: { bytes: Buffer; info: SourceInfo };

  beforeAll(async () => {
    full = await dumpAll(redisSource, OPTIONS, MAIN, 'redis-restore', context);
  });

  it('records the key counts per database, counted in the RDB, and the RDB format in the manifest', () => {
    const stats = { keys: { db0: DB0_KEYS, db3: 2, db5: DB5_KEYS }, keys_with_ttl: { db0: 1, db3: 0, db5: 1 } };
    expect(full.info.stats).toEqual({ ...stats, counted_from: 'rdb' });
    // The same counts whatever the chunks: byte by byte here.
    const counter = new RdbKeyCounter();
    for (let i = 0; i < full.bytes.length; i++) counter.push(full.bytes.subarray(i, i + 1));
    expect(counter.counts()).toEqual(stats);
    // A format the counter does not know: no counts (the dump then takes INFO keyspace's), with the reason.
    const unknown = new RdbKeyCounter();
    unknown.push(Buffer.concat([Buffer.from('REDIS0012'), Buffer.from([0xfe, 0x00, 25, 0x01, 0x6b])]));
    expect([unknown.counts(), unknown.why()]).toEqual([null, 'unsupported RDB content: value type 25']);
    expect(full.info.rdb_version).toBe(Number(full.bytes.subarray(5, 9).toString()));
    expect(redisSource.tools).toEqual(['redis-cli']);
  });

  it('the plan names the stop, the file on its volume and the start, and touches nothing', async () => {
    const before = await state(MAIN);
    const plan = await redisSource.planRestore?.(OPTIONS, restoreRequest(MAIN, original(MAIN), full.info), context('plan'));
    expect(plan?.stops).toEqual([MAIN]);
    expect(plan?.steps.join('\n')).toMatch(new RegExp(`stop container ${MAIN}[^]*/data/dump\\.rdb \\(on volume ${MAIN}-data\\)[^]*start container ${MAIN}`));
    expect(await state(MAIN)).toEqual(before);
  });

  it('restores into a second container with the owner of its data; the original is untouched', async () => {
    const source = await fingerprint(MAIN);
    const request = restoreRequest(MAIN, container(SECOND), full.info);
    await redisSource.planRestore?.(OPTIONS, request, context('second'));
    await redisSource.restore?.(OPTIONS, request, Readable.from([full.bytes]), context('second'));
    expect(await fingerprint(SECOND)).toBe(source);
    expect(await fingerprint(MAIN)).toBe(source);
    expect(await docker(host(), ['exec', SECOND, 'stat', '-c', '%u:%g', '/data/dump.rdb'])).toBe('1234:1234');
    expect((await state(SECOND)).running).toBe(true);
    await expectClean(SECOND);
  });

  it('a new dump.rdb (none before) gets the owner of the redis process, mode 0600', async () => {
    const request = restoreRequest(MAIN, container(FRESH), full.info);
    await redisSource.restore?.(OPTIONS, request, Readable.from([full.bytes]), context('fresh'));
    expect(await fingerprint(FRESH)).toBe(await fingerprint(MAIN));
    expect(await docker(host(), ['exec', FRESH, 'stat', '-c', '%u:%g %a', '/data/dump.rdb'])).toBe('1235:1235 600');
    await expectClean(FRESH);
  });

  it('an input breaking off half-way fails with RESTORE_FAILED; the old data stays and redis runs', async () => {
    await change(SECOND);
    const before = await fingerprint(SECOND);
    const request = restoreRequest(MAIN, container(SECOND), full.info);
    const failed = await redisSource.restore?.(OPTIONS, request, failingInput(full.bytes, Math.floor(full.bytes.length / 2)), context('half')).catch((e: unknown) => e);
    expect(failed).toBeInstanceOf(BackerError);
    expect(failed).toMatchObject({ code: 'RESTORE_FAILED', message: expect.stringMatching(/input broke off half-way[^]*dump\.rdb was not replaced/) as string });
    expect((await state(SECOND)).running).toBe(true);
    expect(await fingerprint(SECOND)).toBe(before);
    await expectClean(SECOND);
  });

  it('a cancel while the RDB streams in: JOB_CANCELLED, the old data stays and redis runs', async () => {
    const before = await fingerprint(SECOND);
    const abort = new AbortController();
    let sent = false;
    const stalled = new Readable({
      read() {
        if (sent) return; // never ends: the cancel must end the restore
        sent = true;
        this.push(full.bytes.subarray(0, 1000));
        setTimeout(() => abort.abort(new Error('cancelled by the test')), 500);
      },
    });
    const request = restoreRequest(MAIN, container(SECOND), full.info);
    await expect(redisSource.restore?.(OPTIONS, request, stalled, context('cancel', abort.signal))).rejects.toMatchObject({ code: 'JOB_CANCELLED' });
    expect((await state(SECOND)).running).toBe(true);
    expect(await fingerprint(SECOND)).toBe(before);
    await expectClean(SECOND);
  });

  it('refuses a destination with AOF on, telling to disable it, before anything is touched', async () => {
    const before = await state(AOF);
    const request = restoreRequest(MAIN, container(AOF), full.info);
    const message = /has AOF on \(appendonly yes\)[^]*Set appendonly no/;
    await expect(redisSource.planRestore?.(OPTIONS, request, context('aof'))).rejects.toMatchObject({ code: 'RESTORE_REFUSED', message: expect.stringMatching(message) as string });
    await expect(redisSource.restore?.(OPTIONS, request, Readable.from([full.bytes]), context('aof'))).rejects.toMatchObject({ code: 'RESTORE_REFUSED' });
    expect(await state(AOF)).toEqual(before);
  });

  it('refuses a server whose dir is not on a volume, and a backup from a newer major version', async () => {
    const rootfs = restoreRequest(MAIN, container(ROOTFS), full.info);
    await expect(redisSource.planRestore?.(OPTIONS, rootfs, context('rootfs'))).rejects.toMatchObject({
      code: 'RESTORE_REFUSED',
      message: expect.stringMatching(new RegExp(`container ${ROOTFS} keeps its RDB in /data, which is not on a volume or bind mount`)) as string,
    });
    const newer = restoreRequest(MAIN, container(SECOND), { ...full.info, server_version: '99.0.1' });
    await expect(redisSource.planRestore?.(OPTIONS, newer, context('newer'))).rejects.toMatchObject({
      code: 'RESTORE_REFUSED',
      message: expect.stringMatching(/backup comes from redis 99\.0\.1 and container .* runs redis \d+/) as string,
    });
  });

  it('refuses a stopped destination and one without redis-cli', async () => {
    await expect(redisSource.planRestore?.(OPTIONS, restoreRequest(MAIN, container(`${ROOTFS}-absent`), full.info), context('absent'))).rejects.toMatchObject({ code: 'CONTAINER_NOT_FOUND' });
    await docker(host(), ['stop', '-t', '1', ROOTFS]);
    await expect(redisSource.planRestore?.(OPTIONS, restoreRequest(MAIN, container(ROOTFS), full.info), context('stopped'))).rejects.toMatchObject({ code: 'CONTAINER_NOT_RUNNING' });
  });
});

describe('redis drill check', () => {
  let full: { bytes: Buffer; info: SourceInfo };
  const drill = (): ReturnType<typeof restoreRequest> => restoreRequest(MAIN, { kind: 'container', container: DRILL, original: false, scratch: true }, full.info);

  beforeAll(async () => {
    full = await dumpAll(redisSource, OPTIONS, MAIN, 'redis-drill', context);
    await redisSource.restore?.(OPTIONS, drill(), Readable.from([full.bytes]), context('drill'));
  });

  it('passes with DBSIZE per database equal to the manifest', async () => {
    const checks = await redisSource.check?.(OPTIONS, drill(), context('drill'));
    expect(checks).toEqual([
      { check: 'db0 keys (1 with a TTL, which may have expired)', ok: true, expected: DB0_KEYS, actual: DB0_KEYS },
      { check: 'db3 keys', ok: true, expected: 2, actual: 2 },
      { check: 'db5 keys (1 with a TTL, which may have expired)', ok: true, expected: DB5_KEYS, actual: DB5_KEYS },
    ]);
  });

  it('a hand-truncated RDB is refused before it replaces dump.rdb', async () => {
    const before = await fingerprint(DRILL);
    // Cut so that the new tail does not start with 0xFF by chance (the values are random bytes): the
    // check reads the EOF opcode, redis itself the checksum (that case is the next test's).
    let drop = 100;
    while (full.bytes[full.bytes.length - drop - 9] === 0xff) drop++;
    const cut = full.bytes.subarray(0, full.bytes.length - drop);
    await expect(redisSource.restore?.(OPTIONS, drill(), Readable.from([cut]), context('drill'))).rejects.toMatchObject({
      code: 'RESTORE_FAILED',
      message: expect.stringMatching(/does not end with the RDB EOF opcode[^]*not replaced/) as string,
    });
    expect(await fingerprint(DRILL)).toBe(before);
    await expectClean(DRILL);
  });

  it('an edited RDB that redis refuses to load: the previous dump.rdb is put back and redis runs with it', async () => {
    const before = await fingerprint(DRILL);
    const edited = Buffer.from(full.bytes);
    const at = edited.indexOf('value-250-');
    edited[at] = 'V'.charCodeAt(0);
    const failed = await redisSource.restore?.(OPTIONS, drill(), Readable.from([edited]), context('drill')).catch((e: unknown) => e);
    expect(failed).toMatchObject({ code: 'RESTORE_FAILED', message: expect.stringMatching(new RegExp(`redis in container ${DRILL} exited[^]*checksum[^]*previous dump\\.rdb was put back and redis runs again`, 'i')) as string });
    expect((await state(DRILL)).running).toBe(true);
    expect(await fingerprint(DRILL)).toBe(before);
    await expectClean(DRILL);
  });

  it('fails naming the database when the RDB holds fewer keys than the manifest', async () => {
    // An RDB with one key fewer in db3, restored under the manifest of the full backup.
    await cli(DRILL, ['-n', '3', 'DEL', 'other:db']);
    const fewer = await dumpAll(redisSource, OPTIONS, DRILL, 'redis-drill', context);
    await redisSource.restore?.(OPTIONS, drill(), Readable.from([fewer.bytes]), context('drill'));
    const checks = await redisSource.check?.(OPTIONS, drill(), context('drill'));
    expect(checks?.filter((c) => !c.ok)).toEqual([{ check: 'db3 keys', ok: false, expected: 2, actual: 1 }]);
    await cli(DRILL, ['-n', '3', 'SET', 'extra', '1']);
    await cli(DRILL, ['-n', '7', 'SET', 'stray', '1']);
    const more = await redisSource.check?.(OPTIONS, drill(), context('drill'));
    expect(more?.filter((c) => !c.ok)).toEqual([{ check: 'db7 keys', ok: false, expected: 0, actual: 1 }]);
  });
});

/** Replaces a stored (raw, local) artifact with `bytes` and re-manifests its hashes; the stats stay the backup's. */
async function replaceArtifact(env: TestEnv, manifest: Manifest, bytes: Buffer): Promise<void> {
  const path = join(env.dir, 'backups', manifest.artifact.key);
  await writeFile(path, bytes);
  const d = digest(bytes);
  const steps = manifest.steps.map((s, i) => (i === 0 ? { ...s, ...d } : s));
  await writeFile(path.replace(/\.rdb$/, '.manifest.json'), JSON.stringify({ ...manifest, artifact: { ...manifest.artifact, ...d }, steps }, null, 2));
}

describe('redis restores and drills through a real daemon process', () => {
  it('restores the original, passes a drill, fails drills naming why, refuses AOF, rolls back an RDB redis refuses', async () => {
    const env = await createTestEnv('rrd', 'volume:\n  helper_image: hostuser:latest\n  helper_binds: [/usr:/usr:ro]\n');
    const socket = join(env.dir, 'data', 'backer.sock');
    const daemon = spawnDaemon(env.configPath);
    const json = async <T>(args: string[]): Promise<{ code: number; body: T; text: string }> => {
      const r = await backer([...args, '--config', env.configPath, '--json'], testProcessEnv());
      return { code: r.code, body: JSON.parse(r.stdout || 'null') as T, text: r.stdout + r.stderr };
    };
    const backup = async (mandate: string): Promise<Manifest> => {
      const { code, body } = await json<AnyJob>(['backup', mandate, '--wait']);
      expect(code, JSON.stringify(body)).toBe(0);
      const list = (await json<{ backups: Manifest[] }>(['backups', 'list', '--mandate', mandate])).body.backups;
      return list.find((m) => m.name === (body.result as { name?: string } | null)?.name) as Manifest;
    };
    const drill = async (name: string): Promise<{ code: number; message: string }> => {
      const { code, body } = await json<{ jobs: AnyJob[] }>(['verify', DAEMON, name, '--level', 'drill']);
      return { code, message: body.jobs[0]?.error?.message ?? '' };
    };
    try {
      await waitForHealth(daemon, socket, 60_000);
      const first = await backup(DAEMON);
      expect(first.source.stats).toEqual({ keys: { db0: DB0_KEYS, db3: 2 }, keys_with_ttl: { db0: 1, db3: 0 }, counted_from: 'rdb' });
      const before = await fingerprint(DAEMON);
      await change(DAEMON);
      const restored = await json<AnyJob>(['restore', DAEMON, first.name, '--yes', '--wait']);
      expect(restored.code, restored.text).toBe(0);
      expect((restored.body.result as RestoreResult).safety_backup).toMatch(/\S/);
      expect(await fingerprint(DAEMON)).toBe(before);
      expect(await drill(first.name)).toEqual({ code: 0, message: '' });

      // Re-manifested: an RDB with one key fewer in db3, then a cut one, under the first backup's stats.
      const raw = await readFile(join(env.dir, 'backups', first.artifact.key));
      await cli(DAEMON, ['-n', '3', 'DEL', 'other:db']);
      const fewer = await backup(DAEMON);
      await replaceArtifact(env, first, await readFile(join(env.dir, 'backups', fewer.artifact.key)));
      expect(await drill(first.name)).toEqual({ code: 1, message: expect.stringContaining('1 check(s) failed: db3 keys (expected 2, found 1)') as string });
      await replaceArtifact(env, first, raw.subarray(0, raw.length - 50));
      expect(await drill(first.name)).toMatchObject({ code: 1, message: expect.stringContaining('does not end with the RDB EOF opcode') as string });

      const aofBefore = await state(DAEMON_AOF);
      await backup(DAEMON_AOF);
      const refused = await json<AnyJob>(['restore', DAEMON_AOF, 'latest', '--yes', '--wait']);
      expect(refused.code, refused.text).toBe(5);
      expect(refused.text).toMatch(/has AOF on \(appendonly yes\)/);
      expect(await state(DAEMON_AOF)).toEqual(aofBefore);

      // Complete, but with a wrong checksum: redis refuses it at start, and the safety backup is restored.
      const broken = await backup(DAEMON);
      const edited = Buffer.from(raw);
      edited[edited.indexOf('value-250-')] = 'V'.charCodeAt(0);
      await replaceArtifact(env, broken, edited);
      await change(DAEMON);
      const changed = await fingerprint(DAEMON);
      const rolled = await json<AnyJob>(['restore', DAEMON, broken.name, '--yes', '--wait']);
      expect(rolled.code, rolled.text).toBe(1);
      expect(rolled.body.error?.message).toMatch(/Wrong RDB checksum[^]*rolled back from the safety backup/);
      expect(await fingerprint(DAEMON)).toBe(changed);
      expect((await state(DAEMON)).running).toBe(true);
      expect((await callApi<{ status: string }>(socket, 'GET', '/v1/health')).status).toBe('ok');
    } finally {
      await daemon.stop();
    }
  }, 300_000);
});
