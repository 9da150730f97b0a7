/**
 * The one suite every middleware passes (round trips, a large stream, garbage, abort), plus the
 * stream and process helpers the middleware tests share.
 */
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { getPriority } from 'node:os';
import { Readable, Writable, type Duplex } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, expect, it } from 'vitest';
import { BackerError, type ErrorCode } from '../../src/errors.js';
import type { Middleware } from '../../src/middleware/types.js';
import { DEFAULT_WORK_NICE, setWorkNice } from '../../src/util/work-priority.js';

const MiB = 1024 * 1024;
const CHUNK = 64 * 1024;

/** Collects everything written to it; for small outputs only. */
export class BufferSink extends Writable {
  private readonly chunks: Buffer[] = [];

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.chunks.push(chunk);
    callback();
  }

  get data(): Buffer {
    return Buffer.concat(this.chunks);
  }
}

/** Hashes what flows through without keeping it, and can run a hook on the first chunk. */
export class HashSink extends Writable {
  private readonly hash = createHash('sha256');
  bytes = 0;

  constructor(private readonly onFirstChunk?: () => void) {
    super();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    if (this.bytes === 0) this.onFirstChunk?.();
    this.bytes += chunk.length;
    this.hash.update(chunk);
    callback();
  }

  digest(): string {
    return this.hash.digest('hex');
  }
}

/** Half random, half repetitive, so compressors do real work and the input is never held whole. */
export function generatedStream(size: number): { stream: Readable; sha256: () => string } {
  const hash = createHash('sha256');
  let produced = 0;
  const stream = new Readable({
    read() {
      if (produced >= size) {
        this.push(null);
        return;
      }
      const n = Math.min(CHUNK, size - produced);
      const chunk = Buffer.alloc(n, `row ${produced} of the generated dump;\n`);
      randomBytes(Math.floor(n / 2)).copy(chunk);
      hash.update(chunk);
      produced += n;
      this.push(chunk);
    },
  });
  return { stream, sha256: () => hash.digest('hex') };
}

/** Pushes one buffer through the given stages and returns the output. */
export async function transform(input: Buffer, ...stages: Duplex[]): Promise<Buffer> {
  const sink = new BufferSink();
  await pipeline([Readable.from(input.length === 0 ? [] : [input]), ...stages, sink]);
  return sink.data;
}

/** The rejection of `promise`, which must be a BackerError with `code`. */
export async function expectBackerError(promise: Promise<unknown>, code: ErrorCode): Promise<BackerError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(BackerError);
  expect(err).toMatchObject({ code });
  return err as BackerError;
}

/** Direct children of this process (zombies included, which is the point). */
export function childPids(parent: number = process.pid): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue; // exited while we looked
    }
    // The command name may contain spaces and parentheses: fields start after the last ')'.
    const ppid = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1];
    if (Number(ppid) === parent) pids.push(Number(entry));
  }
  return pids;
}

export function isAlive(pid: number): boolean {
  try {
    readFileSync(`/proc/${pid}/stat`);
    return true;
  } catch {
    return false;
  }
}

/** argv of a running process as it is visible to every user. */
export function cmdline(pid: number): string[] {
  return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter((a) => a !== '');
}

/** Environment of a running process (readable by its owner and root only). */
export function environ(pid: number): string[] {
  return readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').filter((a) => a !== '');
}

export async function waitFor<T>(probe: () => T | undefined, what: string, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

export interface ToolResult {
  code: number | null;
  stdout: Buffer;
  stderr: string;
}

/** Runs a real program outside the code under test, as a user would on the command line. */
export function runTool(command: string, args: string[], input: Buffer, env: Record<string, string> = {}): Promise<ToolResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', ...env } });
    const out: Buffer[] = [];
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdin.on('error', () => undefined); // the exit code tells
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout: Buffer.concat(out), stderr }));
    child.stdin.end(input);
  });
}

/** A process's nice value (field 19 of /proc/PID/stat), or undefined once it is gone. */
export function niceOf(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]);
  } catch {
    return undefined; // exited while we looked
  }
}

/** A process's command name (/proc/PID/comm), or undefined once it is gone. */
function commOf(pid: number): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return undefined;
  }
}

/**
 * Starts one direction's stream and returns the nice value of the program it runs (one of
 * `programs`), then stops the stream and waits until that program is gone.
 */
async function programNice(m: Middleware, direction: 'encode' | 'decode', programs: string[]): Promise<number> {
  const before = new Set(childPids());
  const controller = new AbortController();
  const stream = m[direction](controller.signal);
  const ended = new Promise<unknown>((resolve) => stream.once('error', resolve));
  const pid = await waitFor(() => childPids().find((p) => !before.has(p) && programs.includes(commOf(p) ?? '')), `${programs.join(' or ')} to start`);
  const nice = niceOf(pid);
  controller.abort(new Error('test done'));
  expect(await ended).toMatchObject({ code: 'JOB_CANCELLED' });
  await waitFor(() => (isAlive(pid) ? undefined : true), `${programs.join(' or ')} to exit`);
  if (nice === undefined) throw new Error(`${pid} exited before its priority was read`);
  return nice;
}

