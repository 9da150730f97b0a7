/**
 * Local directory target: `<path>/<key>`. Objects appear under their final name only complete
 * (temp file in the same directory, fsync, hard link), so a crash or a cancelled run never leaves
 * something that looks like an artifact or a manifest. Nothing is ever replaced: an existing
 * name makes the write fail. Files are 0600 and the directories Backer creates 0700, unless the
 * target's `file_mode` / `dir_mode` say otherwise (dumps hold whole databases).
 */
import { createWriteStream, type BigIntStats } from 'node:fs';
import { chmod, link, mkdir, open, readdir, rename, stat, unlink, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join, resolve, sep } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { BackerError, type ErrorCode } from '../errors.js';
import { defineTarget } from '../plugins/define.js';
import { localTargetSchema, type LocalTargetConfig } from './local.schema.js';
import { sweepTempFiles } from './local-sweep.js';
import { TEMP_PATTERN, tempName } from './temp-names.js';
import type { ObjectInfo, SweepOptions, SweepReport, Target, WriteOptions } from './types.js';

type KeyUse = 'write' | 'read';

export const DEFAULT_FILE_MODE = 0o600;
export const DEFAULT_DIR_MODE = 0o700;

/** `file_mode` / `dir_mode` as written in the config ("0640"); the schema has validated them. */
export function parseMode(value: string | undefined, fallback: number): number {
  return value === undefined ? fallback : parseInt(value, 8);
}

/** Files stat'ed at once while listing a directory. */
const STAT_BATCH = 64;

/** Errors of link() on filesystems without hard links. */
const NO_HARD_LINKS = new Set(['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS']);

function errnoCode(err: unknown): string | undefined {
  return err instanceof Error && 'code' in err && typeof err.code === 'string' ? err.code : undefined;
}

/** A file's ObjectInfo; the etag changes with any write, truncation, touch or replacement. */
function objectInfo(key: string, info: BigIntStats): ObjectInfo {
  return {
    key,
    size: Number(info.size),
    modified: new Date(Number(info.mtimeMs)),
    etag: `${info.ino}-${info.size}-${info.mtimeNs}-${info.ctimeNs}`,
  };
}

/** The config of a local target; the modes may be left out (tests, defaults). */
export type LocalTargetOptions = Omit<LocalTargetConfig, 'file_mode' | 'dir_mode'> & Partial<Pick<LocalTargetConfig, 'file_mode' | 'dir_mode'>>;

