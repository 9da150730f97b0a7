/**
 * Local directory target: `<path>/<key>`. Objects appear under their final name only complete
 * (temp file in the same directory, fsync, rename), so a crash or a cancelled run never leaves
 * something that looks like an artifact or a manifest.
 */
import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { link, mkdir, open, readdir, rename, stat, unlink, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join, resolve, sep } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { LocalTargetConfig } from '../config/schema.js';
import { BackerError, type ErrorCode } from '../errors.js';
import type { ObjectInfo, Target, WriteOptions } from './types.js';

/** `.<basename>.partial-<hex>`: hidden, and never a name `list` reports or a key may take. */
const TEMP_PATTERN = /^\..*\.partial-[0-9a-f]+$/;

type KeyUse = 'write' | 'read';

function errnoCode(err: unknown): string | undefined {
  return err instanceof Error && 'code' in err && typeof err.code === 'string' ? err.code : undefined;
}

export function createLocalTarget(config: LocalTargetConfig): Target {
  const root = resolve(config.path);
  const component = `target ${config.name}`;

  const fail = (code: ErrorCode, message: string, key: string, cause?: unknown, permanent = false): BackerError =>
    new BackerError(code, message, { component, details: { target: config.name, key }, cause, permanent });

  /**
   * Maps a key to a path strictly inside the root. Keys come from mandate names and manifests,
   * which may be user-controlled, so anything that could climb out of the root is refused.
   * `allowDir` accepts a trailing slash (list prefixes such as `mandate/`).
   */
  function pathOf(key: string, use: KeyUse, allowDir = false): string {
    const code: ErrorCode = use === 'write' ? 'TARGET_WRITE_FAILED' : 'TARGET_READ_FAILED';
    const segments = key.split('/');
    if (allowDir && segments.length > 1 && segments.at(-1) === '') segments.pop();
    const bad =
      key.includes('\\') ||
      key.includes('\0') ||
      key.startsWith('/') ||
      (!allowDir && key === '') ||
      (key !== '' && segments.some((s) => s === '' || s === '.' || s === '..' || TEMP_PATTERN.test(s)));
    const path = key === '' ? root : join(root, ...segments);
    if (bad || (path !== root && !path.startsWith(root + sep))) {
      throw fail(code, `invalid key "${key}": keys are relative, use "/" and have no "." or ".." segments`, key, undefined, true);
    }
    return path;
  }

  /**
   * Makes the rename/link itself durable, not only the file's bytes. If that fails the object is
   * taken back, so a rejected write never leaves anything under its key. Filesystems that cannot
   * fsync a directory (EINVAL and friends) are accepted as they are.
   */
  async function publish(path: string): Promise<void> {
    try {
      const handle = await open(dirname(path), 'r');
      try {
        await handle.sync();
      } finally {
        await handle.close();
      }
    } catch (err) {
      const code = errnoCode(err);
      if (code === 'EINVAL' || code === 'ENOTSUP' || code === 'EOPNOTSUPP') return;
      await unlink(path).catch(() => undefined);
      throw err;
    }
  }

  /** Creates the temp file next to `path` so the final rename stays on one filesystem. */
  function tempPathFor(path: string): string {
    return join(dirname(path), `.${basename(path)}.partial-${randomBytes(6).toString('hex')}`);
  }

  async function openTemp(path: string): Promise<{ tmp: string; handle: FileHandle }> {
    await mkdir(dirname(path), { recursive: true });
    const tmp = tempPathFor(path);
    return { tmp, handle: await open(tmp, 'wx') };
  }

  async function discard(tmp: string, handle: FileHandle): Promise<void> {
    await handle.close().catch(() => undefined);
    await unlink(tmp).catch(() => undefined);
  }

  async function walk(dir: string, rel: string, out: ObjectInfo[]): Promise<void> {
    let entries;
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch (err) {
      if (errnoCode(err) === 'ENOENT' || errnoCode(err) === 'ENOTDIR') return;
      throw err;
    }
    for (const entry of entries) {
      const key = rel === '' ? entry.name : `${rel}/${entry.name}`;
      // Symlinks are skipped: following them could list (and later delete) files outside the root.
      if (entry.isDirectory()) {
        await walk(join(dir, entry.name), key, out);
      } else if (entry.isFile() && !TEMP_PATTERN.test(entry.name)) {
        const info = await stat(join(dir, entry.name)).catch(() => undefined);
        if (info) out.push({ key, size: info.size, modified: info.mtime });
      }
    }
  }

  return {
    name: config.name,
    type: 'local',

    async write(key: string, body: Readable, options: WriteOptions): Promise<void> {
      const path = pathOf(key, 'write');
      let tmp: string | undefined;
      try {
        await mkdir(dirname(path), { recursive: true });
        tmp = tempPathFor(path);
        // A path-based stream with flush: fsync before close. (A FileHandle stream with
        // autoClose:false left handle.sync() hanging on Node 20.)
        await pipeline(body, createWriteStream(tmp, { flags: 'wx', flush: true }), { signal: options.signal });
        // A cancel that lands after the last byte still means "no backup": honour it before publishing.
        options.signal.throwIfAborted();
        await rename(tmp, path);
        tmp = undefined;
        await publish(path);
      } catch (err) {
        if (tmp) await unlink(tmp).catch(() => undefined);
        body.destroy();
        if (options.signal.aborted) {
          throw fail('JOB_CANCELLED', `writing "${key}" was cancelled`, key, options.signal.reason, true);
        }
        throw fail('TARGET_WRITE_FAILED', `could not write "${key}"`, key, err);
      }
    },

    async writeOnce(key: string, data: Buffer): Promise<void> {
      const path = pathOf(key, 'write');
      let temp: { tmp: string; handle: FileHandle } | undefined;
      try {
        temp = await openTemp(path);
        await temp.handle.writeFile(data);
        await temp.handle.sync();
        await temp.handle.close();
        try {
          // link() fails with EEXIST instead of replacing: atomic for readers and for racing writers.
          await link(temp.tmp, path);
        } catch (err) {
          const code = errnoCode(err);
          if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP' && code !== 'ENOSYS') throw err;
          // Filesystems without hard links: still atomic for readers, only racing writers can collide.
          const existing = await stat(path).catch(() => undefined);
          if (existing) throw Object.assign(new Error('file exists'), { code: 'EEXIST' });
          await rename(temp.tmp, path);
        }
        await unlink(temp.tmp).catch(() => undefined);
        temp = undefined;
        await publish(path);
      } catch (err) {
        if (temp) await discard(temp.tmp, temp.handle);
        if (errnoCode(err) === 'EEXIST') {
          throw fail('TARGET_WRITE_FAILED', `"${key}" already exists and is not overwritten`, key, err, true);
        }
        throw fail('TARGET_WRITE_FAILED', `could not write "${key}"`, key, err);
      }
    },

    async read(key: string): Promise<Readable> {
      const path = pathOf(key, 'read');
      let handle: FileHandle;
      try {
        handle = await open(path, 'r');
      } catch (err) {
        const code = errnoCode(err);
        if (code === 'ENOENT' || code === 'ENOTDIR') throw fail('BACKUP_NOT_FOUND', `"${key}" does not exist`, key, err, true);
        throw fail('TARGET_READ_FAILED', `could not read "${key}"`, key, err);
      }
      const info = await handle.stat().catch(async (err: unknown) => {
        await handle.close();
        throw fail('TARGET_READ_FAILED', `could not read "${key}"`, key, err);
      });
      if (!info.isFile()) {
        await handle.close();
        throw fail('BACKUP_NOT_FOUND', `"${key}" is not a file`, key, undefined, true);
      }
      return handle.createReadStream();
    },

    async list(prefix: string): Promise<ObjectInfo[]> {
      // Walk only below the deepest directory the prefix names, then filter by the full prefix.
      const slash = prefix.lastIndexOf('/');
      const dirKey = slash < 0 ? '' : prefix.slice(0, slash + 1);
      const dir = pathOf(dirKey, 'read', true);
      pathOf(prefix, 'read', true);
      const out: ObjectInfo[] = [];
      try {
        await walk(dir, dirKey.replace(/\/$/, ''), out);
      } catch (err) {
        throw fail('TARGET_READ_FAILED', `could not list "${prefix}"`, prefix, err);
      }
      return out.filter((o) => o.key.startsWith(prefix)).sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    },

    async stat(key: string): Promise<ObjectInfo | undefined> {
      const path = pathOf(key, 'read');
      try {
        const info = await stat(path);
        return info.isFile() ? { key, size: info.size, modified: info.mtime } : undefined;
      } catch (err) {
        const code = errnoCode(err);
        if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
        throw fail('TARGET_READ_FAILED', `could not stat "${key}"`, key, err);
      }
    },

    async remove(key: string): Promise<void> {
      const path = pathOf(key, 'write');
      // Empty parent directories are kept: pruning them races with a backup creating its file there.
      try {
        await unlink(path);
      } catch (err) {
        const code = errnoCode(err);
        if (code === 'ENOENT' || code === 'ENOTDIR') return;
        throw fail('TARGET_WRITE_FAILED', `could not remove "${key}"`, key, err);
      }
    },

    async close(): Promise<void> {
      // Nothing held open between calls.
    },
  };
}
