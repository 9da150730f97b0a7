import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { DumpContext, RestoreDestination } from '../../src/sources/types.js';
import { volumeSource, type VolumeOptions } from '../../src/sources/volume.js';
import { callApi } from '../../src/cli/client.js';
import { spawnDaemon, waitForHealth } from '../helpers/daemon-proc.js';
import { createTestEnv } from '../helpers/env.js';
import { backerCli, VOLUME_HELPER_YAML, volumeMandateYaml } from '../helpers/volume-config.js';
import { docker, HOST_IMAGE } from '../setup/services.js';
import { dumpAll, failingInput, original, restoreRequest, restoreSuite, sourceContext } from './suite.js';

const host = (): string => inject('dockerHost');
const id = randomBytes(3).toString('hex');
const APP = `vrest-app-${id}`;
/** One volume only: its archive restores into a fresh named volume as the volume's root. */
const SINGLE = `vrest-single-${id}`;
/** Like a scratch container: the same paths on fresh volumes, /srv a read-only bind of the original's. */
const SCRATCH = `vrest-scratch-${id}`;
/** No /srv mount at all. */
const PARTIAL = `vrest-partial-${id}`;
/** Fresh volumes for every path: a drill's destination. */
const DRILL = `vrest-drill-${id}`;
/** Backed up and restored through a real `backer daemon` process. */
const SERVED = `vrest-served-${id}`;
const MANDATE = `vrest-m-${id}`;
const CONTAINERS = [APP, SINGLE, SCRATCH, PARTIAL, DRILL, SERVED];
const VOLUMES = [`vrest-data-${id}`, `vrest-nested-${id}`, `vrest-single-data-${id}`, `vrest-new-${id}`, `vrest-scr-${id}`, `vrest-part-${id}`, `vrest-drill-data-${id}`, `vrest-drill-nested-${id}`, `vrest-drill-srv-${id}`, `vrest-served-${id}`, `vrest-served-new-${id}`];
const [DATA_V, NESTED_V, SINGLE_V, NEW_V, SCR_V, PART_V, DRILL_DATA_V, DRILL_NESTED_V, DRILL_SRV_V, SERVED_V, SERVED_NEW_V] = VOLUMES as [string, string, string, string, string, string, string, string, string, string, string];
// PID 1 handles SIGTERM, so `docker stop` takes a moment, not the 10 s kill timeout.
const IDLE = 'trap "exit 0" TERM; while :; do sleep 1 & wait $!; done';
const OPTIONS: VolumeOptions = { paths: null, stop: false };

let srvDir: string;
let stoppedDir: string;

function context(mandate: string, signal?: AbortSignal): DumpContext {
  return { ...sourceContext(mandate, signal), settings: { volumeHelperImage: HOST_IMAGE, volumeHelperBinds: ['/usr:/usr:ro'], stoppedContainersDir: stoppedDir } };
}

async function startContainer(name: string, mounts: string[]): Promise<void> {
  const args = ['run', '-d', '--name', name, '--network', 'none', '-v', '/usr:/usr:ro', '-v', '/etc:/etc:ro'];
  for (const m of mounts) args.push('-v', m);
  await docker(host(), [...args, HOST_IMAGE, 'bash', '-c', IDLE]);
}

const sh = (container: string, script: string): Promise<string> => docker(host(), ['exec', container, 'bash', '-c', script]);

/** Every entry (type, mode, owner, link target) and the sha256 of every regular file below `dirs` (relative to /). */
async function fingerprint(container: string, dirs = 'data srv'): Promise<string> {
  return sh(container, `cd / && find ${dirs} -printf '%p %y %m %U:%G %l\\n' | LC_ALL=C sort && find ${dirs} -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum`);
}

