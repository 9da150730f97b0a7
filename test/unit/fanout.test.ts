import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { Readable, Writable, type PassThrough } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { createFanout, type Fanout } from '../../src/pipeline/fanout.js';

const KiB = 1024;
const MiB = 1024 * KiB;

/** `size` bytes in chunks of varying length, cheap to generate; `onChunk` sees each pull. */
function source(size: number, onChunk: (length: number) => void = () => undefined): { stream: Readable; sha256: () => string } {
  const hash = createHash('sha256');
  const block = randomBytes(512 * KiB);
  const sizes = [64 * KiB, 1, 100 * KiB + 7, 256 * KiB, 3 * KiB];
  function* generate(): Generator<Buffer> {
    let sent = 0;
    for (let i = 0; sent < size; i++) {
      const length = Math.min(sizes[i % sizes.length] ?? 1, size - sent);
      // A fresh buffer each time: the fan-out must not rely on chunks staying unchanged elsewhere.
      const chunk = Buffer.from(block.subarray(i % 97, (i % 97) + length));
      chunk[0] = i & 0xff;
      hash.update(chunk);
      sent += length;
      onChunk(length);
      yield chunk;
    }
  }
  return { stream: Readable.from(generate(), { objectMode: false }), sha256: () => hash.digest('hex') };
}

/** Reads a branch to its end; the promise rejects with the branch's error. */
async function digest(branch: Readable, delayMs = 0): Promise<{ size: number; sha256: string }> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of branch as AsyncIterable<Buffer>) {
    hash.update(chunk);
    size += chunk.length;
    if (delayMs > 0) await sleep(delayMs);
  }
  return { size, sha256: hash.digest('hex') };
}

function branch(fanout: Fanout, index: number): PassThrough {
  const b = fanout.branches[index];
  if (!b) throw new Error(`no branch ${index}`);
  return b;
}

/** Total bytes held in the fan-out's writable and every branch, both sides. */
function buffered(fanout: Fanout): number {
  return fanout.writable.writableLength + fanout.branches.reduce((sum, b) => sum + b.readableLength + b.writableLength, 0);
}

/** Bytes the source has produced so far, and whether it stopped producing. */
async function progressStalls(read: () => number, ms = 200): Promise<boolean> {
  const before = read();
  await sleep(ms);
  return read() === before;
}