/**
 * `programs`: the command names of what the middleware runs for a stream (its `tools`); none
 * (gzip): its work runs in Backer's own threads.
 */
export function describeMiddlewareSuite(label: string, make: () => Middleware, programs: string[] = []): void {
  describe(`middleware suite: ${label}`, () => {
    const signal = (): AbortSignal => new AbortController().signal;

    if (programs.length > 0) {
      it(`runs ${programs.join(' or ')} queue.nice steps below Backer's priority, in both directions (0: at Backer's)`, async () => {
        const own = getPriority();
        const expected = Math.min(19, own + DEFAULT_WORK_NICE);
        try {
          for (const direction of ['encode', 'decode'] as const) expect(await programNice(make(), direction, programs)).toBe(expected);
          setWorkNice(0);
          for (const direction of ['encode', 'decode'] as const) expect(await programNice(make(), direction, programs)).toBe(own);
        } finally {
          setWorkNice(DEFAULT_WORK_NICE);
        }
      });
    } else {
      it('starts no program for a stream (its work runs in Backer\'s own threads, not lowered by queue.nice)', () => {
        const before = new Set(childPids());
        const m = make();
        const streams = [m.encode(signal()), m.decode(signal())];
        const started = childPids().filter((p) => !before.has(p));
        for (const s of streams) s.destroy();
        expect(started).toEqual([]);
      });
    }

    it('describes itself', () => {
      const m = make();
      expect(m.name).toMatch(/\S/);
      expect(m.type).toMatch(/^[a-z0-9-]+$/);
      expect(m.extension).toMatch(/^\.[a-z0-9]+$/);
      expect(m.mime).toMatch(/^[a-z]+\/[a-z0-9.+-]+$/);
    });

    it('round-trips a few KiB', async () => {
      const m = make();
      const input = Buffer.concat([Buffer.from('CREATE TABLE t (id int);\n'.repeat(100)), randomBytes(4096)]);
      const encoded = await transform(input, m.encode(signal()));
      expect(encoded.length).toBeGreaterThan(0);
      expect(encoded.includes(input.subarray(0, 64))).toBe(false);
      const decoded = await transform(encoded, m.decode(signal()));
      expect(decoded.equals(input)).toBe(true);
    });

    it('round-trips an empty input', async () => {
      const m = make();
      const encoded = await transform(Buffer.alloc(0), m.encode(signal()));
      const decoded = await transform(encoded, m.decode(signal()));
      expect(decoded.length).toBe(0);
    });

    it('round-trips a 32 MiB stream without holding it', async () => {
      const m = make();
      const source = generatedStream(32 * MiB);
      const sink = new HashSink();
      await pipeline(source.stream, m.encode(signal()), m.decode(signal()), sink);
      expect(sink.bytes).toBe(32 * MiB);
      expect(sink.digest()).toBe(source.sha256());
    });

    it('fails on garbage input to decode', async () => {
      const m = make();
      const garbage = Buffer.concat([Buffer.from('this is not an encoded stream\n'), randomBytes(8192)]);
      await expectBackerError(transform(garbage, m.decode(signal())), 'MIDDLEWARE_FAILED');
    });

    it.each(['encode', 'decode'] as const)('errors and leaves no child process when aborted mid-%s', async (direction) => {
      const m = make();
      const before = new Set(childPids());
      const controller = new AbortController();
      let seen: number[] = [];
      let abortedAt = 0;
      const sink = new HashSink(() => {
        seen = childPids().filter((p) => !before.has(p));
        abortedAt = Date.now();
        controller.abort(new Error('test abort'));
      });
      const source = generatedStream(1024 * MiB).stream;
      const stages =
        direction === 'encode'
          ? [m.encode(controller.signal)]
          : [m.encode(new AbortController().signal), m.decode(controller.signal)];
      await expectBackerError(pipeline([source, ...stages, sink]), 'JOB_CANCELLED');
      expect(sink.bytes).toBeLessThan(1024 * MiB);
      // pipeline() settles on the first error, not once every stage has closed: the stages it
      // destroyed in turn may still be reaping their child, so give them a moment.
      const leftover = (): number[] => [...new Set([...seen.filter(isAlive), ...childPids().filter((p) => !before.has(p))])];
      await waitFor(() => (leftover().length === 0 ? true : undefined), 'child processes to exit', 5_000).catch(() => undefined);
      expect(leftover()).toEqual([]);
      // Promptly, i.e. by SIGTERM, not by a last-resort SIGKILL after a grace period.
      expect(Date.now() - abortedAt).toBeLessThan(3_000);
    });
  });
}
