/**
 * Per-target cache of parsed, checked manifests, so a listing reads only the manifests that are new
 * or changed since the last one. An entry is keyed by manifest key and valid only while the
 * listing shows the same fingerprint (the target's `etag`: local inode + size + mtime/ctime in ns,
 * S3 ETag + LastModified + size). Targets that give no etag are never cached. What is cached is
 * the manifest's own verdict (parsed and matching its key, or why it is invalid); the artifact is
 * checked again on every listing. Read failures are never cached.
 *
 * Memory: at most `maxEntries` entries per target (LRU, default 20,000; a parsed one-step
 * manifest with its entry takes about 1.6 KiB of heap, measured, so ≈ 32 MiB at worst per target
 * holding that many backups). Entries of keys a listing no longer shows are dropped at once. A
 * target with more manifests than the cap still lists correctly, only re-reading the overflow.
 */
import type { ObjectInfo, Target } from '../targets/types.js';
import { noteTouched } from './listing-index.js';
import type { Manifest } from './schema.js';

export type CachedVerdict = { ok: true; manifest: Manifest } | { ok: false; message: string };

interface Entry {
  fingerprint: string;
  verdict: CachedVerdict;
}

export const DEFAULT_MANIFEST_CACHE_ENTRIES = 20_000;

export interface ManifestCacheOptions {
  enabled: boolean;
  maxEntries: number;
}

/** `BACKER_INTERNAL_MANIFEST_CACHE=off` disables the cache (bench baseline); not a user setting. */
const options: ManifestCacheOptions = {
  enabled: process.env.BACKER_INTERNAL_MANIFEST_CACHE !== 'off',
  maxEntries: DEFAULT_MANIFEST_CACHE_ENTRIES,
};

export function setManifestCacheOptions(next: Partial<ManifestCacheOptions>): void {
  Object.assign(options, next);
}

export class ManifestCache {
  private readonly entries = new Map<string, Entry>();

  constructor(private readonly maxEntries: () => number) {}

  get size(): number {
    return this.entries.size;
  }

  /** The verdict cached for `key` when the listing still shows the same object. */
  get(key: string, fingerprint: string): CachedVerdict | undefined {
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    if (entry.fingerprint !== fingerprint) {
      this.entries.delete(key);
      return undefined;
    }
    // Map order is insertion order: re-inserting makes it the most recently used.
    this.entries.delete(key);
    this.entries.set(key, entry);
    return entry.verdict;
  }

  set(key: string, fingerprint: string, verdict: CachedVerdict): void {
    this.entries.delete(key);
    this.entries.set(key, { fingerprint, verdict });
    const max = this.maxEntries();
    for (const oldest of this.entries.keys()) {
      if (this.entries.size <= max) break;
      this.entries.delete(oldest);
    }
  }

  delete(key: string): void {
    this.entries.delete(key);
  }

  /** Drops the entries under `prefix` that a complete listing of it did not show. */
  prune(prefix: string, listed: { has(key: string): boolean }): void {
    for (const key of [...this.entries.keys()]) {
      if (key.startsWith(prefix) && !listed.has(key)) this.entries.delete(key);
    }
  }
}

const caches = new WeakMap<Target, ManifestCache>();

/** The cache of `target`, or undefined while caching is disabled. */
export function manifestCacheOf(target: Target): ManifestCache | undefined {
  if (!options.enabled) return undefined;
  let cache = caches.get(target);
  if (!cache) {
    cache = new ManifestCache(() => options.maxEntries);
    caches.set(target, cache);
  }
  return cache;
}

export function manifestCacheEnabled(): boolean {
  return options.enabled;
}

/** Forgets what is cached for `key` (a write or removal through Backer), and tells the listing index. */
export function invalidateManifest(target: Target, key: string): void {
  caches.get(target)?.delete(key);
  noteTouched(target, key);
}

/** The fingerprint a listing gives for an object, or undefined when the backend gives no etag. */
export function fingerprintOf(object: ObjectInfo): string | undefined {
  return object.etag === undefined ? undefined : `${object.etag}:${object.size}:${object.modified.getTime()}`;
}

/**
 * Wraps a target so that every write and removal through it invalidates the cached manifest of
 * that key (before and after: a listing running meanwhile cannot keep a stale verdict).
 */
export function withManifestInvalidation(target: Target): Target {
  const wrapped: Target = {
    ...target,
    async write(key, body, writeOptions) {
      invalidateManifest(wrapped, key);
      try {
        await target.write(key, body, writeOptions);
      } finally {
        invalidateManifest(wrapped, key);
      }
    },
    async writeOnce(key, data, writeOptions) {
      invalidateManifest(wrapped, key);
      try {
        await target.writeOnce(key, data, writeOptions);
      } finally {
        invalidateManifest(wrapped, key);
      }
    },
    async remove(key) {
      invalidateManifest(wrapped, key);
      try {
        await target.remove(key);
      } finally {
        invalidateManifest(wrapped, key);
      }
    },
  };
  return wrapped;
}
