import { chmod, mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Daemon } from '../src/daemon/daemon.js';
import type { Manifest } from '../src/manifests/schema.js';
import type { Job } from '../src/queue/types.js';
import { compileGlob, splitPatterns } from '../src/sources/files.js';
import { runProgram, s3Get } from './helpers/artifacts.js';
import { backupJob, createTestEnv, startDaemon, type TestEnv } from './helpers/env.js';

let env: TestEnv;
let daemon: Daemon;
let root: string;
/** The files archived by the exclude-only mandate. */
let excludedOnly: Record<string, string> = {};

/** Relative path → content. Names with spaces, a comma and a newline exercise the NUL file list. */
const TREE: Record<string, string> = {
  'top.log': 'top',
  'readme.txt': 'readme',
  '.env': 'A=1',
  '.hidden/x.log': 'hidden log',
  'logs/app.log': 'app',
  'logs/app.log.1': 'rotated',
  'logs/debug.txt': 'debug',
  'logs/cache/c.log': 'nested cache log',
  'logs/new\nline.log': 'newline in the name',
  'uploads/a.jpg': 'jpg',
  'uploads/b.png': 'png',
  'uploads/tmp/partial.tmp': 'partial',
  'cache/big.bin': 'bin',
  'cache/sub/z.log': 'cache log',
  'we,ird dir/ü n.log': 'weird',
};

/** A static files mandate; list values are written as YAML lists, strings as comma lists. */
function mandate(name: string, files: Record<string, string | string[]>, extra = '    target: local\n'): string {
  const lines = Object.entries(files).map(([k, v]) => `      ${k}: ${JSON.stringify(v)}\n`);
  return `  ${name}:\n    type: files\n${extra}    files:\n      path: ${JSON.stringify(root)}\n${lines.join('')}`;
}

async function backup(name: string): Promise<Job> {
  await daemon.services.discovery.refresh();
  return backupJob(await daemon.queue.wait(daemon.queue.enqueue(name, 'api').id));
}

/** Every file of an extracted archive (relative path → content), plus the directories. */
async function extract(tar: Buffer): Promise<{ files: Record<string, string>; dirs: string[] }> {
  const dir = await mkdtemp(join(tmpdir(), 'bk-files-x-'));
  await runProgram('tar', ['-x', '-C', dir, '-f', '-'], tar);
  const files: Record<string, string> = {};
  const dirs: string[] = [];
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    const rel = join(entry.parentPath, entry.name).slice(dir.length + 1);
    if (entry.isDirectory()) dirs.push(rel);
    else if (entry.isFile()) files[rel] = await readFile(join(dir, rel), 'utf8');
    else files[rel] = `-> symlink`;
  }
  await rm(dir, { recursive: true, force: true });
  return { files, dirs: dirs.sort() };
}

async function localArtifact(job: Job): Promise<Buffer> {
  const key = job.result?.targets[0]?.artifact_key ?? '';
  return readFile(join(env.dir, 'backups', key));
}

function pick(...names: string[]): Record<string, string> {
  return Object.fromEntries(names.map((n) => [n, TREE[n] ?? '']));
}

const ALL_LOGS = ['top.log', '.hidden/x.log', 'logs/app.log', 'logs/cache/c.log', 'logs/new\nline.log', 'cache/sub/z.log', 'we,ird dir/ü n.log'];
const UPLOADS = ['uploads/a.jpg', 'uploads/b.png', 'uploads/tmp/partial.tmp'];

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'bk-files-src-'));
  for (const [rel, content] of Object.entries(TREE)) {
    await mkdir(join(root, rel, '..'), { recursive: true });
    await writeFile(join(root, rel), content);
  }
  await symlink('../uploads', join(root, 'logs', 'link-to-uploads'));
  const mandates = [
    mandate('globs-plain', {}),
    mandate('globs-include', { include: ['**/*.log', 'uploads'] }),
    mandate('globs-exclude', { exclude: '*.tmp,cache' }),
    mandate('globs-both', { include: '**/*.log,uploads', exclude: ['cache', '*.tmp'] }, '    target: s3\n    middleware: compression\n'),
    mandate('globs-all-exclude', { include: '**', exclude: '*.tmp,cache' }),
    mandate('globs-dirs', { include: 'logs/,{uploads,nothing}/*.png' }),
    mandate('globs-none', { include: '**/*.nope' }),
    mandate('globs-bad-abs', { include: '/srv/*.log' }),
    mandate('globs-bad-dotdot', { include: 'logs/../../etc/*' }),
    mandate('globs-bad-brace', { include: '**/*.{log,txt' }),
    mandate('globs-bad-ctrl', { exclude: 'a\nb' }),
    mandate('globs-bad-key', { includes: '*.log' }),
    `  globs-not-dir:\n    type: files\n    target: local\n    files:\n      path: ${JSON.stringify(join(root, 'readme.txt'))}\n`,
  ];
  env = await createTestEnv('files-globs', `mandates:\n${mandates.join('')}`);
  daemon = await startDaemon(env);
});

