import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { getPriority } from 'node:os';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { hashThreadCount } from '../../src/pipeline/hash-pool.js';
import { HASH_BATCH } from '../../src/pipeline/hash-digest.js';
import { HashingStream } from '../../src/pipeline/hash.js';
import { DEFAULT_WORK_NICE, setWorkNice } from '../../src/util/work-priority.js';

const KiB = 1024;
const MiB = 1024 * KiB;

/** `size` random bytes in chunks of odd lengths; fresh buffers, with node:crypto's digests of them. */
function randomSource(size: number, lengths = [1, 7, 65_537, 333, 256 * KiB + 1, 4093, 1 * MiB + 13]): { stream: Readable; expected: () => { size: number; md5: string; sha256: string } } {
  const md5 = createHash('md5');
  const sha256 = createHash('sha256');
  function* generate(): Generator<Buffer> {
    let sent = 0;
    for (let i = 0; sent < size; i++) {
      const chunk = randomBytes(Math.min(lengths[i % lengths.length] ?? 1, size - sent));
      md5.update(chunk);
      sha256.update(chunk);
      sent += chunk.length;
      yield chunk;
    }
  }
  return { stream: Readable.from(generate(), { objectMode: false }), expected: () => ({ size, md5: md5.digest('hex'), sha256: sha256.digest('hex') }) };
}

/** A sink that checks the bytes passed through unchanged and in order (sha256 of what it got). */
function sink(delayMs = 0): { stream: Writable; sha256: () => string; size: () => number } {
  const hash = createHash('sha256');
  let size = 0;
  const stream = new Writable({
    highWaterMark: 64 * KiB,
    write(chunk: Buffer, _enc, cb) {
      hash.update(chunk);
      size += chunk.length;
      if (delayMs > 0) setTimeout(cb, delayMs);
      else cb();
    },
  });
  return { stream, sha256: () => hash.digest('hex'), size: () => size };
}

async function noThreadsLeft(): Promise<void> {
  for (let i = 0; i < 50 && hashThreadCount() > 0; i++) await sleep(20);
  expect(hashThreadCount()).toBe(0);
}

