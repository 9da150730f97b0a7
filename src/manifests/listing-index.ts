/**
 * Per-target index of what a full listing found: every valid manifest, sorted newest first, and
 * every problem, so that the API serves a page of backups without listing (and, on a local target,
 * stat'ing) every object of the target on every call.
 *
 * Freshness, the documented bound (README "Manifest cache and listing index"):
 * - Writes and removals through this process (backups, retention, forget) reach the index at
 *   once: each key they touch is checked again (one stat, and one read for a manifest) before the
 *   next answer.
 * - Changes made by anyone else (by hand, another process) are found by a full re-listing: an
 *   index older than `refreshMs` (default 10 s) is re-listed in the background while the request
 *   is answered from it; one older than `maxAgeMs` (default 60 s) is re-listed before answering.
 *   So an answer never reflects a listing older than `maxAgeMs`, and nothing is listed while
 *   nobody asks (no timer: an idle daemon does not wake for this).
 * - A background re-listing that fails drops the index: the next request lists again and reports
 *   the target that cannot be listed.
 *
 * `BACKER_INTERNAL_LISTING_MAX_AGE_MS` (tests: a short bound) sets `maxAgeMs`, `refreshMs` is a
 * sixth of it; `BACKER_INTERNAL_LISTING_INDEX=off` disables the index (bench baseline). Both are
 * internal, not user settings. With the manifest cache off (BACKER_INTERNAL_MANIFEST_CACHE=off)
 * the index is off too.
 */
import { BackerError, describeError } from '../errors.js';
import type { Target } from '../targets/types.js';
import { manifestCacheEnabled } from './cache.js';
import { MANIFEST_SUFFIX, type Manifest } from './schema.js';
import { listBackups, newestFirst, readManifest, type DanglingBackup, type ManifestProblem } from './store.js';

const DEFAULT_MAX_AGE_MS = 60_000;

const envMaxAge = Number(process.env.BACKER_INTERNAL_LISTING_MAX_AGE_MS);
const settings = {
  enabled: process.env.BACKER_INTERNAL_LISTING_INDEX !== 'off',
  maxAgeMs: Number.isFinite(envMaxAge) && envMaxAge > 0 ? envMaxAge : DEFAULT_MAX_AGE_MS,
};

/** A backup in the index: its manifest and `created_at` in ms (filters compare numbers). */
export interface IndexedBackup {
  manifest: Manifest;
  at: number;
}

/** What the index serves for one target: backups newest first, problems in key order. */
export interface IndexView {
  /** Changes whenever the content does: callers may keep what they derived from a view. */
  version: number;
  backups: readonly IndexedBackup[];
  problems: readonly ManifestProblem[];
}

type Entry = { ok: true; manifest: Manifest } | { ok: false; problem: ManifestProblem };


const byKey = (a: ManifestProblem, b: ManifestProblem): number => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0);

let versions = 0;

function problemOf(target: Target, key: string, err: unknown): ManifestProblem {
  const dangling = err instanceof BackerError ? (err.details.dangling as DanglingBackup | undefined) : undefined;
  return { target: target.name, key, message: describeError(err), ...(dangling ? { dangling } : {}) };
}

class TargetIndex {
  private entries: Map<string, Entry> | undefined;
  private listedAt = 0;
  private view: IndexView | undefined;
  private inflight: Promise<void> | undefined;
  private patching: Promise<void> | undefined;
  /** Keys written or removed through this process since the index was listed, with a sequence number. */
  private readonly dirty = new Map<string, number>();
  private seq = 0;

  constructor(private readonly target: Target) {}

  touched(key: string): void {
    this.dirty.set(key, ++this.seq);
    this.view = undefined;
  }

  async current(now: number): Promise<IndexView> {
    const age = now - this.listedAt;
    if (this.entries === undefined || age >= settings.maxAgeMs) await this.relist();
    else if (age >= settings.maxAgeMs / 6 && this.inflight === undefined) this.relistInBackground();
    // A patch under way first (its keys are drained already), then what was touched since.
    if (this.patching) await this.patching;
    if (this.dirty.size > 0) await this.patch();
    this.view ??= this.makeView();
    return this.view;
  }