export function createLocalTarget(config: LocalTargetOptions): Target {
  const root = resolve(config.path);
  const component = `target ${config.name}`;
  const fileMode = parseMode(config.file_mode, DEFAULT_FILE_MODE);
  const dirMode = parseMode(config.dir_mode, DEFAULT_DIR_MODE);

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

  const refuseExisting = (key: string, cause: unknown): BackerError =>
    new BackerError('TARGET_WRITE_FAILED', `"${key}" already exists and is not overwritten`, {
      component,
      details: { target: config.name, key, exists: true },
      cause,
      permanent: true,
    });

  /**
   * Creates `dir` and its missing parents with `dir_mode`. mkdir's mode goes through the umask,
   * so each directory made here gets its mode set explicitly; existing ones are left alone.
   */
  async function ensureDir(dir: string): Promise<void> {
    let first: string | undefined;
    try {
      first = await mkdir(dir, { recursive: true, mode: dirMode });
    } catch (err) {
      throw await realMkdirError(dir, err);
    }
    if (first === undefined) return;
    for (let d = dir; ; d = dirname(d)) {
      await chmod(d, dirMode);
      if (d === first || d === dirname(d)) return;
    }
  }

  /**
   * Node's recursive mkdir reports ENOENT where the parent exists but cannot take a new entry
   * (read-only filesystem, no permission): redo the first missing step alone to get the reason.
   */
  async function realMkdirError(dir: string, err: unknown): Promise<unknown> {
    if (errnoCode(err) !== 'ENOENT') return err;
    let child = dir;
    for (let parent = dirname(dir); parent !== child; child = parent, parent = dirname(parent)) {
      if (!(await stat(parent).then((i) => i.isDirectory(), () => false))) continue;
      return mkdir(child, { mode: dirMode }).then(
        () => err,
        (real: unknown) => real,
      );
    }
    return err;
  }

  /**
   * Gives the complete temp file its final name without ever replacing anything: link() fails
   * with EEXIST (atomic for readers and racing writers). Filesystems without hard links fall
   * back to a check and rename (only racing writers of the same name could collide there).
   */
  async function placeNew(tmp: string, path: string): Promise<void> {
    try {
      await link(tmp, path);
    } catch (err) {
      if (!NO_HARD_LINKS.has(errnoCode(err) ?? '')) throw err;
      const existing = await stat(path).catch(() => undefined);
      if (existing) throw Object.assign(new Error('file exists'), { code: 'EEXIST' });
      await rename(tmp, path);
      return;
    }
    await unlink(tmp).catch(() => undefined);
  }

  /** Creates the temp file next to `path` so the final link stays on one filesystem. */
  function tempPathFor(path: string): string {
    return join(dirname(path), tempName(basename(path)));
  }

  async function openTemp(path: string): Promise<{ tmp: string; handle: FileHandle }> {
    await ensureDir(dirname(path));
    const tmp = tempPathFor(path);
    const handle = await open(tmp, 'wx', fileMode);
    try {
      await handle.chmod(fileMode);
    } catch (err) {
      await discard(tmp, handle);
      throw err;
    }
    return { tmp, handle };
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
    const files: string[] = [];
    for (const entry of entries) {
      const key = rel === '' ? entry.name : `${rel}/${entry.name}`;
      // Symlinks are skipped: following them could list (and later delete) files outside the root.
      if (entry.isDirectory()) await walk(join(dir, entry.name), key, out);
      else if (entry.isFile() && !TEMP_PATTERN.test(entry.name)) files.push(entry.name);
    }
    // The files of one directory are stat'ed together (libuv's pool), not one await after another.
    for (let i = 0; i < files.length; i += STAT_BATCH) {
      const infos = await Promise.all(files.slice(i, i + STAT_BATCH).map((name) => stat(join(dir, name), { bigint: true }).then((info) => [name, info] as const, () => undefined)));
      for (const found of infos) if (found) out.push(objectInfo(rel === '' ? found[0] : `${rel}/${found[0]}`, found[1]));
    }
  }

  return {
    name: config.name,
    type: 'local',

    async write(key: string, body: Readable, options: WriteOptions): Promise<void> {
      const path = pathOf(key, 'write');
      let tmp: string | undefined;
      try {
        await ensureDir(dirname(path));
        tmp = tempPathFor(path);
        // A path-based stream with flush: fsync before close. (A FileHandle stream with
        // autoClose:false left handle.sync() hanging on Node 20.)
        await pipeline(body, createWriteStream(tmp, { flags: 'wx', flush: true, mode: fileMode }), { signal: options.signal });
        // A cancel that lands after the last byte still means "no backup": honour it before publishing.
        options.signal.throwIfAborted();
        await chmod(tmp, fileMode);
        await placeNew(tmp, path);
        tmp = undefined;
        await publish(path);
      } catch (err) {
        if (tmp) await unlink(tmp).catch(() => undefined);
        body.destroy();
        if (options.signal.aborted) {
          throw fail('JOB_CANCELLED', `writing "${key}" was cancelled`, key, options.signal.reason, true);
        }
        if (errnoCode(err) === 'EEXIST') throw refuseExisting(key, err);
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
        const { tmp } = temp;
        temp = undefined;
        try {
          await placeNew(tmp, path);
        } catch (err) {
          await unlink(tmp).catch(() => undefined);
          throw err;
        }
        await publish(path);
      } catch (err) {
        if (temp) await discard(temp.tmp, temp.handle);
        if (errnoCode(err) === 'EEXIST') throw refuseExisting(key, err);
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
        const info = await stat(path, { bigint: true });
        return info.isFile() ? objectInfo(key, info) : undefined;
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

    async sweep(options: SweepOptions): Promise<SweepReport> {
      try {
        return await sweepTempFiles(root, options.logger.child({ target: config.name }));
      } catch (err) {
        throw fail('TARGET_READ_FAILED', `could not sweep the temp files under ${root}`, '', err);
      }
    },

    async close(): Promise<void> {
      // Nothing held open between calls.
    },
  };
}

/** The `local` target plugin: its options schema (local.schema.ts), the programs it needs, its driver. */
export const localPlugin = defineTarget({
  type: 'local',
  options: localTargetSchema,
  tools: [],
  create: createLocalTarget,
});
