import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createGzipMiddleware } from '../../src/middleware/gzip.js';
import { createMiddleware } from '../../src/middleware/index.js';
import { describeMiddlewareSuite, expectBackerError, runTool, transform } from './suite.js';

const make = (level = 6) => createGzipMiddleware({ name: 'gz', type: 'gzip', level });
const signal = (): AbortSignal => new AbortController().signal;
const sample = Buffer.concat([Buffer.from('INSERT INTO t VALUES (1, "hello");\n'.repeat(2000)), randomBytes(10_000)]);

describeMiddlewareSuite('gzip', () => make());

describe('gzip middleware against the real gzip program', () => {
  it('is chosen by createMiddleware', () => {
    const m = createMiddleware({ name: 'gz', type: 'gzip', level: 6 });
    expect(m).toMatchObject({ name: 'gz', type: 'gzip', extension: '.gz', mime: 'application/gzip' });
  });

  it('writes output that `gzip -d` decompresses', async () => {
    const encoded = await transform(sample, make().encode(signal()));
    const result = await runTool('gzip', ['-d', '-c'], encoded);
    expect(result.code).toBe(0);
    expect(result.stdout.equals(sample)).toBe(true);
  });

  it('decodes what the `gzip` program wrote', async () => {
    const result = await runTool('gzip', ['-c', '-9'], sample);
    expect(result.code).toBe(0);
    const decoded = await transform(result.stdout, make().decode(signal()));
    expect(decoded.equals(sample)).toBe(true);
  });

  it('honours the level', async () => {
    const text = Buffer.from('SELECT * FROM customers WHERE id = 42;\n'.repeat(5000) + randomBytes(2000).toString('hex'));
    const fast = await transform(text, make(1).encode(signal()));
    const small = await transform(text, make(9).encode(signal()));
    expect(small.length).toBeLessThan(fast.length);
  });

  it('fails on a truncated stream instead of ending cleanly', async () => {
    const encoded = await transform(sample, make().encode(signal()));
    const err = await expectBackerError(transform(encoded.subarray(0, encoded.length - 100), make().decode(signal())), 'MIDDLEWARE_FAILED');
    expect(err.component).toBe('middleware gzip');
  });
});