  private relist(): Promise<void> {
    this.inflight ??= (async () => {
      const startedAt = Date.now();
      const seen = this.seq;
      try {
        const listing = await listBackups(this.target);
        const entries = new Map<string, Entry>();
        for (const b of listing.backups) entries.set(b.manifestKey, { ok: true, manifest: b.manifest });
        for (const p of listing.problems) entries.set(p.key, { ok: false, problem: p });
        this.entries = entries;
        this.listedAt = startedAt;
        // Keys touched before the listing began are in it; later ones are checked again.
        for (const [key, at] of this.dirty) if (at <= seen) this.dirty.delete(key);
        this.view = undefined;
      } finally {
        this.inflight = undefined;
      }
    })();
    return this.inflight;
  }

  private relistInBackground(): void {
    this.relist().catch(() => {
      // The next request lists again, blocking, and reports why the target cannot be listed.
      this.entries = undefined;
      this.view = undefined;
    });
  }

  /** One patch at a time; callers meanwhile wait for it (and patch again what came after). */
  private patch(): Promise<void> {
    this.patching ??= this.patchOnce().finally(() => (this.patching = undefined));
    return this.patching;
  }

  /** Checks again the keys written or removed through this process; an artifact key checks the manifests it may belong to. */
  private async patchOnce(): Promise<void> {
    const entries = this.entries;
    if (entries === undefined) return;
    const touched = [...this.dirty];
    const keys = touched.map(([key]) => key);
    this.dirty.clear();
    const manifests = new Set<string>();
    for (const key of keys) {
      if (key.endsWith(MANIFEST_SUFFIX)) manifests.add(key);
      // An artifact's key starts with its manifest's key without the suffix (checked on read).
      else for (const known of entries.keys()) if (key.startsWith(known.slice(0, -MANIFEST_SUFFIX.length))) manifests.add(known);
    }
    for (const key of manifests) {
      const entry = await this.check(key);
      if (entry === undefined) entries.delete(key);
      else entries.set(key, entry);
    }
    // A re-listing replaced the entries meanwhile: what it may have missed is checked next time.
    if (this.entries !== entries) for (const [key, at] of touched) if (!this.dirty.has(key)) this.dirty.set(key, at);
    this.view = undefined;
  }

  private async check(key: string): Promise<Entry | undefined> {
    try {
      if ((await this.target.stat(key)) === undefined) return undefined;
      return { ok: true, manifest: (await readManifest(this.target, key)).manifest };
    } catch (err) {
      return { ok: false, problem: problemOf(this.target, key, err) };
    }
  }

  private makeView(): IndexView {
    const backups: Manifest[] = [];
    const problems: ManifestProblem[] = [];
    for (const entry of this.entries?.values() ?? []) {
      if (entry.ok) backups.push(entry.manifest);
      else problems.push(entry.problem);
    }
    backups.sort(newestFirst);
    problems.sort(byKey);
    return { version: ++versions, backups: backups.map((manifest) => ({ manifest, at: Date.parse(manifest.created_at) })), problems };
  }
}

const indexes = new WeakMap<Target, TargetIndex>();

export function listingIndexEnabled(): boolean {
  return settings.enabled && manifestCacheEnabled();
}

/** The indexed backups and problems of `target` (every mandate), within the freshness bound above. */
export function indexedBackups(target: Target): Promise<IndexView> {
  let index = indexes.get(target);
  if (index === undefined) {
    index = new TargetIndex(target);
    indexes.set(target, index);
  }
  return index.current(Date.now());
}

/** A key of `target` was written or removed through this process (src/manifests/cache.ts calls this). */
export function noteTouched(target: Target, key: string): void {
  indexes.get(target)?.touched(key);
}
