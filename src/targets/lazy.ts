import type { Target } from './types.js';

/**
 * A target whose driver is built at its first use. The S3 driver loads the AWS SDK, a large share
 * of Backer's start-up (≈0.3–0.5 s on 2 cores): a `backup --once` or a daemon start that does not
 * touch S3 yet should not wait for it. An error of the driver's construction rejects every call.
 */
export function lazyTarget(name: string, type: string, build: () => Promise<Target>): Target {
  let driver: Promise<Target> | undefined;
  const get = (): Promise<Target> => (driver ??= build());
  return {
    name,
    type,
    write: async (key, body, options) => (await get()).write(key, body, options),
    writeOnce: async (key, data, options) => (await get()).writeOnce(key, data, options),
    read: async (key) => (await get()).read(key),
    list: async (prefix) => (await get()).list(prefix),
    stat: async (key) => (await get()).stat(key),
    remove: async (key) => (await get()).remove(key),
    sweep: async (options) => (await get()).sweep(options),
    close: async () => {
      // Never built: nothing to close. Built with an error: that error was reported by the call that built it.
      const built = driver === undefined ? null : await driver.catch(() => null);
      await built?.close();
    },
  };
}
