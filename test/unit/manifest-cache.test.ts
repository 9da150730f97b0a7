import { mkdir, mkdtemp, rename, rm, symlink, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ManifestCache, setManifestCacheOptions, withManifestInvalidation, DEFAULT_MANIFEST_CACHE_ENTRIES } from '../../src/manifests/cache.js';
import { listBackups } from '../../src/manifests/store.js';
import { createLocalTarget } from '../../src/targets/local.js';
import type { Target } from '../../src/targets/types.js';
import { manifestBytes, storedFixture, type StoredFixture } from '../helpers/stored-backups.js';

let root: string;
let reads: string[];
let target: Target;

async function put(key: string, data: Buffer | string): Promise<void> {
  await mkdir(dirname(join(root, key)), { recursive: true });
  await writeFile(join(root, key), data);
}

async function store(n: number): Promise<StoredFixture[]> {
  const out: StoredFixture[] = [];
  for (let i = 0; i < n; i++) {
    const f = storedFixture('mc', `mc-${i}`, Buffer.from(`artifact ${i}`), new Date(Date.UTC(2026, 0, 1, 0, i)), { name: 'local', type: 'local' });
    await put(f.artifactKey, f.artifact);
    await put(f.manifestKey, manifestBytes(f));
    out.push(f);
  }
  return out;
}

/** What the same listing gives without any cache: the reference every cached listing must equal. */
async function uncached(): Promise<unknown> {
  setManifestCacheOptions({ enabled: false });
  try {
    return await listBackups(createLocalTarget({ name: 'local', type: 'local', path: root, default: true }));
  } finally {
    setManifestCacheOptions({ enabled: true });
  }
}

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'bk-mc-unit-'));
  reads = [];
  const inner = createLocalTarget({ name: 'local', type: 'local', path: root, default: true });
  target = withManifestInvalidation({ ...inner, read: (key) => (reads.push(key), inner.read(key)) });
});

afterEach(async () => {
  setManifestCacheOptions({ enabled: true, maxEntries: DEFAULT_MANIFEST_CACHE_ENTRIES });
  await rm(root, { recursive: true, force: true });
});