afterAll(async () => {
  await daemon?.close();
  await rm(root, { recursive: true, force: true });
  if (env) await rm(env.dir, { recursive: true, force: true });
});

describe('glob matching', () => {
  it.each([
    ['**/*.log', 'a.log', true],
    ['**/*.log', 'x/y/a.log', true],
    ['**/*.log', 'x/.a.log', true],
    ['*.log', 'x/a.log', false],
    ['*.log', '.h.log', true],
    ['logs/**', 'logs', true],
    ['logs/**', 'logs/a/b', true],
    ['logs/**', 'logsx', false],
    ['a/**/b', 'a/b', true],
    ['a/**/b', 'a/x/y/b', true],
    ['a/**/b', 'a/xb', false],
    ['{a,b}/*.txt', 'b/x.txt', true],
    ['{a,b}/*.txt', 'c/x.txt', false],
    ['file?.txt', 'file1.txt', true],
    ['file?.txt', 'file/.txt', false],
    ['[a-c]*', 'b1', true],
    ['[!a-c]*', 'b1', false],
    ['x[/]y', 'x/y', false],
    ['a.b', 'axb', false],
    ['a+b(1)', 'a+b(1)', true],
  ])('%s matches %s: %s', (glob, path, expected) => {
    expect(compileGlob(glob).test(path)).toBe(expected);
  });

  it('splits comma lists outside braces and classes', () => {
    expect(splitPatterns('**/*.log, {a,b}/c ,[,]x,')).toEqual(['**/*.log', '{a,b}/c', '[,]x']);
  });
});

