import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { Readable, type Duplex } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, expect, it } from 'vitest';
import type { Middleware } from '../../src/middleware/types.js';
import { spawnDuplex, type SpawnDuplexOptions } from '../../src/util/spawn-duplex.js';
import {
  BufferSink,
  childPids,
  describeMiddlewareSuite,
  expectBackerError,
  generatedStream,
  HashSink,
  isAlive,
  transform,
  waitFor,
} from '../middleware/suite.js';

const MiB = 1024 * 1024;
const COMPONENT = 'test spawn';

function run(command: string, args: string[], extra: Partial<SpawnDuplexOptions> = {}): Duplex {
  return spawnDuplex({ command, args, signal: new AbortController().signal, component: COMPONENT, ...extra });
}

/** The real gzip program behind spawnDuplex must pass the same suite as the middleware. */
function programGzip(): Middleware {
  return {
    name: 'gzip-program',
    type: 'gzip-program',
    extension: '.gz',
    mime: 'application/gzip',
    encode: (signal) => spawnDuplex({ command: 'gzip', args: ['-c'], signal, component: COMPONENT }),
    decode: (signal) => spawnDuplex({ command: 'gzip', args: ['-d', '-c'], signal, component: COMPONENT }),
  };
}

/** Resolves with the pid of the one child that appeared since `before`. */
function newChild(before: Set<number>): Promise<number> {
  return waitFor(() => childPids().find((p) => !before.has(p)), 'the child to start');
}

describeMiddlewareSuite('spawnDuplex running gzip', programGzip, ['gzip']);

