import { lstatSync, mkdirSync } from 'node:fs';
import * as nodeModule from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * Node's module compile cache (V8 code cache on disk, Node ≥ 22.1): the second start of any
 * command compiles none of the ~600–800 modules it loads again. It must be enabled before those
 * modules load, so the entry (main.ts) calls this first and imports the program afterwards.
 *
 * Where: $NODE_COMPILE_CACHE when set (Node's own variable), else `backer-compile-cache-UID` in
 * the temp dir, which must be a real directory of this user that nobody else can write (code
 * cache is code: a directory another local user controls could plant it). Anything else (no
 * writable temp dir, a read-only file system, someone else's directory, an older Node) runs
 * without the cache: it only saves time, so it never fails a command and prints nothing.
 * NODE_DISABLE_COMPILE_CACHE=1 turns it off.
 */
export function enableCompileCache(env: NodeJS.ProcessEnv = process.env): string | null {
  if (typeof nodeModule.enableCompileCache !== 'function' || env.NODE_DISABLE_COMPILE_CACHE === '1') return null;
  try {
    const directory = env.NODE_COMPILE_CACHE ? undefined : privateDir();
    if (directory === null) return null;
    const result = nodeModule.enableCompileCache(directory);
    return result.directory ?? null;
  } catch {
    return null;
  }
}

/** The user's own cache directory in the temp dir (created 0700), or null when it is not safe to use. */
function privateDir(): string | null {
  const uid = process.getuid?.();
  if (uid === undefined) return null;
  const dir = join(tmpdir(), `backer-compile-cache-${uid}`);
  try {
    mkdirSync(dir, { mode: 0o700 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') return null;
  }
  const stat = lstatSync(dir);
  return stat.isDirectory() && stat.uid === uid && (stat.mode & 0o022) === 0 ? dir : null;
}

/** Writes what this process compiled so far (a daemon may never exit cleanly). Best effort. */
export function flushCompileCache(): void {
  try {
    if (typeof nodeModule.flushCompileCache === 'function') nodeModule.flushCompileCache();
  } catch {
    // Only a cache: a failed write costs the next start a few hundred milliseconds, nothing else.
  }
}