describe('files source include and exclude', () => {
  it('include: only matching entries, a matching directory with all its content (dot files too)', async () => {
    const job = await backup('globs-include');
    expect(job.error).toBeNull();
    const { files, dirs } = await extract(await localArtifact(job));
    expect(files).toEqual(pick(...ALL_LOGS, ...UPLOADS));
    expect(dirs).toContain('uploads/tmp');
  });

  it('exclude: GNU tar patterns, at any depth, pruning excluded directories', async () => {
    const job = await backup('globs-exclude');
    expect(job.error).toBeNull();
    const { files, dirs } = await extract(await localArtifact(job));
    excludedOnly = files;
    const expected = pick(...Object.keys(TREE).filter((n) => !n.endsWith('.tmp') && !n.startsWith('cache/') && !n.startsWith('logs/cache/')));
    expect(files).toEqual({ ...expected, 'logs/link-to-uploads': '-> symlink' });
    expect(dirs).not.toContain('cache');
    expect(dirs).not.toContain('logs/cache');
  });

  it('include and exclude together, through gzip to S3: exclude wins inside included directories', async () => {
    const job = await backup('globs-both');
    expect(job.error).toBeNull();
    const target = job.result?.targets[0];
    expect(target?.target).toBe('s3');
    const key = `backer/${target?.artifact_key ?? ''}`;
    expect(key).toMatch(/\.tar\.gz$/);
    const tar = await runProgram('gzip', ['-d'], await s3Get(env.bucket, key));
    const { files } = await extract(tar);
    expect(files).toEqual(pick(...ALL_LOGS.filter((n) => !n.includes('cache')), 'uploads/a.jpg', 'uploads/b.png'));
    const manifest = JSON.parse((await s3Get(env.bucket, key.replace(/\.tar\.gz$/, '.manifest.json'))).toString()) as Manifest;
    expect(manifest.source).toMatchObject({ type: 'files', paths: [root], include: ['**/*.log', 'uploads'], exclude: ['cache', '*.tmp'] });
    expect(manifest.steps.map((s) => s.mime)).toEqual(['application/x-tar', 'application/gzip']);
  });

  it('include ** with an exclude selects exactly what the exclude alone selects', async () => {
    const { files } = await extract(await localArtifact(await backup('globs-all-exclude')));
    expect(Object.keys(files).length).toBeGreaterThan(5);
    expect(files).toEqual(excludedOnly);
  });

  it('a trailing / matches directories only; braces pick alternatives', async () => {
    const job = await backup('globs-dirs');
    expect(job.error).toBeNull();
    const { files } = await extract(await localArtifact(job));
    expect(files).toEqual({
      ...pick('logs/app.log', 'logs/app.log.1', 'logs/debug.txt', 'logs/cache/c.log', 'logs/new\nline.log', 'uploads/b.png'),
      'logs/link-to-uploads': '-> symlink',
    });
  });

  it('an include that matches nothing gives an empty archive and a warning', async () => {
    const job = await backup('globs-none');
    expect(job.state).toBe('succeeded');
    expect(await extract(await localArtifact(job))).toEqual({ files: {}, dirs: [] });
    expect(env.logs.join('')).toMatch(/no entry matches files\.include/);
  });

  it('reports bad globs with the precise config path', () => {
    const { problems, mandates } = daemon.services.discovery.current();
    const at = (mandate: string): string | undefined => problems.find((p) => p.where.includes(`mandates.${mandate}.`))?.where;
    const message = (mandate: string): string => problems.find((p) => p.where.includes(`mandates.${mandate}.`))?.message ?? '';
    expect(at('globs-bad-abs')).toMatch(/backer\.yml: mandates\.globs-bad-abs\.files\.include$/);
    expect(message('globs-bad-abs')).toMatch(/"\/srv\/\*\.log" is absolute/);
    expect(at('globs-bad-dotdot')).toMatch(/mandates\.globs-bad-dotdot\.files\.include$/);
    expect(message('globs-bad-dotdot')).toMatch(/leaves files\.path/);
    expect(message('globs-bad-brace')).toMatch(/unclosed "\{"/);
    expect(at('globs-bad-ctrl')).toMatch(/mandates\.globs-bad-ctrl\.files\.exclude$/);
    expect(message('globs-bad-ctrl')).toMatch(/control characters/);
    expect(at('globs-bad-key')).toMatch(/mandates\.globs-bad-key\.files\.includes$/);
    expect(message('globs-bad-key')).toMatch(/known: path, include, exclude/);
    const names = mandates.map((m) => m.name);
    expect(names).toEqual(expect.arrayContaining(['globs-include', 'globs-both']));
    expect(names).not.toContain('globs-bad-abs');
  });

  it('archives the whole directory when neither include nor exclude is set', async () => {
    const job = await backup('globs-plain');
    expect(job.error).toBeNull();
    const { files } = await extract(await localArtifact(job));
    expect(files).toEqual({ ...TREE, 'logs/link-to-uploads': '-> symlink' });
  });

  it('fails the backup with the reason when files.path is not a directory, or when tar fails; nothing is stored', async () => {
    const notDir = await backup('globs-not-dir');
    expect(notDir.state).toBe('failed');
    expect(notDir.error).toMatchObject({ code: 'DUMP_FAILED', message: `${join(root, 'readme.txt')} is not a directory` });
    expect(existsSync(join(env.dir, 'backups', 'globs-not-dir'))).toBe(false);

    // A tar that writes part of an archive, then fails: the backup must fail, not store a short archive.
    const bin = await mkdtemp(join(tmpdir(), 'bk-fake-tar-'));
    await writeFile(join(bin, 'tar'), '#!/bin/sh\nprintf partial\necho "tar: disk on fire" >&2\nexit 2\n');
    await chmod(join(bin, 'tar'), 0o755);
    const path = process.env.PATH;
    process.env.PATH = `${bin}:${path ?? ''}`;
    try {
      for (const name of ['globs-plain', 'globs-include']) {
        const before = await readdir(join(env.dir, 'backups', name)).catch(() => []);
        const job = await backup(name);
        expect(job.state).toBe('failed');
        expect(job.error).toMatchObject({ code: 'DUMP_FAILED', message: `tar of ${root} exited with code 2: tar: disk on fire` });
        expect(await readdir(join(env.dir, 'backups', name)).catch(() => [])).toEqual(before);
      }
    } finally {
      process.env.PATH = path;
      await rm(bin, { recursive: true, force: true });
    }
  });
});