describe('spawnDuplex', () => {
  it('passes data through and ends after a clean exit', async () => {
    const out = await transform(Buffer.from('hello\n'), run('cat', []));
    expect(out.toString()).toBe('hello\n');
  });

  it('ends cleanly for a late reader while a grandchild holds stderr open', async () => {
    // The background sleep keeps stderr open past the exit; success must not wait for it.
    const d = run('sh', ['-c', 'cat; sleep 0.1 </dev/null >/dev/null &']);
    d.end(Buffer.from('payload'));
    await new Promise((r) => setTimeout(r, 300));
    const sink = new BufferSink();
    await pipeline(d, sink);
    expect(sink.data.toString()).toBe('payload');
  });

  it('gives the child only PATH and the given env', async () => {
    process.env['BACKER_TEST_SPY'] = 'must-not-leak';
    try {
      const out = await transform(Buffer.alloc(0), run('env', [], { env: { FOO: 'bar' } }));
      const names = out.toString().trim().split('\n').map((l) => l.split('=')[0]);
      expect(names.sort()).toEqual(['FOO', 'PATH']);
      expect(out.toString()).toContain('FOO=bar');
    } finally {
      delete process.env['BACKER_TEST_SPY'];
    }
  });

  it('fails with the exit code and stderr, never the env, on a non-zero exit', async () => {
    const d = run('sh', ['-c', 'cat >/dev/null; echo "  disk on fire  " >&2; exit 3'], { env: { TOKEN: 'hunter2' } });
    const err = await expectBackerError(transform(Buffer.from('data'), d), 'MIDDLEWARE_FAILED');
    expect(err.message).toBe('sh exited with code 3: disk on fire');
    expect(err.component).toBe(COMPONENT);
    expect(err.details).toMatchObject({ command: 'sh', exit_code: 3, stderr: 'disk on fire' });
    expect(JSON.stringify(err.details)).not.toContain('hunter2');
  });

  it('keeps only the tail of a large stderr', async () => {
    const d = run('sh', ['-c', 'head -c 100000 /dev/zero | tr "\\0" x >&2; echo LAST >&2; exit 1']);
    const err = await expectBackerError(transform(Buffer.alloc(0), d), 'MIDDLEWARE_FAILED');
    expect(err.message.length).toBeLessThan(9 * 1024);
    expect(err.message).toMatch(/LAST$/);
  });

  it('errors instead of ending when the child fails after closing its stdout', async () => {
    const d = run('sh', ['-c', 'cat; exec >&-; sleep 0.2; exit 5']);
    let ended = false;
    d.on('end', () => (ended = true));
    const err = await expectBackerError(transform(Buffer.from('partial output'), d), 'MIDDLEWARE_FAILED');
    expect(err.message).toContain('exited with code 5');
    expect(ended).toBe(false);
  });

  it('reports a child killed by a signal', async () => {
    const err = await expectBackerError(transform(Buffer.from('x'), run('sh', ['-c', 'kill -KILL $$'])), 'MIDDLEWARE_FAILED');
    expect(err.message).toContain('was killed by SIGKILL');
  });

  it('fails with TOOL_MISSING for a program that is not installed', async () => {
    const err = await expectBackerError(transform(Buffer.alloc(256 * 1024, 1), run('backer-no-such-tool', ['-x'])), 'TOOL_MISSING');
    expect(err.message).toContain('backer-no-such-tool');
  });

  it('surfaces an early exit while input is still being written as the child’s failure', async () => {
    const source = generatedStream(64 * MiB);
    const err = await expectBackerError(pipeline(source.stream, run('sh', ['-c', 'head -c 1000 >/dev/null; exit 7']), new HashSink()), 'MIDDLEWARE_FAILED');
    expect(err.message).toContain('exited with code 7');
  });

  it('fails when the child exits 0 without reading all of its input', async () => {
    const source = generatedStream(64 * MiB);
    const err = await expectBackerError(pipeline(source.stream, run('head', ['-c', '10']), new HashSink()), 'MIDDLEWARE_FAILED');
    expect(err.message).toContain('exited before reading all of its input');
  });

  it('applies backpressure in both directions', async () => {
    let pulled = 0;
    const total = 64 * MiB;
    const source = new Readable({
      read() {
        if (pulled >= total) this.push(null);
        else {
          pulled += 64 * 1024;
          this.push(Buffer.alloc(64 * 1024, 7));
        }
      },
    });
    const d = run('cat', []);
    source.pipe(d);
    await new Promise((r) => setTimeout(r, 500));
    // Nobody reads the output: only pipe and stream buffers may fill, not the whole input.
    expect(pulled).toBeLessThan(8 * MiB);
    const sink = new HashSink();
    await pipeline(d, sink);
    expect(sink.bytes).toBe(total);
  });

  it('kills the child when the signal aborts', async () => {
    const before = new Set(childPids());
    const controller = new AbortController();
    const d = run('sleep', ['30'], { signal: controller.signal });
    const pid = await newChild(before);
    const errored = once(d, 'error');
    const started = Date.now();
    controller.abort();
    const [err] = (await errored) as [unknown];
    expect(err).toMatchObject({ code: 'JOB_CANCELLED' });
    // The error comes only after the child was reaped, and promptly (SIGTERM, not the SIGKILL fallback).
    expect(isAlive(pid)).toBe(false);
    expect(Date.now() - started).toBeLessThan(2_000);
  });

  it('kills the child when the stream is destroyed', async () => {
    const before = new Set(childPids());
    const d = run('cat', []);
    const pid = await newChild(before);
    const closed = once(d, 'close');
    const started = Date.now();
    d.destroy();
    await closed;
    expect(isAlive(pid)).toBe(false);
    expect(Date.now() - started).toBeLessThan(2_000);
  });

  it('does not start the child when the signal is already aborted', async () => {
    const before = new Set(childPids());
    const controller = new AbortController();
    controller.abort();
    const d = run('sleep', ['30'], { signal: controller.signal });
    await expectBackerError(pipeline(Readable.from([]), d, new BufferSink()), 'JOB_CANCELLED');
    expect(childPids().filter((p) => !before.has(p))).toEqual([]);
  });

  it('uses SIGKILL on a child that ignores SIGTERM', async () => {
    const before = new Set(childPids());
    // An ignored signal stays ignored across exec, so sleep itself ignores SIGTERM.
    const d = run('sh', ['-c', 'trap "" TERM; exec sleep 30']);
    const pid = await newChild(before);
    await waitFor(() => (isAlive(pid) && readComm(pid) === 'sleep' ? true : undefined), 'sleep to run');
    const started = Date.now();
    const closed = once(d, 'close');
    d.destroy();
    await closed;
    expect(Date.now() - started).toBeGreaterThanOrEqual(4_000);
    expect(isAlive(pid)).toBe(false);
  });
});

function readComm(pid: number): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return undefined;
  }
}
