import { chmod, mkdtemp, readdir, rm, stat, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BackerError } from '../../src/errors.js';
import { localTargetSchema } from '../../src/config/schema.js';
import { createLocalTarget } from '../../src/targets/local.js';
import type { Target } from '../../src/targets/types.js';
import { describeTargetSuite, generatedSource, MIB, rejectionCode } from './suite.js';

function localTarget(path: string): Target {
  return createLocalTarget({ name: 'disk', type: 'local', default: false, path });
}

describeTargetSuite('local', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'backer-local-'));
  // A root that does not exist yet: the target creates it.
  return { target: localTarget(join(dir, 'not', 'yet')), cleanup: () => rm(dir, { recursive: true, force: true }) };
});

async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries.filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name));
}

describe('local target specifics', () => {
  let dir: string;
  let root: string;
  let target: Target;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'backer-local-'));
    root = join(dir, 'root');
    target = localTarget(root);
  });
  afterAll(async () => {
    await target.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('leaves no temp file behind after a failed write', async () => {
    const source = generatedSource(8 * MIB, { failAt: 2 * MIB });
    expect(await rejectionCode(target.write('m/failed.bin', source.stream, { signal: new AbortController().signal }))).toBe('TARGET_WRITE_FAILED');
    expect(await filesUnder(root)).toEqual([]);
  });

  it('leaves no temp file behind after a cancelled write', async () => {
    const controller = new AbortController();
    const source = generatedSource(Number.POSITIVE_INFINITY, {
      onBytes: (sent) => {
        if (sent >= MIB && !controller.signal.aborted) setImmediate(() => controller.abort());
      },
    });
    expect(await rejectionCode(target.write('m/cancelled.bin', source.stream, { signal: controller.signal }))).toBe('JOB_CANCELLED');
    expect(await filesUnder(root)).toEqual([]);
  });

  it('does not list temp files of writes in progress', async () => {
    await mkdir(join(root, 'p'), { recursive: true });
    await writeFile(join(root, 'p', '.a.bin.partial-0123abcd'), 'half');
    await target.write('p/a.bin', Readable.from([Buffer.from('whole')]), { signal: new AbortController().signal });
    expect((await target.list('p/')).map((o) => o.key)).toEqual(['p/a.bin']);
  });

  it('refuses keys that could leave the root', async () => {
    const bad = ['../escaped.bin', 'a/../../escaped.bin', '/etc/passwd', 'a\\..\\b', 'a//b', './a', ''];
    for (const key of bad) {
      const err = await target.write(key, Readable.from([Buffer.from('x')]), { signal: new AbortController().signal }).catch((e: unknown) => e);
      expect(err, key).toBeInstanceOf(BackerError);
      expect((err as BackerError).code).toBe('TARGET_WRITE_FAILED');
      expect((err as BackerError).details).toEqual({ target: 'disk', key });
      expect(await rejectionCode(target.writeOnce(key, Buffer.from('x'))), key).toBe('TARGET_WRITE_FAILED');
      expect(await rejectionCode(target.remove(key)), key).toBe('TARGET_WRITE_FAILED');
      expect(await rejectionCode(target.read(key)), key).toBe('TARGET_READ_FAILED');
      expect(await rejectionCode(target.stat(key)), key).toBe('TARGET_READ_FAILED');
    }
    expect(await rejectionCode(target.list('../'))).toBe('TARGET_READ_FAILED');
    expect(await rejectionCode(target.list('a/..'))).toBe('TARGET_READ_FAILED');
    expect(await readdir(dir)).not.toContain('escaped.bin');
  });

  it('writes artifacts and manifests 0600 in 0700 directories by default, whatever the umask', async () => {
    const previous = process.umask(0o000);
    try {
      const fresh = localTarget(join(dir, 'modes', 'root'));
      await fresh.write('m/deep/a.bin', Readable.from([Buffer.from('dump')]), { signal: new AbortController().signal });
      await fresh.writeOnce('m/a.manifest.json', Buffer.from('{}'));
      const mode = async (p: string): Promise<string> => ((await stat(p)).mode & 0o7777).toString(8);
      expect(await mode(join(dir, 'modes', 'root', 'm', 'deep', 'a.bin'))).toBe('600');
      expect(await mode(join(dir, 'modes', 'root', 'm', 'a.manifest.json'))).toBe('600');
      for (const d of ['modes', 'modes/root', 'modes/root/m', 'modes/root/m/deep']) expect(await mode(join(dir, d)), d).toBe('700');
    } finally {
      process.umask(previous);
    }
  });

  it('applies file_mode and dir_mode from the config, and leaves existing directories alone', async () => {
    const previous = process.umask(0o077);
    try {
      await mkdir(join(dir, 'group'));
      await chmod(join(dir, 'group'), 0o755);
      const config = localTargetSchema.parse({ name: 'g', type: 'local', path: join(dir, 'group'), file_mode: '0640', dir_mode: '0750' });
      const grouped = createLocalTarget(config);
      await grouped.write('m/a.bin', Readable.from([Buffer.from('dump')]), { signal: new AbortController().signal });
      await grouped.writeOnce('m/a.manifest.json', Buffer.from('{}'));
      const mode = async (p: string): Promise<string> => ((await stat(p)).mode & 0o7777).toString(8);
      expect(await mode(join(dir, 'group'))).toBe('755');
      expect(await mode(join(dir, 'group', 'm'))).toBe('750');
      expect(await mode(join(dir, 'group', 'm', 'a.bin'))).toBe('640');
      expect(await mode(join(dir, 'group', 'm', 'a.manifest.json'))).toBe('640');
    } finally {
      process.umask(previous);
    }
  });

  it('validates file_mode and dir_mode with a clear message', () => {
    const problems = (extra: Record<string, unknown>): string[] => {
      const r = localTargetSchema.safeParse({ name: 'g', type: 'local', path: '/x', ...extra });
      return r.success ? [] : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    };
    expect(problems({ file_mode: '0640', dir_mode: '750' })).toEqual([]);
    // YAML 1.2 reads an unquoted 0640 as the number 640.
    expect(problems({ file_mode: 640 })).toEqual(['file_mode: expected an octal mode in quotes, such as "0640"']);
    expect(problems({ file_mode: '0689' })[0]).toMatch(/^file_mode: expected an octal mode such as "0640"/);
    expect(problems({ file_mode: 'rw-r-----' })[0]).toMatch(/^file_mode: expected an octal mode/);
    expect(problems({ file_mode: '0440' })).toEqual(['file_mode: the owner (Backer) needs 0600 on every file']);
    expect(problems({ dir_mode: '0600' })).toEqual(['dir_mode: the owner (Backer) needs 0700 on every directory']);
  });

  it('lists nothing (rather than failing) when the root does not exist yet', async () => {
    const fresh = localTarget(join(dir, 'absent'));
    expect(await fresh.list('')).toEqual([]);
    expect(await fresh.stat('x.bin')).toBeUndefined();
  });
});