describe('fanout', () => {
  it('gives every branch identical bytes', async () => {
    const fanout = createFanout(3);
    const input = source(5 * MiB + 123);
    const reads = fanout.branches.map((b) => digest(b));
    await pipeline(input.stream, fanout.writable);
    const results = await Promise.all(reads);
    const expected = { size: 5 * MiB + 123, sha256: input.sha256() };
    expect(results).toEqual([expected, expected, expected]);
  });

  it('works with a single branch and with an empty input', async () => {
    const one = createFanout(1);
    const read = digest(branch(one, 0));
    await pipeline(Readable.from([Buffer.from('abc')]), one.writable);
    expect((await read).size).toBe(3);

    const empty = createFanout(2);
    const reads = empty.branches.map((b) => digest(b));
    await pipeline(Readable.from([]), empty.writable);
    expect((await Promise.all(reads)).map((r) => r.size)).toEqual([0, 0]);
  });

  it('a branch nobody reads blocks the writable instead of buffering', async () => {
    const fanout = createFanout(3);
    let produced = 0;
    const input = source(20 * MiB, (length) => (produced += length));
    const fast = [digest(branch(fanout, 0)), digest(branch(fanout, 1))];
    const done = pipeline(input.stream, fanout.writable);

    await sleep(100);
    expect(await progressStalls(() => produced)).toBe(true);
    // Writable buffer + the idle branch's both sides + a chunk or two in flight.
    expect(produced).toBeLessThan(6 * MiB);
    expect(buffered(fanout)).toBeLessThan(5 * MiB);

    const slow = digest(branch(fanout, 2));
    await done;
    expect((await Promise.all([...fast, slow])).map((r) => r.size)).toEqual([20 * MiB, 20 * MiB, 20 * MiB]);
  });

  it('the slowest branch sets the pace: 50 MiB through with bounded buffers', async () => {
    const fanout = createFanout(3);
    let produced = 0;
    let slowConsumed = 0;
    const peaks = { writable: 0, branch: 0, gap: 0 };
    const sample = (): void => {
      peaks.writable = Math.max(peaks.writable, fanout.writable.writableLength);
      for (const b of fanout.branches) peaks.branch = Math.max(peaks.branch, b.readableLength, b.writableLength);
      // Bytes the source handed out that the slowest consumer has not taken yet: all in memory somewhere.
      peaks.gap = Math.max(peaks.gap, produced - slowConsumed);
    };
    const input = source(50 * MiB, (length) => {
      produced += length;
      sample();
    });
    const slowHash = createHash('sha256');
    const slow = new Writable({
      highWaterMark: 64 * KiB,
      write(chunk: Buffer, _enc, callback) {
        slowHash.update(chunk);
        slowConsumed += chunk.length;
        sample();
        setTimeout(callback, 1);
      },
    });
    const timer = setInterval(sample, 1);
    try {
      const reads = [digest(branch(fanout, 0)), digest(branch(fanout, 1)), pipeline(branch(fanout, 2), slow)];
      await pipeline(input.stream, fanout.writable);
      const [first, second] = await Promise.all(reads);
      const expected = { size: 50 * MiB, sha256: input.sha256() };
      expect([first, second, { size: slowConsumed, sha256: slowHash.digest('hex') }]).toEqual([expected, expected, expected]);
    } finally {
      clearInterval(timer);
    }
    // Each buffer stays near its 1 MiB high-water mark (plus one chunk of at most 256 KiB) ...
    expect(peaks.writable).toBeGreaterThan(0);
    expect(peaks.writable).toBeLessThan(2 * MiB);
    expect(peaks.branch).toBeLessThan(2 * MiB);
    // ... and the source never runs more than those few buffers ahead of the slowest target.
    expect(peaks.gap).toBeLessThan(6 * MiB);
  });

  it('detach() errors one branch and lets the others finish', async () => {
    const fanout = createFanout(3);
    const failed = branch(fanout, 1);
    const failure = new Error('target b is full');
    const errored = once(failed, 'error');
    const input = source(10 * MiB);
    const reads = [digest(branch(fanout, 0)), digest(branch(fanout, 2))];
    const done = pipeline(input.stream, fanout.writable);

    // Branch 1 is never read, so the pipeline stalls until it is detached.
    await sleep(100);
    expect(fanout.writable.writableFinished).toBe(false);
    fanout.detach(1, failure);
    expect(await errored).toEqual([failure]);
    expect(failed.destroyed).toBe(true);

    await done;
    const expected = { size: 10 * MiB, sha256: input.sha256() };
    expect(await Promise.all(reads)).toEqual([expected, expected]);
    expect(failed.errored).toBe(failure);

    // Detaching again, or an unknown index, is a no-op.
    fanout.detach(1, new Error('again'));
    fanout.detach(7, new Error('nope'));
    expect(failed.errored).toBe(failure);
  });

  it('once every branch is detached, the next write fails', async () => {
    const fanout = createFanout(2);
    fanout.branches.forEach((b) => b.on('error', () => undefined));
    const streamError = once(fanout.writable, 'error');
    await new Promise<void>((resolve, reject) => fanout.writable.write(Buffer.from('first'), (err) => (err ? reject(err) : resolve())));
    fanout.detach(0, new Error('a failed'));
    fanout.detach(1, new Error('b failed'));
    const writeError = await new Promise<Error | null | undefined>((resolve) => fanout.writable.write(Buffer.from('second'), resolve));
    expect(writeError?.message).toBe('every target failed');
    expect(((await streamError)[0] as Error).message).toBe('every target failed');
  });

  it('a write blocked on the last live branch fails when that branch is detached', async () => {
    const fanout = createFanout(2, 16 * KiB);
    fanout.branches.forEach((b) => b.on('error', () => undefined));
    const done = pipeline(source(MiB).stream, fanout.writable);
    await sleep(50);
    fanout.detach(0, new Error('a failed'));
    fanout.detach(1, new Error('b failed'));
    await expect(done).rejects.toThrow('every target failed');
  });

  it('ending with every branch detached fails', async () => {
    const fanout = createFanout(1);
    branch(fanout, 0).on('error', () => undefined);
    fanout.detach(0, new Error('a failed'));
    await expect(pipeline(Readable.from([]), fanout.writable)).rejects.toThrow('every target failed');
  });

  it('destroying the writable with an error destroys the live branches with it', async () => {
    const fanout = createFanout(3);
    const detached = new Error('target c failed');
    const errors = fanout.branches.map((b) => once(b, 'error'));
    fanout.detach(2, detached);
    const boom = new Error('mysqldump died');
    const done = pipeline(source(10 * MiB).stream, fanout.writable);
    await sleep(50);
    fanout.writable.destroy(boom);
    await expect(done).rejects.toBe(boom);
    expect(await Promise.all(errors)).toEqual([[boom], [boom], [detached]]);
    expect(fanout.branches.map((b) => b.errored)).toEqual([boom, boom, detached]);
  });

  it('destroying the writable without an error still errors the live branches', async () => {
    const fanout = createFanout(2);
    const errors = fanout.branches.map((b) => once(b, 'error'));
    fanout.writable.destroy();
    const reasons = (await Promise.all(errors)).map(([err]) => (err as Error).message);
    expect(reasons).toEqual(['the backup stream was aborted', 'the backup stream was aborted']);
  });

  it('after a normal end the branches are left to their consumers, who get end', async () => {
    const fanout = createFanout(3);
    const input = source(300 * KiB);
    // The consumers lag behind, so the writable finishes and is auto-destroyed while they still read.
    const finished = pipeline(input.stream, fanout.writable);
    const drain = fanout.branches.map((b) => digest(b, 1));
    await finished;
    if (!fanout.writable.closed) await once(fanout.writable, 'close');
    expect(fanout.writable.destroyed).toBe(true);
    expect(fanout.branches.map((b) => b.errored)).toEqual([null, null, null]);
    const ended = fanout.branches.map((b) => (b.readableEnded ? Promise.resolve() : once(b, 'end')));
    await Promise.all(ended);
    const expected = { size: 300 * KiB, sha256: input.sha256() };
    expect(await Promise.all(drain)).toEqual([expected, expected, expected]);
  });

  it('after a normal end with unread branches, nothing is destroyed and the data waits', async () => {
    const fanout = createFanout(2);
    // Smaller than a branch's buffers, so the writable can finish while nobody reads.
    const payload = randomBytes(200 * KiB);
    await pipeline(Readable.from([payload]), fanout.writable);
    if (!fanout.writable.closed) await once(fanout.writable, 'close');
    expect(fanout.branches.map((b) => b.destroyed)).toEqual([false, false]);
    const chunks = await Promise.all(
      fanout.branches.map(async (b) => {
        const parts: Buffer[] = [];
        b.on('data', (c: Buffer) => parts.push(c));
        await once(b, 'end');
        return Buffer.concat(parts);
      }),
    );
    expect(chunks.map((c) => c.equals(payload))).toEqual([true, true]);
  });
});
