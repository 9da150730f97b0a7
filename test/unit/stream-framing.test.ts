import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { Coalescer } from '../../src/pipeline/coalesce.js';
import { DemuxStream, TailBuffer } from '../../src/sources/docker-exec.js';
import { SqlLineFilter, type LineHooks } from '../../src/sources/mysql-lines.js';

function frame(type: number, payload: Buffer): Buffer {
  const header = Buffer.alloc(8);
  header.writeUInt8(type, 0);
  header.writeUInt32BE(payload.length, 4);
  return Buffer.concat([header, payload]);
}

/** Cuts `bytes` into chunks at pseudo-random places (deterministic per seed), 1 byte up to `max`. */
function cut(bytes: Buffer, seed: number, max: number): Buffer[] {
  const chunks: Buffer[] = [];
  let state = seed;
  for (let pos = 0; pos < bytes.length; ) {
    state = (state * 1103515245 + 12345) % 2 ** 31;
    const size = 1 + (state % max);
    chunks.push(Buffer.from(bytes.subarray(pos, pos + size)));
    pos += size;
  }
  return chunks;
}

async function collect(stream: NodeJS.ReadableStream): Promise<Buffer[]> {
  const out: Buffer[] = [];
  for await (const chunk of stream) out.push(chunk as Buffer);
  return out;
}

describe('DemuxStream', () => {
  const stdout = [Buffer.from('first line\n'), Buffer.alloc(70_000, 'a'), Buffer.alloc(0), Buffer.from('tail')];
  const stderr = [Buffer.from('warning: one\n'), Buffer.from('error: two\n')];
  const wire = Buffer.concat([frame(1, stdout[0] as Buffer), frame(2, stderr[0] as Buffer), frame(1, stdout[1] as Buffer), frame(1, stdout[2] as Buffer), frame(2, stderr[1] as Buffer), frame(1, stdout[3] as Buffer)]);

  it.each([1, 3, 7, 8, 9, 100, 65_536])('keeps stdout and stderr apart whatever the chunking (chunks up to %i bytes)', async (max) => {
    for (const seed of [1, 2, 3]) {
      const tail = new TailBuffer(8192);
      const out = await collect(Readable.from(cut(wire, seed, max)).pipe(new DemuxStream(tail)));
      expect(Buffer.concat(out).equals(Buffer.concat(stdout))).toBe(true);
      expect(tail.toString()).toBe('warning: one\nerror: two\n');
    }
  });

  it('passes a chunk that holds only payload on as itself, without a copy', async () => {
    const payload = Buffer.alloc(100_000, 'x');
    const framed = frame(1, payload);
    const head = framed.subarray(0, 8);
    const body = Buffer.from(framed.subarray(8));
    const out = await collect(Readable.from([head, body]).pipe(new DemuxStream(new TailBuffer(16))));
    expect(out).toHaveLength(1);
    expect(out[0]).toBe(body);
  });
});

describe('TailBuffer', () => {
  it('keeps the last `limit` bytes across small and large chunks, copying only those', () => {
    const tail = new TailBuffer(10);
    tail.push(Buffer.from('abc'));
    tail.push(Buffer.from('defgh'));
    expect(tail.toString()).toBe('abcdefgh');
    tail.push(Buffer.from('ijkl'));
    expect(tail.toString()).toBe('cdefghijkl');
    // Not from Buffer's shared pool: a copy has memory of its own.
    const big = Buffer.alloc(10_000, 'z');
    big.write('ABCDEFGHIJ', 9_990);
    tail.push(big);
    expect(tail.toString()).toBe('ABCDEFGHIJ');
    expect(tail.bytes().buffer).not.toBe(big.buffer);
    tail.push(Buffer.from('xy'));
    expect(tail.toString()).toBe('CDEFGHIJxy');
  });
});

describe('SqlLineFilter', () => {
  const dump = Buffer.from(
    [
      '-- MariaDB dump',
      'CREATE DATABASE /*!32312 IF NOT EXISTS*/ `shop` /*!40100 DEFAULT CHARACTER SET utf8mb4 */;',
      'USE `shop`;',
      'INSERT INTO `t` VALUES (1,\'' + 'x'.repeat(5000) + '\'),(2,\'y\');',
      '',
      'USE `other`;',
      'INSERT INTO `u` VALUES (3);',
      '-- Dump completed',
    ].join('\n') + '\n',
  );
  const rename: LineHooks = { prefixes: ['USE '], line: (text) => text.replace('`shop`', '`copy`'), dropping: () => false };
  const keep: LineHooks = { prefixes: ['USE '], line: (text) => text, dropping: () => false };

  it.each([1, 5, 31, 33, 64, 1000, 65_536])('rewrites the matching lines and passes the rest whole (chunks up to %i bytes)', async (max) => {
    for (const seed of [4, 5]) {
      const filter = new SqlLineFilter(rename, 'RESTORE_FAILED', 'test').pullFrom(Readable.from(cut(dump, seed, max)));
      const out = Buffer.concat(await collect(filter)).toString('utf8');
      expect(out).toBe(dump.toString('utf8').replace('USE `shop`;', 'USE `copy`;'));
    }
  });

  it('hands a chunk of untouched lines on as itself, without a copy', async () => {
    const rows = Buffer.from('(1,\'a\'),\n(2,\'b\'),\n(3,\'c\');\n'.repeat(1000));
    const filter = new SqlLineFilter(keep, 'RESTORE_FAILED', 'test').pullFrom(Readable.from([rows]));
    const out = await collect(filter);
    expect(out).toHaveLength(1);
    expect((out[0] as Buffer).buffer).toBe(rows.buffer);
    expect((out[0] as Buffer).equals(rows)).toBe(true);
  });

  it('drops the lines of a skipped section but keeps their newlines', async () => {
    let skipping = false;
    const hooks: LineHooks = {
      prefixes: ['USE '],
      line: (text) => {
        skipping = text.includes('`other`');
        return text;
      },
      dropping: () => skipping,
    };
    const filter = new SqlLineFilter(hooks, 'RESTORE_FAILED', 'test').pullFrom(Readable.from(cut(dump, 9, 17)));
    const out = Buffer.concat(await collect(filter)).toString('utf8');
    expect(out.endsWith('USE `other`;\n\n\n')).toBe(true);
    expect(out).toContain("(2,'y');\n");
  });
});

describe('Coalescer', () => {
  const bytes = Buffer.from(Array.from({ length: 300_000 }, (_, i) => (i * 7) % 251));

  it.each([1, 100, 5000, 70_000])('hands on chunks of the set size, the last one shorter, the bytes unchanged (input chunks up to %i bytes)', async (max) => {
    const out = await collect(Readable.from(cut(bytes, 11, max)).pipe(new Coalescer(64 * 1024)));
    expect(Buffer.concat(out).equals(bytes)).toBe(true);
    for (const chunk of out.slice(0, -1)) expect(chunk.length).toBeGreaterThanOrEqual(64 * 1024);
  });

  it('passes a large chunk on as itself when nothing is pending', async () => {
    const big = Buffer.alloc(100_000, 'q');
    const out = await collect(Readable.from([big, Buffer.from('end')]).pipe(new Coalescer(64 * 1024)));
    expect(out[0]).toBe(big);
    expect(Buffer.concat(out).toString('latin1')).toBe('q'.repeat(100_000) + 'end');
  });

  it('hands on nothing for an empty stream', async () => {
    expect(await collect(Readable.from([]).pipe(new Coalescer()))).toEqual([]);
  });
});
