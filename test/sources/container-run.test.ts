import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { BackerError } from '../../src/errors.js';
import { openContainerRun } from '../../src/sources/container-run.js';
import { docker, HOST_IMAGE } from '../setup/services.js';
import { failingInput, sourceContext } from './suite.js';

const host = (): string => inject('dockerHost');
const NAME = `kit-${randomBytes(3).toString('hex')}`;

describe('container run context (exec with stdin, probe, run)', () => {
  beforeAll(async () => {
    await docker(host(), ['run', '-d', '--name', NAME, '--network', 'none', '-v', '/usr:/usr:ro', '-v', '/etc:/etc:ro', HOST_IMAGE, 'sleep', 'infinity']);
  });
  afterAll(async () => {
    await docker(host(), ['rm', '-f', NAME]).catch(() => undefined);
  });

  it('feeds megabytes into stdin with backpressure and closes it at the end', async () => {
    const run = await openContainerRun(sourceContext('kit'), NAME, 'test');
    const data = randomBytes(8 * 1024 * 1024);
    const out = await run.feed(['sha256sum'], Readable.from([data.subarray(0, 3_000_000), data.subarray(3_000_000)]));
    expect(out.split(' ')[0]).toBe(createHash('sha256').update(data).digest('hex'));
  });

  it('a command that fails on its input rejects with RESTORE_FAILED and its last output lines', async () => {
    const run = await openContainerRun(sourceContext('kit'), NAME, 'test');
    const feed = run.feed(['sh', '-c', 'cat >/dev/null; echo "bad line 3" >&2; exit 3'], Readable.from([Buffer.from('x')]));
    await expect(feed).rejects.toMatchObject({ code: 'RESTORE_FAILED', message: expect.stringContaining('bad line 3') as string });
  });

  it('a command that exits before reading all its input (a SQL error half-way) ends the feed at once', async () => {
    const run = await openContainerRun(sourceContext('kit'), NAME, 'test');
    const started = Date.now();
    const feed = run.feed(['sh', '-c', 'head -c 10 >/dev/null; echo "stopped early" >&2; exit 4'], Readable.from([randomBytes(32 * 1024 * 1024)]));
    await expect(feed).rejects.toMatchObject({ code: 'RESTORE_FAILED', message: expect.stringContaining('exited with code 4: stopped early') as string });
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  it('an input that errors half-way rejects with its error, and the command is not left waiting', async () => {
    const run = await openContainerRun(sourceContext('kit'), NAME, 'test');
    const feed = run.feed(['cat'], failingInput(randomBytes(1 << 20), 1 << 19));
    await expect(feed).rejects.toMatchObject({ code: 'VERIFY_FAILED' });
    const ps = await docker(host(), ['exec', NAME, 'sh', '-c', 'ps -eo comm= 2>/dev/null || ls /proc']);
    expect(ps.split('\n').filter((l) => l.trim() === 'cat')).toEqual([]);
  });

  it('probe finds the first tool that answers and names every missing one', async () => {
    const run = await openContainerRun(sourceContext('kit'), NAME, 'test');
    await expect(run.probe(['no-such-tool', 'sha256sum'])).resolves.toMatchObject({ tool: 'sha256sum' });
    const missing = await run.probe(['no-such-tool', 'nor-this']).catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(BackerError);
    expect(missing).toMatchObject({ code: 'TOOL_MISSING', message: expect.stringContaining('none of no-such-tool, nor-this') as string });
  });

  it('a stopped container is refused with its name', async () => {
    await expect(openContainerRun(sourceContext('kit'), `${NAME}-absent`, 'test')).rejects.toMatchObject({ code: 'CONTAINER_NOT_FOUND' });
  });
});
