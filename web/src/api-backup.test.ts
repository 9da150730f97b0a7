import { describe, expect, it } from 'vitest';
import { destinationTo, fileNameOf, flattenStats } from './api-backup';

describe('backup screen helpers', () => {
  it('flattenStats turns engine stats into path → value rows (lists of scalars joined)', () => {
    const stats = { databases: ['shop', 'crm'], tables: { 'shop.orders': 1000, 'crm.people': 0 }, files: [{ path: 'a', bytes: 3 }], empty: [] };
    expect(flattenStats(stats)).toEqual([
      ['databases', 'shop, crm'],
      ['tables.shop.orders', '1000'],
      ['tables.crm.people', '0'],
      ['files[0].path', 'a'],
      ['files[0].bytes', '3'],
      ['empty', '—'],
    ]);
    expect(flattenStats({ n: Array.from({ length: 500 }, (_, i) => ({ i })) })).toHaveLength(200);
  });

  it('fileNameOf reads the UTF-8 name first, then the ASCII one, else the fallback', () => {
    expect(fileNameOf(`attachment; filename="b_ck.sql.gz"; filename*=UTF-8''b%C3%A4ck.sql.gz`, 'x')).toBe('bäck.sql.gz');
    expect(fileNameOf('attachment; filename="a.sql.gz"', 'x')).toBe('a.sql.gz');
    expect(fileNameOf(null, 'fallback')).toBe('fallback');
  });

  it('destinationTo gives the `to` of POST /v1/restores', () => {
    expect(destinationTo({ kind: 'original', name: 'x', path: '', safetyBackup: true })).toBe('original');
    expect(destinationTo({ kind: 'new', name: ' shop-copy ', path: '', safetyBackup: true })).toBe('new:shop-copy');
    expect(destinationTo({ kind: 'file', name: '', path: '/srv/restore', safetyBackup: false })).toBe('file:/srv/restore');
  });
});