/** The stats as the brief defines them, computed with find and sha256sum in the container. */
async function expectedStats(container: string, dirs: string): Promise<{ files: number; bytes: number; tree_sha256: string }> {
  const out = await sh(container, `cd / && find ${dirs} -type f -printf '%s ' -exec sha256sum {} \\;`);
  const lines = out.split('\n').filter(Boolean).map((l) => {
    const [size, hash, ...path] = l.split(' ');
    return { path: path.join(' ').replace(/^ /, ''), size: Number(size), hash: hash ?? '' };
  });
  lines.sort((a, b) => Buffer.compare(Buffer.from(a.path), Buffer.from(b.path)));
  const tree = createHash('sha256');
  for (const l of lines) tree.update(`${l.path}\0${l.size}\0${l.hash}\n`);
  return { files: lines.length, bytes: lines.reduce((n, l) => n + l.size, 0), tree_sha256: tree.digest('hex') };
}

async function inspectField(name: string, format: string): Promise<string> {
  return (await docker(host(), ['inspect', '-f', format, name])).trim();
}

async function leftHelpers(container: string): Promise<string> {
  return (await docker(host(), ['ps', '-aq', '--filter', 'label=backer.helper=true', '--filter', `label=backer.helper.container=${container}`])).trim();
}

/** Empties APP's mounts (its mount point /data/nested stays) and writes the test data: owners, modes, links, a nested volume. */
async function seed(): Promise<void> {
  await sh(APP, [
    'find /data /srv -mindepth 1 -depth ! -path /data/nested -delete',
    'mkdir -p /data/sub/deep /data/db /srv/site',
    'head -c 3000000 /dev/urandom > /data/db/blob.bin',
    'echo secret > /data/db/private && chown 1234:1234 /data/db/private && chmod 600 /data/db/private',
    'printf "a b c" > "/data/sub/with space.txt"',
    ': > /data/sub/deep/empty',
    'ln -s ../db/blob.bin /data/sub/link',
    'ln /data/db/private /data/db/hardlink',
    'echo nested > /data/nested/n.txt',
    'echo "<h1>hi</h1>" > /srv/site/index.html',
    'echo one > /srv/one.txt',
  ].join(' && '));
}

beforeAll(async () => {
  srvDir = await mkdtemp(join(tmpdir(), 'bk-vrest-srv-'));
  stoppedDir = await mkdtemp(join(tmpdir(), 'bk-vrest-stopped-'));
  await startContainer(APP, [`${DATA_V}:/data`, `${NESTED_V}:/data/nested`, `${srvDir}:/srv`]);
  await startContainer(SINGLE, [`${SINGLE_V}:/app`]);
  await startContainer(SCRATCH, [`${SCR_V}:/data`, `${srvDir}:/srv:ro`]);
  await startContainer(PARTIAL, [`${PART_V}:/data`]);
  await startContainer(SERVED, [`${SERVED_V}:/data`]);
  await startContainer(DRILL, [`${DRILL_DATA_V}:/data`, `${DRILL_NESTED_V}:/data/nested`, `${DRILL_SRV_V}:/srv`]);
  await seed();
  await sh(SINGLE, 'mkdir -p /app/conf && echo a=1 > /app/conf/app.ini && head -c 200000 /dev/urandom > /app/state.bin && chown -R 4321:4321 /app/conf');
}, 120_000);

afterAll(async () => {
  for (const name of CONTAINERS) await docker(host(), ['rm', '-f', name]).catch(() => undefined);
  await docker(host(), ['volume', 'rm', '-f', ...VOLUMES]).catch(() => undefined);
  await rm(srvDir, { recursive: true, force: true });
  await rm(stoppedDir, { recursive: true, force: true });
});

describe('volume restore into the original container (shared suite)', () => {
  restoreSuite('volume', () => ({
    source: volumeSource,
    options: OPTIONS,
    container: APP,
    context,
    // Files added, changed and deleted, a directory removed, in every mount (the nested one too).
    change: async () => {
      await sh(APP, [
        'echo new > /data/new.txt',
        'echo changed >> /data/db/blob.bin',
        'rm -rf /data/sub/deep /srv/one.txt',
        'chmod 644 /data/db/private',
        'echo more > /data/nested/more.txt',
        'echo added > /srv/site/added.html',
      ].join(' && '));
    },
    fingerprint: () => fingerprint(APP),
  }));
});

