import { randomBytes } from 'node:crypto';
import { pipeline } from 'node:stream/promises';
import { describe, expect, it } from 'vitest';
import { parseConfigText } from '../../src/config/load.js';
import { createMiddleware } from '../../src/middleware/index.js';
import { createZstdMiddleware } from '../../src/middleware/zstd.js';
import { childPids, cmdline, describeMiddlewareSuite, expectBackerError, generatedStream, HashSink, runTool, transform } from './suite.js';

const make = (level = 3, threads = 1) => createZstdMiddleware({ name: 'squeeze', type: 'zstd', level, threads });
const signal = (): AbortSignal => new AbortController().signal;
const sample = Buffer.concat([Buffer.from('INSERT INTO t VALUES (1, "hello");\n'.repeat(2000)), randomBytes(10_000)]);

describeMiddlewareSuite('zstd', () => make(), ['zstd']);

describe('zstd middleware against the real zstd program', () => {
  it('is chosen by createMiddleware', () => {
    const m = createMiddleware({ name: 'squeeze', type: 'zstd', level: 3, threads: 1 });
    expect(m).toMatchObject({ name: 'squeeze', type: 'zstd', extension: '.zst', mime: 'application/zstd' });
  });

  it('writes output that `zstd -d` decompresses', async () => {
    const encoded = await transform(sample, make().encode(signal()));
    expect(encoded.length).toBeLessThan(sample.length);
    const result = await runTool('zstd', ['-d', '-c'], encoded);
    expect(result.code).toBe(0);
    expect(result.stdout.equals(sample)).toBe(true);
  });

  it('decodes what the `zstd` program wrote', async () => {
    const result = await runTool('zstd', ['-c', '-19'], sample);
    expect(result.code).toBe(0);
    const decoded = await transform(result.stdout, make().decode(signal()));
    expect(decoded.equals(sample)).toBe(true);
  });

  it('honours the level', async () => {
    const text = Buffer.from('SELECT * FROM customers WHERE id = 42;\n'.repeat(5000) + randomBytes(20_000).toString('hex'));
    const fast = await transform(text, make(1).encode(signal()));
    const small = await transform(text, make(19).encode(signal()));
    expect(small.length).toBeLessThan(fast.length);
  });

  it('runs zstd with the level and thread count as its arguments, 0 threads meaning all cores', async () => {
    const before = new Set(childPids());
    let argv: string[][] = [];
    const sink = new HashSink(() => {
      argv = childPids()
        .filter((p) => !before.has(p))
        .map((p) => cmdline(p));
    });
    const source = generatedStream(8 * 1024 * 1024);
    await pipeline(source.stream, make(7, 0).encode(signal()), make().decode(signal()), sink);
    expect(sink.digest()).toBe(source.sha256());
    expect(argv).toEqual(expect.arrayContaining([['zstd', '-q', '-c', '-7', '-T0'], ['zstd', '-d', '-q', '-c']]));
  });

  it('fails with MIDDLEWARE_FAILED on a truncated stream instead of ending cleanly', async () => {
    const encoded = await transform(sample, make().encode(signal()));
    const err = await expectBackerError(transform(encoded.subarray(0, encoded.length - 20), make().decode(signal())), 'MIDDLEWARE_FAILED');
    expect(err.message).toMatch(/^zstd exited with code \d+/);
  });
});

describe('zstd middleware config', () => {
  const parse = (entry: string) => parseConfigText(`middleware:\n  - ${entry}\n`, 'backer.yml', {}, '/etc/backer');

  it('defaults to level 3 on one thread', () => {
    const { config, problems } = parse('{ name: z, type: zstd }');
    expect(problems).toEqual([]);
    expect(config.middleware).toEqual([{ name: 'z', type: 'zstd', level: 3, threads: 1 }]);
  });

  it('refuses levels outside 1..19 and negative thread counts, with the path', () => {
    expect(parse('{ name: z, type: zstd, level: 20, threads: -1 }').problems).toEqual([
      { where: 'backer.yml: middleware[0].level', message: 'expected a number at most 19' },
      { where: 'backer.yml: middleware[0].threads', message: 'expected a number at least 0' },
    ]);
  });
});
