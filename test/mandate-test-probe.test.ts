// The target probe of `backer mandates test` leaves nothing behind, whichever step fails. Pure
// logic over an in-memory Target (the real local and S3 targets are exercised by
// test/mandate-test.test.ts against a daemon).
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { targetWritable } from '../src/checks/target-probe.js';
import { BackerError } from '../src/errors.js';
import type { ObjectInfo, Target } from '../src/targets/types.js';

type Step = 'write' | 'read' | 'list' | 'remove';

function memoryTarget(failAt: Step | null, options: { listsNothing?: boolean; corrupts?: boolean } = {}): { target: Target; objects: Map<string, Buffer> } {
  const objects = new Map<string, Buffer>();
  const fail = (step: Step): void => {
    if (step === failAt) throw new BackerError('TARGET_WRITE_FAILED', `${step} refused`, { component: 'test' });
  };
  // The step's failure as a rejection, like a real target's.
  const attempt = <T>(step: Step, run: () => T): Promise<T> => Promise.resolve().then(() => {
    fail(step);
    return run();
  });
  const info = (key: string): ObjectInfo => ({ key, size: objects.get(key)?.length ?? 0, modified: new Date() });
  const target: Target = {
    name: 'mem',
    type: 'memory',
    async write(key, body) {
      const chunks: Buffer[] = [];
      for await (const c of body) chunks.push(c as Buffer);
      objects.set(key, Buffer.concat(chunks));
      // A write that fails after storing (a lost answer): the probe must still remove the object.
      fail('write');
    },
    writeOnce: () => Promise.reject(new Error('not used')),
    read: (key) =>
      attempt('read', () => {
        const data = objects.get(key) ?? Buffer.alloc(0);
        return Readable.from([options.corrupts === true ? Buffer.from('other') : data]);
      }),
    list: (prefix) => attempt('list', () => (options.listsNothing === true ? [] : [...objects.keys()].filter((k) => k.startsWith(prefix)).map(info))),
    stat: (key) => Promise.resolve(objects.has(key) ? info(key) : undefined),
    remove: (key) => attempt('remove', () => void objects.delete(key)),
    sweep: () => Promise.resolve({ removed: [], failed: [] }),
    close: () => Promise.resolve(),
  };
  return { target, objects };
}

const signal = new AbortController().signal;

describe('target probe', () => {
  it('writes, reads back, lists and deletes a probe at the root', async () => {
    const { target, objects } = memoryTarget(null);
    await expect(targetWritable(target, 'shop', signal)).resolves.toMatch(/^memory target mem: wrote, read back, listed and deleted a \d+-byte probe$/);
    expect(objects.size).toBe(0);
  });

  it.each([
    ['write', /^cannot write to target mem: write refused$/],
    ['read', /^cannot read back from target mem: read refused$/],
    ['list', /^cannot list target mem: list refused$/],
  ] as const)('a failing %s is named, and the probe is removed', async (step, message) => {
    const { target, objects } = memoryTarget(step);
    await expect(targetWritable(target, 'shop', signal)).rejects.toThrow(message);
    expect(objects.size).toBe(0);
  });

  it('bytes that come back different, or a listing without the probe, fail; nothing stays', async () => {
    const corrupt = memoryTarget(null, { corrupts: true });
    await expect(targetWritable(corrupt.target, 'shop', signal)).rejects.toThrow(/^target mem returned 5 bytes instead of the \d+ written$/);
    expect(corrupt.objects.size).toBe(0);
    const blind = memoryTarget(null, { listsNothing: true });
    await expect(targetWritable(blind.target, 'shop', signal)).rejects.toThrow('target mem does not list the object it just stored');
    expect(blind.objects.size).toBe(0);
  });

  it('a probe that cannot be deleted fails the check, naming its key', async () => {
    const { target, objects } = memoryTarget('remove');
    await expect(targetWritable(target, 'shop', signal)).rejects.toThrow(/^target mem did not delete the probe object \.backer-probe-[0-9a-f-]{36}: remove refused$/);
    expect([...objects.keys()]).toEqual([expect.stringMatching(/^\.backer-probe-/) as unknown]);
  });
});
