import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { link, mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { callApi } from '../../src/cli/client.js';
import type { Manifest } from '../../src/manifests/schema.js';
import type { RestoreResult } from '../../src/pipeline/run-restore.js';
import type { VerifyResult } from '../../src/pipeline/run-verify.js';
import type { AnyJob, Job } from '../../src/queue/types.js';
import { filesSource, type FilesOptions } from '../../src/sources/files.js';
import type { RestoreDestination, SourceInfo } from '../../src/sources/types.js';
import { cli } from '../helpers/cli.js';
import { spawnDaemon, waitForHealth } from '../helpers/daemon-proc.js';
import { createTestEnv, filesMandateYaml, testProcessEnv } from '../helpers/env.js';
import { dumpAll, failingInput, restoreRequest, restoreSuite, sourceContext } from './suite.js';

const run = promisify(execFile);
let base: string;
let source: string;
const options = (): FilesOptions => ({ path: source, include: [], exclude: [] });
const to = (path: string): RestoreDestination => ({ kind: 'file', path });
const ctx = (): ReturnType<typeof sourceContext> => sourceContext('files-restore');

/** Every entry with type, mode, size, link target and content hash, from find and sha256sum (not Backer's code). */
async function fingerprint(dir: string): Promise<string> {
  const { stdout: entries } = await run('find', ['.', '-printf', '%P|%y|%m|%s|%l\n'], { cwd: dir });
  const { stdout: hashes } = await run('find', ['.', '-type', 'f', '-exec', 'sha256sum', '{}', '+'], { cwd: dir });
  const sorted = (text: string): string => text.split('\n').filter((l) => l !== '').sort().join('\n');
  return `${sorted(entries.split('\n').map((l) => (l.includes('|d|') ? l.replace(/\|\d+\|\|$/, '||') : l)).join('\n'))}\n${sorted(hashes)}`;
}

/** files/bytes/tree_sha256 as the issue defines them, computed here independently over raw bytes. */
async function expectedStats(dir: string, start = '.'): Promise<{ files: number; bytes: number; tree_sha256: string }> {
  const format = `${start === '.' ? '%P' : '%p'}\\0%s\\0\n`;
  const { stdout } = await run('find', [start, '-type', 'f', '-printf', format], { cwd: dir, encoding: 'buffer' });
  const lines: Buffer[] = [];
  let bytes = 0;
  for (const line of stdout.toString('latin1').split('\n').filter((l) => l !== '')) {
    const [path = '', size = '0'] = line.split('\0');
    const sha = createHash('sha256').update(await readFile(Buffer.concat([Buffer.from(`${dir}/`), Buffer.from(path, 'latin1')]))).digest('hex');
    bytes += Number(size);
    lines.push(Buffer.from(`${path}\0${size}\0${sha}\n`, 'latin1'));
  }
  lines.sort((a, b) => Buffer.compare(a, b));
  return { files: lines.length, bytes, tree_sha256: createHash('sha256').update(Buffer.concat(lines)).digest('hex') };
}

async function makeTree(dir: string): Promise<void> {
  await mkdir(join(dir, 'etc/conf.d'), { recursive: true });
  await mkdir(join(dir, 'empty-dir'));
  await writeFile(join(dir, 'etc/app.conf'), 'listen 8080\n');
  await writeFile(join(dir, 'etc/conf.d/a b ü.conf'), 'spaces and UTF-8\n');
  await writeFile(Buffer.concat([Buffer.from(`${dir}/latin1-`), Buffer.from([0xe9]), Buffer.from('.txt')]), 'not UTF-8\n');
  await writeFile(join(dir, 'empty'), '');
  await writeFile(join(dir, 'big.bin'), Buffer.alloc(3 * 1024 * 1024 + 17, 7));
  await link(join(dir, 'etc/app.conf'), join(dir, 'hard-link.conf'));
  await symlink('etc/app.conf', join(dir, 'current.conf'));
}

async function tarOf(cwd: string, args: string[]): Promise<Buffer> {
  const { stdout } = await run('tar', ['-cf', '-', ...args], { cwd, encoding: 'buffer', maxBuffer: 64 << 20 });
  return stdout;
}

/** Expects the restore of `bytes` into `dir` to be refused naming `member`, with nothing left behind. */
async function expectRefused(bytes: Buffer, dir: string, member: RegExp): Promise<void> {
  const request = restoreRequest(null, to(dir), { type: 'files', container: null, image: null, databases: [] });
  await expect(filesSource.restore?.(options(), request, Readable.from([bytes]), ctx())).rejects.toMatchObject({ code: 'RESTORE_REFUSED', message: expect.stringMatching(member) as string });
}

beforeAll(async () => {
  base = await mkdtemp(join(tmpdir(), 'bk-files-restore-'));
  source = join(base, 'source');
  await mkdir(source);
  await makeTree(source);
});

describe('files restore (plugin against the host directory)', () => {
  restoreSuite('files', () => ({
    source: filesSource,
    options: options(),
    container: null,
    destination: to(source),
    change: async () => {
      await writeFile(join(source, 'etc/app.conf'), 'listen 9090\n');
      await writeFile(join(source, 'added-later'), 'new');
      await rm(join(source, 'empty'));
    },
    fingerprint: () => fingerprint(source),
  }));

  it('records files, bytes and tree_sha256 of the regular files while the archive streams', async () => {
    const { info } = await dumpAll(filesSource, options(), null);
    expect(info.stats).toEqual(await expectedStats(source));
    expect(info.stats).toMatchObject({ files: 6 });
    const only = await dumpAll(filesSource, { ...options(), include: ['etc/'] }, null);
    expect(only.info.stats).toEqual(await expectedStats(source, 'etc'));
    expect(only.info.stats).toMatchObject({ files: 2 });
  });

  it('restores into a missing directory (created) and into an empty one; the drill checks pass, then fail on a change', async () => {
    const { bytes, info } = await dumpAll(filesSource, options(), null);
    const expected = await fingerprint(source);
    for (const dir of [join(base, 'new/nested/dir'), await mkdtemp(join(base, 'empty-'))]) {
      const request = restoreRequest(null, to(dir), info, { confirmed: false });
      const plan = await filesSource.planRestore?.(options(), request, ctx());
      expect(plan?.steps.join('\n')).toMatch(/staging/);
      await filesSource.restore?.(options(), request, Readable.from([bytes]), ctx());
      expect(await fingerprint(dir)).toBe(expected);
      const checks = (await filesSource.check?.(options(), request, ctx())) ?? [];
      expect(checks.map((c) => [c.check.split(' ')[0], c.ok])).toEqual([['files', true], ['bytes', true], ['tree_sha256', true]]);
      await writeFile(join(dir, 'etc/app.conf'), 'listen 8081\n');
      const after = (await filesSource.check?.(options(), request, ctx())) ?? [];
      expect(after.filter((c) => !c.ok).map((c) => c.check.split(' ')[0])).toEqual(['tree_sha256']);
      await rm(join(dir, 'big.bin'));
      const removed = (await filesSource.check?.(options(), request, ctx())) ?? [];
      expect(removed.filter((c) => !c.ok)).toEqual([
        { check: `files of ${dir}`, ok: false, expected: 6, actual: 5 },
        { check: `bytes of ${dir}`, ok: false, expected: (info.stats as { bytes: number }).bytes, actual: (info.stats as { bytes: number }).bytes - (3 * 1024 * 1024 + 17) },
        expect.objectContaining({ check: `tree_sha256 of ${dir}`, ok: false }) as unknown,
      ]);
    }
  });

  it('refuses a non-empty directory without confirmation, in the plan and in the restore, touching nothing', async () => {
    const { bytes, info } = await dumpAll(filesSource, options(), null);
    const dir = await mkdtemp(join(base, 'busy-'));
    await writeFile(join(dir, 'keep.txt'), 'mine');
    const request = restoreRequest(null, to(dir), info, { confirmed: false });
    const message = expect.stringMatching(/is not empty \(1 entries\).*--yes/) as string;
    await expect(filesSource.planRestore?.(options(), request, ctx())).rejects.toMatchObject({ code: 'RESTORE_REFUSED', message });
    await expect(filesSource.restore?.(options(), request, Readable.from([bytes]), ctx())).rejects.toMatchObject({ code: 'RESTORE_REFUSED', message });
    expect(await readdir(dir)).toEqual(['keep.txt']);
    const container = restoreRequest(null, { kind: 'container', container: 'x', original: true, scratch: false }, info);
    await expect(filesSource.planRestore?.(options(), container, ctx())).rejects.toMatchObject({ code: 'RESTORE_REFUSED', message: 'files backups restore into a host directory: --to file:PATH' });
  });

  it('refuses archives with ../ members, absolute members and symlinks pointing out, before anything is written', async () => {
    const evil = join(base, 'evil');
    await mkdir(join(evil, 'inside/deeper'), { recursive: true });
    await writeFile(join(evil, 'outside.txt'), 'escape');
    await writeFile(join(evil, 'inside/ok.txt'), 'fine');
    await symlink('../../../etc/passwd', join(evil, 'inside/deeper/passwd'));
    const dotdot = await tarOf(join(evil, 'inside'), ['-P', 'ok.txt', '../outside.txt']);
    const absolute = await tarOf(evil, ['-P', join(evil, 'outside.txt')]);
    const symlinked = await tarOf(join(evil, 'inside'), ['.']);
    const missing = join(base, 'never-created');
    await expectRefused(dotdot, missing, /member "\.\.\/outside\.txt" leaves the directory/);
    await expect(readdir(missing)).rejects.toMatchObject({ code: 'ENOENT' });
    const empty = await mkdtemp(join(base, 'target-'));
    await expectRefused(absolute, empty, /is an absolute path/);
    await expectRefused(symlinked, empty, /"\.\/deeper\/passwd" is a symbolic link pointing out of the directory/);
    expect(await readdir(empty)).toEqual([]);
    await expect(readFile(join(base, 'outside.txt'))).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('an archive cut off or broken half-way fails and leaves the directory as it was', async () => {
    const { bytes, info } = await dumpAll(filesSource, options(), null);
    const dir = await mkdtemp(join(base, 'keep-'));
    await writeFile(join(dir, 'old.txt'), 'old');
    const before = await fingerprint(dir);
    const request = restoreRequest(null, to(dir), info);
    // Cut at a block boundary after the first members: tar may take it, the missing end marker may not.
    const cut = bytes.subarray(0, 512 * 8);
    await expect(filesSource.restore?.(options(), request, Readable.from([cut]), ctx())).rejects.toMatchObject({ code: 'RESTORE_FAILED' });
    await expect(filesSource.restore?.(options(), request, failingInput(bytes, 700_000), ctx())).rejects.toMatchObject({ code: 'VERIFY_FAILED' });
    await expect(filesSource.restore?.(options(), request, Readable.from([Buffer.alloc(4096, 'x')]), ctx())).rejects.toMatchObject({ code: 'RESTORE_FAILED', message: expect.stringContaining('not a readable tar') as string });
    expect(await fingerprint(dir)).toBe(before);
  });

  it('restores an archive whose end marker is followed by more padding than tar reads', async () => {
    const { bytes, info } = await dumpAll(filesSource, options(), null);
    const dir = join(base, 'padded');
    const padded = Readable.from([bytes, ...Array.from({ length: 64 }, () => Buffer.alloc(64 * 1024))]);
    await filesSource.restore?.(options(), restoreRequest(null, to(dir), info), padded, ctx());
    expect(await fingerprint(dir)).toBe(await fingerprint(source));
  });

  it('a v1 manifest without stats still gets a drill check of the directory', async () => {
    const info: SourceInfo = { type: 'files', container: null, image: null, databases: [] };
    const checks = (await filesSource.check?.(options(), restoreRequest(null, to(source), info), ctx())) ?? [];
    expect(checks).toEqual([{ check: `files in ${source} (no stats recorded at dump time)`, ok: true, expected: null, actual: 6 }]);
  });
});

describe('files restore through a real daemon process', () => {
  it('refuses a non-empty directory without --yes, restores with it, passes a drill, and keeps answering', async () => {
    const mandate = `files-restore-${Math.random().toString(36).slice(2, 8)}`;
    const env = await createTestEnv('filesr', `mandates:\n${filesMandateYaml(mandate, 'FILES_RESTORE_SOURCE', { target: 'local' })}`);
    const processEnv = { ...testProcessEnv(), FILES_RESTORE_SOURCE: source };
    const socket = join(env.dir, 'data', 'backer.sock');
    const daemon = spawnDaemon(env.configPath, { env: { FILES_RESTORE_SOURCE: source } });
    const run = async <T>(args: string[]): Promise<{ code: number; body: T }> => {
      const r = await cli([...args, '--config', env.configPath, '--json'], processEnv);
      return { code: r.code, body: JSON.parse(r.stdout || 'null') as T };
    };
    try {
      await waitForHealth(daemon, socket, 60_000);
      const backup = await run<Job>(['backup', mandate, '--wait']);
      expect(backup.code, JSON.stringify(backup.body)).toBe(0);
      const manifests = (await run<{ backups: Manifest[] }>(['backups', 'list', '--mandate', mandate])).body.backups;
      expect(manifests[0]?.source.stats).toEqual(await expectedStats(source));

      const dir = await mkdtemp(join(base, 'daemon-'));
      await writeFile(join(dir, 'keep.txt'), 'mine');
      const refused = await run<Job<RestoreResult>>(['restore', mandate, '--to', `file:${dir}`, '--wait']);
      expect(refused.code).toBe(5);
      expect(refused.body.error).toMatchObject({ code: 'RESTORE_REFUSED', message: expect.stringContaining(`${dir} is not empty`) as string });
      expect(await readdir(dir)).toEqual(['keep.txt']);
      const original = await run<Job<RestoreResult>>(['restore', mandate, '--wait']);
      expect(original.code).toBe(5);

      const restored = await run<Job<RestoreResult>>(['restore', mandate, '--to', `file:${dir}`, '--yes', '--wait']);
      expect(restored.code, JSON.stringify(restored.body)).toBe(0);
      expect(await fingerprint(dir)).toBe(await fingerprint(source));

      const drill = await run<{ jobs: AnyJob[] }>(['verify', mandate, '--level', 'drill']);
      expect(drill.code, JSON.stringify(drill.body)).toBe(0);
      const checks = (drill.body.jobs[0]?.result as VerifyResult | undefined)?.verifications[0]?.checks ?? [];
      expect(checks.filter((c) => c.check.startsWith('tree_sha256'))).toHaveLength(1);
      expect((await callApi<{ status: string }>(socket, 'GET', '/v1/health')).status).toBe('ok');
    } finally {
      await daemon.stop();
    }
  });
});

describe('files options (one schema)', () => {
  const where = (key: string): string => `backer.yml: mandates.m.files.${key}`;

  it('reports every bad option at once, each at its key', () => {
    const raw = { path: 'relative/dir', include: '/srv/*.log,logs/../x', exclude: 'a\nb' };
    const error = ((): unknown => {
      try {
        filesSource.parse(raw, { container: null, describe: where });
      } catch (err) {
        return err;
      }
      return undefined;
    })();
    expect(error).toMatchObject({ code: 'LABEL_INVALID', message: `${where('path')}: expected an absolute path, got "relative/dir"` });
    expect((error as { details: { problems: unknown } }).details.problems).toEqual([
      { where: where('path'), message: 'expected an absolute path, got "relative/dir"' },
      { where: where('include'), message: '"/srv/*.log" is absolute: globs are relative to files.path' },
      { where: where('include'), message: '"logs/../x" leaves files.path ("..")' },
      { where: where('exclude'), message: 'patterns may not contain control characters such as newlines' },
    ]);
  });

  it('a daemon refuses to start on a static mandate with two bad options, naming both at their keys, and config check reports both', async () => {
    const mandate = `files-badopts-${Math.random().toString(36).slice(2, 8)}`;
    const yaml = `  ${mandate}:\n    type: files\n    target: local\n    files:\n      path: relative/dir\n      exclude: "a\\nb"\n`;
    const env = await createTestEnv('filesopts', `mandates:\n${yaml}`);
    const at = (key: string): string => `${env.configPath}: mandates.${mandate}.files.${key}`;
    const expected = [`${at('path')}: expected an absolute path, got "relative/dir"`, `${at('exclude')}: patterns may not contain control characters such as newlines`];
    const daemon = spawnDaemon(env.configPath);
    if (daemon.child.exitCode === null) await once(daemon.child, 'exit');
    // Exited on its own: stop() sends nothing and waits for its output to close.
    expect(await daemon.stop(), daemon.output()).toBe(2);
    expect(daemon.output()).toContain(`${env.configPath} has 2 problems:\n  ${expected.join('\n  ')}\n`);
    expect(existsSync(join(env.dir, 'data', 'backer.sock'))).toBe(false);
    const check = await cli(['--config', env.configPath, 'config', 'check'], testProcessEnv());
    expect(check.code).toBe(1);
    for (const line of expected) expect(check.stdout).toContain(line);
  });
});
