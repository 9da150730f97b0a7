/**
 * The behaviour every target owes the pipeline, run against each driver. Each test works under
 * its own random prefix so the tests stay independent while sharing one target.
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isBackerError } from '../../src/errors.js';
import type { Target } from '../../src/targets/types.js';

export const MIB = 1024 * 1024;
const CHUNK = 64 * 1024;

export interface GeneratedSource {
  stream: Readable;
  /** sha256 of every byte handed out so far. */
  sha256(): string;
  sent(): number;
}

/**
 * Random bytes made on demand, so a big artifact never sits in memory. `failAt` makes the source
 * break after that many bytes; `onBytes` sees the running count (used to abort mid-way).
 */
export function generatedSource(total: number, opts: { failAt?: number; onBytes?: (sent: number) => void } = {}): GeneratedSource {
  const hash = createHash('sha256');
  let sent = 0;
  const stream = new Readable({
    read() {
      if (opts.failAt !== undefined && sent >= opts.failAt) {
        this.destroy(new Error('source broke mid-way'));
        return;
      }
      if (sent >= total) {
        this.push(null);
        return;
      }
      const chunk = randomBytes(Math.min(CHUNK, total - sent));
      hash.update(chunk);
      sent += chunk.length;
      opts.onBytes?.(sent);
      this.push(chunk);
    },
  });
  return { stream, sha256: () => hash.copy().digest('hex'), sent: () => sent };
}

export async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as Uint8Array));
  return Buffer.concat(chunks);
}

export async function sha256Of(stream: Readable): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of stream) hash.update(chunk as Uint8Array);
  return hash.digest('hex');
}

/** The BackerError code a promise rejects with, or a description of what it did instead. */
export async function rejectionCode(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (err) {
    return isBackerError(err) ? err.code : `not a BackerError: ${String(err)}`;
  }
  return 'resolved';
}

function signal(): AbortSignal {
  return new AbortController().signal;
}