describe('HashingStream (md5 + sha256 on a hash thread)', () => {
  it.each([0, 1, 1000, HASH_BATCH - 1, HASH_BATCH, HASH_BATCH + 1, 3 * MiB + 17, 12 * MiB + 5])('gives node:crypto digests and passes %i bytes through unchanged', async (size) => {
    const src = randomSource(size);
    const hash = new HashingStream();
    const out = sink();
    await pipeline(src.stream, hash, out.stream);
    const expected = src.expected();
    expect(hash.digest()).toEqual(expected);
    expect(out.size()).toBe(size);
    expect(out.sha256()).toBe(expected.sha256);
    await noThreadsLeft();
  });

  it('hashes several streams at once on the pool, each with its own digests', async () => {
    const runs = Array.from({ length: 6 }, (_, i) => {
      const src = randomSource(2 * MiB + i * 99_991);
      const hash = new HashingStream();
      return { src, hash, done: pipeline(src.stream, hash, sink().stream) };
    });
    await Promise.all(runs.map((r) => r.done));
    for (const r of runs) expect(r.hash.digest()).toEqual(r.src.expected());
    await noThreadsLeft();
  });

  it('reports progress on the main thread after each chunk', async () => {
    const sizes: number[] = [];
    await pipeline(randomSource(3 * MiB, [100 * KiB]).stream, new HashingStream((n) => sizes.push(n)), sink().stream);
    expect(sizes.length).toBe(31);
    expect(sizes.at(-1)).toBe(3 * MiB);
    expect(sizes.every((n, i) => i === 0 || n > (sizes[i - 1] ?? 0))).toBe(true);
  });

  it('gives the same digests with the main-thread baseline (BACKER_INTERNAL_HASH_THREAD=off)', async () => {
    process.env.BACKER_INTERNAL_HASH_THREAD = 'off';
    try {
      const src = randomSource(3 * MiB + 1);
      const hash = new HashingStream();
      await pipeline(src.stream, hash, sink().stream);
      expect(hash.digest()).toEqual(src.expected());
      expect(hashThreadCount()).toBe(0);
    } finally {
      delete process.env.BACKER_INTERNAL_HASH_THREAD;
    }
  });

  it('propagates a source error and ends its thread', async () => {
    function* failing(): Generator<Buffer> {
      for (let i = 0; i < 20; i++) yield randomBytes(512 * KiB);
      throw new Error('dump broke');
    }
    const hash = new HashingStream();
    await expect(pipeline(Readable.from(failing()), hash, sink().stream)).rejects.toThrow('dump broke');
    expect(() => hash.digest()).toThrow('before the stream ended');
    await noThreadsLeft();
  });

  it('runs its thread queue.nice steps below Backer\'s priority, the main thread unchanged (0: at Backer\'s)', async () => {
    const own = getPriority();
    /** The nice value of each of this process's threads (/proc/self/task), by thread id. */
    const threadNices = (): Map<string, number> =>
      new Map(readdirSync('/proc/self/task').flatMap((tid): [string, number][] => {
        try {
          const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
          return [[tid, Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16])]];
        } catch {
          return []; // ended while we looked
        }
      }));
    /**
     * The nice values of the threads that appear while a hashed stream is open, once they show
     * `expected` (the thread lowers itself as its first step, after it started: up to 5 s).
     */
    const whileHashing = async (expected: number): Promise<number[]> => {
      const before = threadNices();
      const added = (): number[] => [...threadNices()].filter(([tid]) => !before.has(tid)).map(([, nice]) => nice);
      const controller = new AbortController();
      const out = sink(1);
      const running = pipeline(randomSource(64 * MiB).stream, new HashingStream(), out.stream, { signal: controller.signal });
      while (out.size() < 4 * MiB) await sleep(5);
      for (const deadline = Date.now() + 5000; Date.now() < deadline; await sleep(10)) if (added().length > 0 && added().every((n) => n === expected)) break;
      const nices = added();
      controller.abort();
      await expect(running).rejects.toThrow(/abort/i);
      await noThreadsLeft();
      return nices;
    };
    try {
      // One thread: the hash thread (V8's and libuv's helper threads are the process's, shared).
      const lowered = Math.min(19, own + DEFAULT_WORK_NICE);
      expect(await whileHashing(lowered)).toEqual([lowered]);
      expect(getPriority()).toBe(own);
      setWorkNice(0);
      expect(await whileHashing(own)).toEqual([own]);
    } finally {
      setWorkNice(DEFAULT_WORK_NICE);
    }
  });

  it('ends its thread when the pipeline is aborted mid-stream', async () => {
    const controller = new AbortController();
    const src = randomSource(64 * MiB);
    const out = sink(1);
    const running = pipeline(src.stream, new HashingStream(), out.stream, { signal: controller.signal });
    while (out.size() < 4 * MiB) await sleep(5);
    expect(hashThreadCount()).toBe(1);
    controller.abort();
    await expect(running).rejects.toThrow(/abort/i);
    await noThreadsLeft();
  });

  it('holds memory bounded with a slow consumer and with a hash thread slower than the source', async () => {
    // A fast source of 192 MiB (subarrays of one block: it allocates nothing), a consumer that
    // keeps up at first then slows down: neither the stream buffers nor the thread's queue grow.
    const block = randomBytes(1 * MiB);
    const expected = { md5: createHash('md5'), sha256: createHash('sha256') };
    let produced = 0;
    const total = 192 * MiB;
    function* generate(): Generator<Buffer> {
      for (let sent = 0; sent < total; sent += 64 * KiB) {
        const chunk = block.subarray(sent % MiB, (sent % MiB) + 64 * KiB);
        expected.md5.update(chunk);
        expected.sha256.update(chunk);
        produced += chunk.length;
        yield chunk;
      }
    }
    const base = process.memoryUsage().arrayBuffers;
    let peakExternal = 0;
    let maxAhead = 0;
    let consumed = 0;
    const hash = new HashingStream();
    const slow = new Writable({
      highWaterMark: 64 * KiB,
      write(chunk: Buffer, _enc, cb) {
        consumed += chunk.length;
        maxAhead = Math.max(maxAhead, produced - consumed);
        peakExternal = Math.max(peakExternal, process.memoryUsage().arrayBuffers - base);
        if (consumed > 160 * MiB) setTimeout(cb, 2);
        else cb();
      },
    });
    await pipeline(Readable.from(generate(), { objectMode: false }), hash, slow);
    expect(hash.digest()).toEqual({ size: total, md5: expected.md5.digest('hex'), sha256: expected.sha256.digest('hex') });
    // Buffers between source and consumer: a few highWaterMarks, not the stream.
    expect(maxAhead).toBeLessThan(2 * MiB);
    // Batches in flight to the thread (≤ 3 MiB + one batch, reused) plus what GC has not reclaimed yet.
    expect(peakExternal).toBeLessThan(24 * MiB);
    await noThreadsLeft();
  });

  it('leaves no thread behind: a process that aborts a hashed stream exits by itself', async () => {
    const script = `
      import { Readable, Writable } from 'node:stream';
      import { pipeline } from 'node:stream/promises';
      import { HashingStream } from ${JSON.stringify(join(import.meta.dirname, '../../src/pipeline/hash.ts'))};
      const controller = new AbortController();
      let n = 0;
      const src = new Readable({ read() { this.push(Buffer.alloc(64 * 1024, n++ & 0xff)); } });
      const out = new Writable({ write(c, _e, cb) { if (n > 100) controller.abort(); cb(); } });
      await pipeline(src, new HashingStream(), out, { signal: controller.signal }).catch((e) => console.log('aborted:', e.name));
    `;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const code = await Promise.race([
      new Promise<number | null>((resolve) => child.on('close', resolve)),
      sleep(20_000).then(() => 'timeout' as const),
    ]);
    if (code === 'timeout') child.kill('SIGKILL');
    expect(code).toBe(0);
    expect(out).toContain('aborted: AbortError');
  });
});
