import { describe, expect, it } from 'vitest';
import { manifestKey, manifestSchema, type Manifest } from '../../src/manifests/schema.js';
import { selectExpired, selectExpiredAll } from '../../src/retention/policy.js';

const MD5 = 'd41d8cd98f00b204e9800998ecf8427e';
const SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';
const RAW_MD5 = '0123456789abcdef0123456789abcdef';
const RAW_SHA256 = 'abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789';

function manifest(overrides: Partial<Manifest> = {}): Manifest {
  return {
    manifest_version: 1,
    uuid: '3b241101-e2bb-4255-8caf-4136c566a962',
    name: '2024-05-01T00-00-00-shop-db',
    mandate: 'shop-db',
    backer_version: '0.1.0',
    created_at: '2024-05-01T00:00:00.000Z',
    completed_at: '2024-05-01T00:00:05.000Z',
    source: { type: 'mysql', container: 'shop-db', image: 'mariadb:11', databases: ['shop'] },
    target: { name: 'local', type: 'local' },
    steps: [
      { processor: 'source:mysql', mime: 'application/sql', size: 100, md5: RAW_MD5, sha256: RAW_SHA256 },
      { processor: 'middleware:gzip:gz', mime: 'application/gzip', size: 0, md5: MD5, sha256: SHA256 },
    ],
    artifact: { key: 'shop-db/2024-05-01T00-00-00-shop-db.sql.gz', mime: 'application/gzip', size: 0, md5: MD5, sha256: SHA256 },
    ...overrides,
  };
}

const backup = (name: string, createdAt: string): { manifest: Manifest; key: string } => ({
  manifest: manifest({ name, created_at: createdAt }),
  key: manifestKey('shop-db', name),
});

const names = (backups: readonly { manifest: Manifest }[]): string[] => backups.map((b) => b.manifest.name);

describe('selectExpired', () => {
  const day = (d: number): string => `2024-05-${String(d).padStart(2, '0')}T00:00:00.000Z`;
  // Deliberately out of order: the policy must sort by created_at, not trust the listing.
  const backups = [backup('c', day(3)), backup('a', day(1)), backup('e', day(5)), backup('b', day(2)), backup('d', day(4))];

  it('keeps the newest N by created_at and returns the rest, newest first', () => {
    expect(names(selectExpired(backups, { keep: 2 }))).toEqual(['c', 'b', 'a']);
    expect(names(selectExpired(backups, { keep: 4 }))).toEqual(['a']);
  });

  it('sorts by created_at, not by name', () => {
    const list = [backup('z-oldest', day(1)), backup('a-newest', day(9)), backup('m-middle', day(5))];
    expect(names(selectExpired(list, { keep: 1 }))).toEqual(['m-middle', 'z-oldest']);
  });

  it('compares created_at as instants, whatever the fractional precision the schema accepts', () => {
    const list = [backup('older', '2024-05-01T00:00:00Z'), backup('newer', '2024-05-01T00:00:00.500Z'), backup('newest', '2024-05-01T00:00:01Z')];
    for (const b of list) expect(manifestSchema.safeParse(b.manifest).success).toBe(true);
    expect(names(selectExpired(list, { keep: 2 }))).toEqual(['older']);
  });

  it('breaks created_at ties by name, the greater name counting as newer', () => {
    const list = [backup('x-1', day(1)), backup('x-3', day(1)), backup('x-2', day(1))];
    expect(names(selectExpired(list, { keep: 1 }))).toEqual(['x-2', 'x-1']);
    // Whatever the input order.
    expect(names(selectExpired([...list].reverse(), { keep: 1 }))).toEqual(['x-2', 'x-1']);
  });

  it('always keeps at least one backup', () => {
    expect(names(selectExpired(backups, { keep: 0 }))).toEqual(['d', 'c', 'b', 'a']);
    expect(names(selectExpired(backups, { keep: -3 }))).toEqual(['d', 'c', 'b', 'a']);
    expect(selectExpired([backup('only', day(1))], { keep: 0 })).toEqual([]);
  });

  it('deletes nothing when N is at least the count', () => {
    expect(selectExpired(backups, { keep: 5 })).toEqual([]);
    expect(selectExpired(backups, { keep: 50 })).toEqual([]);
    expect(selectExpired([], { keep: 3 })).toEqual([]);
  });

  it('returns the caller’s objects and leaves the input untouched', () => {
    const input = [...backups];
    const expired = selectExpired(input, { keep: 3 });
    expect(expired.every((e) => backups.includes(e))).toBe(true);
    expect(input).toEqual(backups);
  });
});

