import { mkdtemp, readdir, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BackerError } from '../../src/errors.js';
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

  it('lists nothing (rather than failing) when the root does not exist yet', async () => {
    const fresh = localTarget(join(dir, 'absent'));
    expect(await fresh.list('')).toEqual([]);
    expect(await fresh.stat('x.bin')).toBeUndefined();
  });
});