describe('volume restore: stats, plan, failures, new volume, drill check', () => {
  it('the dump records files, bytes and tree_sha256 of every regular file', async () => {
    await seed();
    const { info } = await dumpAll(volumeSource, OPTIONS, APP, 'vrest', context);
    expect([...(info.paths as string[])].sort()).toEqual(['/data', '/srv']);
    expect(info.stats).toEqual(await expectedStats(APP, 'data srv'));
  });

  it('plans the stop and the paths, and refuses what cannot work before touching anything', async () => {
    const { info } = await dumpAll(volumeSource, OPTIONS, APP, 'vrest', context);
    const plan = await volumeSource.planRestore?.(OPTIONS, restoreRequest(APP, original(APP), info), context('vrest'));
    expect(plan?.stops).toEqual([APP]);
    expect(plan?.steps.join('\n')).toMatch(new RegExp(`stop container ${APP}[^\\n]*started again[\\s\\S]*empty (/data, /srv|/srv, /data) of container ${APP}`));
    const refuse = async (destination: RestoreDestination, message: string | RegExp, code = 'RESTORE_REFUSED', ctx = context('vrest')): Promise<void> => {
      const planned = volumeSource.planRestore?.(OPTIONS, restoreRequest(APP, destination, info), ctx);
      await expect(planned).rejects.toMatchObject({ code, message: expect.stringMatching(message) as string });
    };
    await refuse({ kind: 'container', container: PARTIAL, original: false, scratch: false }, new RegExp(`path /srv of the backup is not on a volume or bind mount of container ${PARTIAL}`));
    await refuse({ kind: 'container', container: SCRATCH, original: false, scratch: true }, /path \/srv of the backup is on the read-only mount \/srv/);
    await refuse({ kind: 'container', container: `${APP}-absent`, original: false, scratch: false }, new RegExp(`container ${APP}-absent does not exist`));
    await refuse({ kind: 'file', path: '/tmp/x' }, /not into a file path/);
    await refuse(original(APP), /helper image no-such-helper:1 .* not on the Docker engine/, 'TOOL_MISSING', {
      ...context('vrest'),
      settings: { volumeHelperImage: 'no-such-helper:1', volumeHelperBinds: [], stoppedContainersDir: stoppedDir },
    });
    // Nothing was touched: every container still runs, the scratch's volume is still empty.
    for (const name of [APP, PARTIAL, SCRATCH]) expect(await inspectField(name, '{{.State.Running}}')).toBe('true');
    expect(await sh(SCRATCH, 'ls -A /data')).toBe('');
  });

  it('an input that breaks off half-way fails with RESTORE_FAILED and the container runs again, with no helper and no stop record left', async () => {
    const { bytes, info } = await dumpAll(volumeSource, OPTIONS, APP, 'vrest', context);
    const started = await inspectField(APP, '{{.State.StartedAt}}');
    const restore = volumeSource.restore?.(OPTIONS, restoreRequest(APP, original(APP), info), failingInput(bytes, Math.floor(bytes.length / 2)), context('vrest'));
    await expect(restore).rejects.toMatchObject({ code: 'RESTORE_FAILED', message: expect.stringContaining(`container ${APP}`) as string });
    expect(await inspectField(APP, '{{.State.Running}}')).toBe('true');
    // It was stopped for the restore and started again.
    expect(await inspectField(APP, '{{.State.StartedAt}}')).not.toBe(started);
    expect(await leftHelpers(APP)).toBe('');
    expect(await readdir(stoppedDir)).toEqual([]);
  });

  it('a restore cancelled mid-way starts the container again', async () => {
    const { bytes, info } = await dumpAll(volumeSource, OPTIONS, APP, 'vrest', context);
    const abort = new AbortController();
    let sent = false;
    // Half the archive, then nothing: the restore waits for more until it is cancelled.
    const stalled = new Readable({
      read() {
        if (sent) return;
        sent = true;
        this.push(bytes.subarray(0, Math.floor(bytes.length / 2)));
        setTimeout(() => abort.abort(new Error('cancelled by the test')), 1500);
      },
    });
    const restore = volumeSource.restore?.(OPTIONS, restoreRequest(APP, original(APP), info), stalled, context('vrest', abort.signal));
    await expect(restore).rejects.toThrow();
    expect(await inspectField(APP, '{{.State.Running}}')).toBe('true');
    expect(await leftHelpers(APP)).toBe('');
    expect(await readdir(stoppedDir)).toEqual([]);
  });

  it('restores into a fresh named volume, labelled with the mandate (removed again when the restore fails), and refuses it once it is not empty', async () => {
    const before = await fingerprint(SINGLE, 'app');
    const { bytes, info } = await dumpAll(volumeSource, OPTIONS, SINGLE, 'vrest-single', context);
    const request = restoreRequest(SINGLE, { kind: 'volume', volume: NEW_V }, info);
    const plan = await volumeSource.planRestore?.(OPTIONS, request, context('vrest-single'));
    expect(plan?.steps.join('\n')).toContain(`create volume ${NEW_V} (label backer.restore=vrest-single)`);
    expect(plan?.stops).toEqual([]);
    // A broken input fails the restore and removes the volume it created.
    const broken = volumeSource.restore?.(OPTIONS, request, failingInput(bytes, Math.floor(bytes.length / 2)), context('vrest-single'));
    await expect(broken).rejects.toMatchObject({ code: 'RESTORE_FAILED', message: expect.stringContaining(`volume ${NEW_V}`) as string });
    await expect(docker(host(), ['volume', 'inspect', NEW_V])).rejects.toThrow(/no such volume/i);
    await volumeSource.restore?.(OPTIONS, request, Readable.from([bytes]), context('vrest-single'));
    expect(await docker(host(), ['volume', 'inspect', '-f', '{{index .Labels "backer.restore"}}', NEW_V])).toBe('vrest-single');
    // Mounted where the original volume was, it holds exactly the backed-up files.
    const copy = await docker(host(), ['run', '--rm', '--network', 'none', '-v', '/usr:/usr:ro', '-v', '/etc:/etc:ro', '-v', `${NEW_V}:/app`, HOST_IMAGE, 'bash', '-c',
      "cd / && find app -printf '%p %y %m %U:%G %l\\n' | LC_ALL=C sort && find app -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum"]);
    expect(copy).toBe(before);
    const checks = await volumeSource.check?.(OPTIONS, request, context('vrest-single'));
    expect(checks?.every((c) => c.ok)).toBe(true);
    await expect(volumeSource.planRestore?.(OPTIONS, request, context('vrest-single'))).rejects.toMatchObject({
      code: 'RESTORE_REFUSED',
      message: expect.stringContaining(`volume ${NEW_V} exists and is not empty`) as string,
    });
  });

  it('a drill check passes on a faithful restore and names the difference otherwise', async () => {
    await seed();
    const { bytes, info } = await dumpAll(volumeSource, OPTIONS, APP, 'vrest', context);
    const request = restoreRequest(APP, { kind: 'container', container: DRILL, original: false, scratch: true }, info);
    await volumeSource.planRestore?.(OPTIONS, request, context('vrest'));
    await volumeSource.restore?.(OPTIONS, request, Readable.from([bytes]), context('vrest'));
    expect(await fingerprint(DRILL)).toBe(await fingerprint(APP));
    const passed = await volumeSource.check?.(OPTIONS, request, context('vrest'));
    expect(passed?.map((c) => c.ok)).toEqual([true, true, true]);

    await sh(DRILL, 'echo tampered >> "/data/sub/with space.txt"');
    const changed = await volumeSource.check?.(OPTIONS, request, context('vrest'));
    expect(changed?.find((c) => c.check.startsWith('regular files'))).toMatchObject({ ok: true });
    expect(changed?.find((c) => c.check.startsWith('bytes'))).toMatchObject({ ok: false, expected: (info.stats as { bytes: number }).bytes });
    expect(changed?.find((c) => c.check.startsWith('tree_sha256'))).toMatchObject({ ok: false, expected: (info.stats as { tree_sha256: string }).tree_sha256 });

    await sh(DRILL, 'rm /data/nested/n.txt');
    const missing = await volumeSource.check?.(OPTIONS, request, context('vrest'));
    const files = (info.stats as { files: number }).files;
    expect(missing?.find((c) => c.check.startsWith('regular files'))).toMatchObject({ ok: false, expected: files, actual: files - 1 });
    expect(await inspectField(DRILL, '{{.State.Running}}')).toBe('true');
  });
});