describe('manifestSchema', () => {
  it('accepts a valid manifest', () => {
    const valid = manifest();
    expect(manifestSchema.parse(valid)).toEqual(valid);
  });

  it('keeps extra source facts (passthrough) but refuses unknown top-level keys', () => {
    const withFacts = manifest({ source: { type: 'files', container: null, image: null, databases: [], paths: ['/data'] } });
    expect(manifestSchema.parse(withFacts).source).toMatchObject({ paths: ['/data'] });
    expect(manifestSchema.safeParse({ ...manifest(), extra: true }).success).toBe(false);
  });

  it('rejects a missing field', () => {
    const { completed_at: _completedAt, ...missing } = manifest();
    const result = manifestSchema.safeParse(missing);
    expect(result.success).toBe(false);
    expect(result.error?.issues.map((i) => i.path.join('.'))).toContain('completed_at');
  });

  it('rejects a sha256 that is not 64 lowercase hex digits', () => {
    for (const sha256 of ['xyz', SHA256.toUpperCase(), SHA256.slice(1), `${SHA256}0`, SHA256.replace('e', 'g')]) {
      const bad = manifest({ artifact: { ...manifest().artifact, sha256 } });
      const result = manifestSchema.safeParse(bad);
      expect(result.success, sha256).toBe(false);
      expect(result.error?.issues.map((i) => i.path.join('.'))).toContain('artifact.sha256');
    }
    const badStep = manifest();
    const step = badStep.steps[0];
    if (step) step.sha256 = 'not-hex';
    expect(manifestSchema.safeParse(badStep).success).toBe(false);
  });

  it('rejects artifact checksums that differ from the last step', () => {
    const base = manifest();
    const cases: Partial<Manifest['artifact']>[] = [{ sha256: RAW_SHA256 }, { md5: RAW_MD5 }, { size: 1 }];
    for (const change of cases) {
      const result = manifestSchema.safeParse({ ...base, artifact: { ...base.artifact, ...change } });
      expect(result.success, JSON.stringify(change)).toBe(false);
      expect(result.error?.issues).toEqual([expect.objectContaining({ path: ['artifact'], message: 'artifact checksums differ from the last step' })]);
    }
    // Matching the first step is not enough: the artifact is what the last step produced.
    const first = base.steps[0];
    if (!first) throw new Error('fixture has no steps');
    const likeFirst = { ...base.artifact, size: first.size, md5: first.md5, sha256: first.sha256 };
    expect(manifestSchema.safeParse({ ...base, artifact: likeFirst }).success).toBe(false);
  });

  it('rejects a manifest without steps and an unknown version; reads versions 1 and 2', () => {
    expect(manifestSchema.safeParse(manifest({ steps: [] })).success).toBe(false);
    expect(manifestSchema.safeParse({ ...manifest(), manifest_version: 3 }).success).toBe(false);
    expect(manifestSchema.safeParse({ ...manifest(), manifest_version: 1 }).success).toBe(true);
    expect(manifestSchema.safeParse({ ...manifest(), manifest_version: 2, tags: ['safety'] }).success).toBe(true);
  });
});

describe('selectExpiredAll: safety backups', () => {
  const at = (d: number): string => new Date(Date.UTC(2024, 4, d)).toISOString();
  const safety = (name: string, d: number): { manifest: Manifest; key: string } => ({
    manifest: manifest({ name, created_at: at(d), tags: ['safety'] }),
    key: manifestKey('shop-db', name),
  });
  const now = new Date(Date.UTC(2024, 4, 30));

  it('never counts safety backups against keep, keeps the newest 3 and every one younger than 7 days', () => {
    const regular = [backup('r1', at(1)), backup('r2', at(2)), backup('r3', at(3))];
    const safeties = [safety('s1', 1), safety('s2', 2), safety('s3', 3), safety('s4', 4), safety('s5', 25), safety('s6', 26)];
    const expired = selectExpiredAll([...regular, ...safeties], { keep: 2 }, now);
    // Regular: the oldest beyond 2. Safety: s5, s6 are young; of the old ones the newest 3 overall are s6, s5, s4.
    expect(names(expired).sort()).toEqual(['r1', 's1', 's2', 's3']);
  });

  it('keeps every young safety backup, however many', () => {
    const young = [26, 27, 28, 29].map((d, i) => safety(`y${i}`, d));
    expect(selectExpiredAll(young, { keep: 1, safetyKeep: 1 }, now)).toEqual([]);
  });
});