describe('listing through the manifest cache', () => {
  it('reads each manifest once, then only the new or changed ones', async () => {
    const fixtures = await store(5);
    expect((await listBackups(target)).backups).toHaveLength(5);
    expect(reads).toHaveLength(5);
    reads.length = 0;
    expect(await listBackups(target)).toEqual(await uncached());
    expect(reads).toEqual([]);

    // Same size, at once: only the etag (inode, ns mtime/ctime) tells.
    const edited = fixtures[2] as StoredFixture;
    edited.manifest.backer_version = '0.0.0-TEST';
    await put(edited.manifestKey, manifestBytes(edited));
    const listing = await listBackups(target);
    expect(reads).toEqual([edited.manifestKey]);
    expect(listing.backups.find((b) => b.manifest.name === 'mc-2')?.manifest.backer_version).toBe('0.0.0-TEST');
    expect(listing).toEqual(await uncached());

    const added = storedFixture('mc', 'mc-new', Buffer.from('new'), new Date(), { name: 'local', type: 'local' });
    await put(added.artifactKey, added.artifact);
    await put(added.manifestKey, manifestBytes(added));
    reads.length = 0;
    expect((await listBackups(target)).backups).toHaveLength(6);
    expect(reads).toEqual([added.manifestKey]);
  });

  it('reports a manifest edited by hand, a deleted or truncated artifact and a deleted manifest exactly as without the cache', async () => {
    const [a, b, c, d] = await store(4);
    if (!a || !b || !c || !d) throw new Error('fixtures');
    await listBackups(target);
    await put(a.manifestKey, manifestBytes(a).toString().replace('"mandate": "mc"', '"mandate": "other"'));
    await rm(join(root, b.artifactKey));
    await truncate(join(root, c.artifactKey), 3);
    await rm(join(root, d.manifestKey));
    const listing = await listBackups(target);
    expect(listing).toEqual(await uncached());
    expect(listing.backups).toEqual([]);
    expect(listing.problems.map((p) => p.message)).toEqual([
      `local: mc/mc-0.manifest.json: manifest describes other/mc-0, not the backup its key names`,
      `local: mc/mc-1.manifest.json: artifact mc/mc-1.tar is missing (deleted by hand? \`backer backups forget mc-1\` removes this manifest)`,
      `local: mc/mc-2.manifest.json: artifact mc/mc-2.tar has 3 bytes, the manifest says ${c.artifact.length}`,
    ]);
    expect(listing.problems[1]?.dangling).toMatchObject({ name: 'mc-1', artifact_key: b.artifactKey });
    // Artifact restored: the cached verdict of the manifest holds, the artifact is checked anew.
    await put(c.artifactKey, c.artifact);
    reads.length = 0;
    expect((await listBackups(target)).backups.map((x) => x.manifest.name)).toEqual(['mc-2']);
    expect(reads).toEqual([]);
  });

  it('reads again what Backer removes and writes under the same key', async () => {
    const [a] = await store(1);
    if (!a) throw new Error('fixture');
    await listBackups(target);
    await target.remove(a.manifestKey);
    expect((await listBackups(target)).backups).toEqual([]);
    a.manifest.backer_version = '9.9.9';
    await target.writeOnce(a.manifestKey, manifestBytes(a));
    reads.length = 0;
    expect((await listBackups(target)).backups[0]?.manifest.backer_version).toBe('9.9.9');
    expect(reads).toEqual([a.manifestKey]);
  });

  it('stats an artifact the listing does not show (a symlink), as without the cache', async () => {
    const [a] = await store(1);
    if (!a) throw new Error('fixture');
    await rename(join(root, a.artifactKey), join(root, 'elsewhere.tar'));
    await symlink(join(root, 'elsewhere.tar'), join(root, a.artifactKey));
    const listing = await listBackups(target);
    expect(listing.backups.map((b) => b.manifest.name)).toEqual(['mc-0']);
    expect(listing).toEqual(await uncached());
  });

  it('never caches a manifest that could not be read', async () => {
    const [a] = await store(1);
    if (!a) throw new Error('fixture');
    const inner = createLocalTarget({ name: 'local', type: 'local', path: root, default: true });
    let failing = true;
    const flaky: Target = { ...inner, read: async (key) => (failing ? Promise.reject(new Error('EIO')) : inner.read(key)) };
    expect((await listBackups(flaky)).problems[0]?.message).toContain('not readable JSON (EIO)');
    failing = false;
    expect((await listBackups(flaky)).backups).toHaveLength(1);
  });
});

describe('ManifestCache', () => {
  const verdict = { ok: false as const, message: 'x' };

  it('keeps at most maxEntries, dropping the least recently used', () => {
    const cache = new ManifestCache(() => 3);
    for (const k of ['a', 'b', 'c']) cache.set(k, 'f', verdict);
    expect(cache.get('a', 'f')).toBe(verdict);
    cache.set('d', 'f', verdict);
    expect(cache.size).toBe(3);
    expect(cache.get('b', 'f')).toBeUndefined();
    expect(cache.get('a', 'f')).toBe(verdict);
  });

  it('drops an entry whose fingerprint changed and the keys a listing no longer shows', () => {
    const cache = new ManifestCache(() => 10);
    cache.set('m/a', 'f1', verdict);
    cache.set('m/b', 'f1', verdict);
    cache.set('n/c', 'f1', verdict);
    expect(cache.get('m/a', 'f2')).toBeUndefined();
    expect(cache.get('m/a', 'f1')).toBeUndefined();
    cache.prune('m/', new Set(['m/a']));
    expect(cache.get('m/b', 'f1')).toBeUndefined();
    expect(cache.get('n/c', 'f1')).toBe(verdict);
  });
});