describe('volume restores through a real daemon process', () => {
  const yaml = `${VOLUME_HELPER_YAML}mandates:\n${volumeMandateYaml(MANDATE, SERVED)}`;

  it('backs up, restores into the original and into a new volume, drills, and refuses a container without the paths', async () => {
    const env = await createTestEnv(`vr${id}`, yaml);
    const daemon = spawnDaemon(env.configPath);
    const socket = join(env.dir, 'data', 'backer.sock');
    const backer = backerCli(env.configPath);
    try {
      await waitForHealth(daemon, socket);
      await sh(SERVED, 'mkdir -p /data/a && head -c 500000 /dev/urandom > /data/a/blob && echo v1 > /data/conf && chown 77:77 /data/conf');
      const before = await fingerprint(SERVED, 'data');
      const backup = await backer(['backup', MANDATE, '--wait']);
      expect(backup.code, backup.out).toBe(0);
      await sh(SERVED, 'echo v2 > /data/conf && rm /data/a/blob && echo extra > /data/extra');

      const restored = await backer(['restore', MANDATE, 'latest', '--to', 'original', '--yes', '--wait']);
      expect(restored.code, restored.out).toBe(0);
      expect(await fingerprint(SERVED, 'data')).toBe(before);
      expect(await inspectField(SERVED, '{{.State.Running}}')).toBe('true');

      const fresh = await backer(['restore', MANDATE, 'latest', '--to', `new:${SERVED_NEW_V}`, '--wait']);
      expect(fresh.code, fresh.out).toBe(0);
      const copy = await docker(host(), ['run', '--rm', '--network', 'none', '-v', '/usr:/usr:ro', '-v', '/etc:/etc:ro', '-v', `${SERVED_NEW_V}:/data`, HOST_IMAGE, 'bash', '-c',
        "cd / && find data -printf '%p %y %m %U:%G %l\\n' | LC_ALL=C sort && find data -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum"]);
      expect(copy).toBe(before);

      const drill = await backer(['verify', MANDATE, 'latest', '--level', 'drill']);
      expect(drill.code, drill.out).toBe(0);
      expect(drill.out).toMatch(/^ok +\S+ on local \(drill, \d+ checks/m);

      const refused = await backer(['restore', MANDATE, 'latest', '--to', `container:${SINGLE}`, '--yes', '--wait']);
      expect(refused.code).not.toBe(0);
      expect(refused.out).toContain(`path /data of the backup is not on a volume or bind mount of container ${SINGLE}`);
      expect(await inspectField(SINGLE, '{{.State.Running}}')).toBe('true');
      expect((await callApi<{ status: string }>(socket, 'GET', '/v1/health')).status).toBe('ok');
    } finally {
      await daemon.stop();
      await rm(env.dir, { recursive: true, force: true });
    }
  });
});
