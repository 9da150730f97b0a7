/**
 * The S3 driver (and with it the AWS SDK) is imported at a target's first use, not at start
 * (src/targets/lazy.ts): calls go to the driver built once, a target never used builds nothing,
 * a failed build fails every call with its error, and the plugin registered in
 * src/targets/index.ts declares what src/targets/s3.ts declares.
 */
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { targetPlugins } from '../../src/targets/index.js';
import { lazyTarget } from '../../src/targets/lazy.js';
import { s3Plugin } from '../../src/targets/s3.js';
import type { Target } from '../../src/targets/types.js';

function recordingTarget(calls: string[]): Target {
  return {
    name: 't',
    type: 'fake',
    write: (key) => Promise.resolve(void calls.push(`write ${key}`)),
    writeOnce: (key) => Promise.resolve(void calls.push(`writeOnce ${key}`)),
    read: (key) => Promise.resolve(Readable.from([`body of ${key}`])),
    list: (prefix) => Promise.resolve([{ key: `${prefix}a`, size: 1, modified: new Date(0) }]),
    stat: () => Promise.resolve(undefined),
    remove: (key) => Promise.resolve(void calls.push(`remove ${key}`)),
    sweep: () => Promise.resolve({ removed: [], failed: [] }),
    close: () => Promise.resolve(void calls.push('close')),
  };
}

describe('lazyTarget', () => {
  it('builds the driver once, at the first call, and delegates every call to it', async () => {
    const calls: string[] = [];
    let builds = 0;
    const target = lazyTarget('t', 'fake', () => {
      builds++;
      return Promise.resolve(recordingTarget(calls));
    });
    expect([target.name, target.type, builds]).toEqual(['t', 'fake', 0]);
    await target.write('k1', Readable.from(['x']), { signal: new AbortController().signal });
    expect(await target.list('p/')).toEqual([{ key: 'p/a', size: 1, modified: new Date(0) }]);
    await target.remove('k2');
    await target.close();
    expect(builds).toBe(1);
    expect(calls).toEqual(['write k1', 'remove k2', 'close']);
  });

  it('closes without building a driver that was never used', async () => {
    let builds = 0;
    const target = lazyTarget('t', 'fake', () => {
      builds++;
      return Promise.resolve(recordingTarget([]));
    });
    await target.close();
    expect(builds).toBe(0);
  });

  it('fails every call with the error of a failed build, and still closes', async () => {
    const target = lazyTarget('t', 'fake', () => Promise.reject(new Error('bad endpoint')));
    await expect(target.stat('k')).rejects.toThrow('bad endpoint');
    await expect(target.writeOnce('m', Buffer.from('{}'))).rejects.toThrow('bad endpoint');
    await expect(target.close()).resolves.toBeUndefined();
  });
});

describe('the registered S3 plugin', () => {
  it('declares the type, options schema and tools of src/targets/s3.ts', () => {
    const registered = targetPlugins.find((p) => p.type === 's3');
    expect(registered?.options).toBe(s3Plugin.options);
    expect(registered?.tools).toEqual(s3Plugin.tools);
  });
});
