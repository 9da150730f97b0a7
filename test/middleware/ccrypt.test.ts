import { randomBytes } from 'node:crypto';
import { pipeline } from 'node:stream/promises';
import { describe, expect, it } from 'vitest';
import { createCcryptMiddleware } from '../../src/middleware/ccrypt.js';
import { createMiddleware } from '../../src/middleware/index.js';
import {
  childPids,
  cmdline,
  describeMiddlewareSuite,
  environ,
  expectBackerError,
  generatedStream,
  HashSink,
  runTool,
  transform,
} from './suite.js';

const KEY = 'correct horse battery staple 7f3a';
const make = (key = KEY) => createCcryptMiddleware({ name: 'crypt', type: 'ccrypt', key });
const signal = (): AbortSignal => new AbortController().signal;
const sample = Buffer.concat([Buffer.from('INSERT INTO secrets VALUES ("launch codes");\n'.repeat(200)), randomBytes(5000)]);

describeMiddlewareSuite('ccrypt', () => make(), ['ccrypt']);

describe('ccrypt middleware against the real ccrypt program', () => {
  it('is chosen by createMiddleware', () => {
    const m = createMiddleware({ name: 'crypt', type: 'ccrypt', key: KEY });
    expect(m).toMatchObject({ name: 'crypt', type: 'ccrypt', extension: '.cpt', mime: 'application/x-ccrypt' });
  });

  it('writes output that a plain `ccrypt -d` decrypts', async () => {
    const encoded = await transform(sample, make().encode(signal()));
    const result = await runTool('ccrypt', ['-d', '-E', 'MY_KEY'], encoded, { MY_KEY: KEY });
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout.equals(sample)).toBe(true);
  });

  it('decrypts what a plain `ccrypt -e` wrote', async () => {
    const result = await runTool('ccrypt', ['-e', '-E', 'MY_KEY'], sample, { MY_KEY: KEY });
    expect(result.code).toBe(0);
    const decoded = await transform(result.stdout, make().decode(signal()));
    expect(decoded.equals(sample)).toBe(true);
  });

  it('fails with MIDDLEWARE_FAILED on a wrong key, without revealing either key', async () => {
    const encoded = await transform(sample, make().encode(signal()));
    const wrong = 'not the key 91c2';
    const err = await expectBackerError(transform(encoded, make(wrong).decode(signal())), 'MIDDLEWARE_FAILED');
    expect(err.message).toMatch(/ccrypt exited with code \d+: .*key does not match/);
    const visible = JSON.stringify({ message: err.message, details: err.details });
    expect(visible).not.toContain(KEY);
    expect(visible).not.toContain(wrong);
  });

  it('never passes the key in argv, nor Backer’s environment to ccrypt', async () => {
    process.env['BACKER_TEST_SPY'] = 'must-not-leak';
    try {
      const before = new Set(childPids());
      let seen: { argv: string[]; env: string[] }[] = [];
      // Inspect the children while they run: the stream is long enough to still be flowing.
      const sink = new HashSink(() => {
        seen = childPids()
          .filter((p) => !before.has(p))
          .map((p) => ({ argv: cmdline(p), env: environ(p) }));
      });
      const source = generatedStream(8 * 1024 * 1024);
      await pipeline(source.stream, make().encode(signal()), make().decode(signal()), sink);
      expect(sink.digest()).toBe(source.sha256());
      expect(seen.map((s) => s.argv[0])).toEqual(['ccrypt', 'ccrypt']);
      for (const { argv, env } of seen) {
        expect(argv).toEqual(['ccrypt', expect.stringMatching(/^-[ed]$/), '-q', '-E', 'BACKER_CCRYPT_KEY']);
        expect(argv.join(' ')).not.toContain(KEY);
        // Only PATH and the key variable (which ccrypt blanks once it has read it).
        expect(env.map((e) => e.split('=')[0]).sort()).toEqual(['BACKER_CCRYPT_KEY', 'PATH']);
        expect(env.join('\n')).not.toContain('must-not-leak');
      }
    } finally {
      delete process.env['BACKER_TEST_SPY'];
    }
  });
});