export function describeTargetSuite(label: string, make: () => Promise<{ target: Target; cleanup(): Promise<void> }>): void {
  describe(`target suite: ${label}`, () => {
    let made: { target: Target; cleanup(): Promise<void> };
    let target: Target;
    let base: string;

    beforeAll(async () => {
      made = await make();
      target = made.target;
    });
    afterAll(async () => {
      await target.close();
      await made.cleanup();
    });
    // Vitest runs the tests of one file in order; a fresh prefix per test keeps them apart.
    const fresh = (): string => (base = `t-${randomUUID()}`);

    it('round-trips bytes through write and read', async () => {
      fresh();
      const data = randomBytes(300 * 1024);
      await target.write(`${base}/a.bin`, Readable.from([data.subarray(0, 1000), data.subarray(1000)]), { signal: signal() });
      expect((await readAll(await target.read(`${base}/a.bin`))).equals(data)).toBe(true);
    });

    it('lists recursively by prefix, with keys relative to the target', async () => {
      fresh();
      for (const key of ['m1/one.bin', 'm1/sub/two.bin', 'm2/three.bin', 'm10/four.bin']) {
        await target.write(`${base}/${key}`, Readable.from([Buffer.from(key)]), { signal: signal() });
      }
      const keys = async (prefix: string): Promise<string[]> => (await target.list(prefix)).map((o) => o.key).sort();
      expect(await keys(`${base}/m1/`)).toEqual([`${base}/m1/one.bin`, `${base}/m1/sub/two.bin`]);
      expect(await keys(`${base}/m1`)).toEqual([`${base}/m10/four.bin`, `${base}/m1/one.bin`, `${base}/m1/sub/two.bin`].sort());
      expect(await keys(`${base}/`)).toHaveLength(4);
      expect(await keys(`${base}/nothing/`)).toEqual([]);
      const one = (await target.list(`${base}/m2/`))[0];
      expect(one?.size).toBe('m2/three.bin'.length);
      expect(one?.modified).toBeInstanceOf(Date);
    });

    it('stats size, and nothing for a missing key', async () => {
      fresh();
      await target.write(`${base}/s.bin`, Readable.from([randomBytes(12345)]), { signal: signal() });
      const info = await target.stat(`${base}/s.bin`);
      expect(info?.key).toBe(`${base}/s.bin`);
      expect(info?.size).toBe(12345);
      expect(await target.stat(`${base}/missing.bin`)).toBeUndefined();
    });

    it('removes a key, and removing a missing key is fine', async () => {
      fresh();
      await target.write(`${base}/r.bin`, Readable.from([Buffer.from('x')]), { signal: signal() });
      await target.remove(`${base}/r.bin`);
      expect(await target.stat(`${base}/r.bin`)).toBeUndefined();
      expect(await target.list(`${base}/`)).toEqual([]);
      await target.remove(`${base}/r.bin`);
      await target.remove(`${base}/never-was.bin`);
    });

    it('writeOnce stores a small object and refuses to overwrite it', async () => {
      fresh();
      await target.writeOnce(`${base}/manifest.json`, Buffer.from('{"v":1}'), { contentType: 'application/json' });
      expect(await rejectionCode(target.writeOnce(`${base}/manifest.json`, Buffer.from('{"v":2}')))).toBe('TARGET_WRITE_FAILED');
      expect((await readAll(await target.read(`${base}/manifest.json`))).toString()).toBe('{"v":1}');
      expect((await target.list(`${base}/`)).map((o) => o.key)).toEqual([`${base}/manifest.json`]);
    });

    it('write never overwrites: a second write of a key is refused and the first stays intact', async () => {
      fresh();
      const first = randomBytes(200 * 1024);
      await target.write(`${base}/a.bin`, Readable.from([first]), { signal: signal() });
      const second = generatedSource(7 * MIB);
      const err = await target.write(`${base}/a.bin`, second.stream, { signal: signal() }).catch((e: unknown) => e);
      expect(isBackerError(err, 'TARGET_WRITE_FAILED')).toBe(true);
      expect((err as { details: Record<string, unknown> }).details).toMatchObject({ key: `${base}/a.bin`, exists: true });
      expect(second.stream.destroyed).toBe(true);
      expect((await readAll(await target.read(`${base}/a.bin`))).equals(first)).toBe(true);
      expect((await target.list(`${base}/`)).map((o) => o.key)).toEqual([`${base}/a.bin`]);
    });

    it('write never overwrites an object stored by writeOnce either', async () => {
      fresh();
      await target.writeOnce(`${base}/m.json`, Buffer.from('{"v":1}'));
      expect(await rejectionCode(target.write(`${base}/m.json`, Readable.from([Buffer.from('other')]), { signal: signal() }))).toBe('TARGET_WRITE_FAILED');
      expect((await readAll(await target.read(`${base}/m.json`))).toString()).toBe('{"v":1}');
    });

    it('a source that fails mid-way rejects the write and leaves nothing', async () => {
      fresh();
      const source = generatedSource(64 * MIB, { failAt: 6 * MIB });
      expect(await rejectionCode(target.write(`${base}/broken.bin`, source.stream, { signal: signal() }))).toBe('TARGET_WRITE_FAILED');
      expect(await target.stat(`${base}/broken.bin`)).toBeUndefined();
      // A temp file or pending upload must not show up as an object either.
      expect(await target.list(`${base}/`)).toEqual([]);
    });

    it('an abort mid-way rejects the write and leaves nothing', async () => {
      fresh();
      const controller = new AbortController();
      // Endless source: only the abort can end this write.
      const source = generatedSource(Number.POSITIVE_INFINITY, {
        onBytes: (sent) => {
          if (sent >= 6 * MIB && !controller.signal.aborted) setImmediate(() => controller.abort(new Error('test cancel')));
        },
      });
      const code = await rejectionCode(target.write(`${base}/cancelled.bin`, source.stream, { signal: controller.signal }));
      expect(['JOB_CANCELLED', 'TARGET_WRITE_FAILED']).toContain(code);
      expect(source.stream.destroyed).toBe(true);
      expect(await target.stat(`${base}/cancelled.bin`)).toBeUndefined();
      expect(await target.list(`${base}/`)).toEqual([]);
    });

    it('an already aborted signal rejects without storing anything', async () => {
      fresh();
      const controller = new AbortController();
      controller.abort(new Error('cancelled before start'));
      const code = await rejectionCode(target.write(`${base}/early.bin`, Readable.from([Buffer.from('x')]), { signal: controller.signal }));
      expect(['JOB_CANCELLED', 'TARGET_WRITE_FAILED']).toContain(code);
      expect(await target.stat(`${base}/early.bin`)).toBeUndefined();
    });

    it('reading a missing key gives BACKUP_NOT_FOUND', async () => {
      fresh();
      expect(await rejectionCode(target.read(`${base}/missing.bin`))).toBe('BACKUP_NOT_FOUND');
    });

    it('round-trips a 24 MiB stream without holding it in memory', async () => {
      fresh();
      const size = 24 * MIB;
      const source = generatedSource(size);
      await target.write(`${base}/big.bin`, source.stream, { signal: signal(), contentType: 'application/octet-stream' });
      expect(source.sent()).toBe(size);
      expect((await target.stat(`${base}/big.bin`))?.size).toBe(size);
      expect(await sha256Of(await target.read(`${base}/big.bin`))).toBe(source.sha256());
    });
  });
}
