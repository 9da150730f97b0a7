import { describe, expect, it } from 'vitest';
import { byCodeUnit } from '../../src/util/compare.js';

describe('byCodeUnit (src/util/compare.ts)', () => {
  it('orders by UTF-16 code unit, as SQLite orders ASCII text: upper case before lower, whatever the locale', () => {
    expect(['b', 'a-2', 'B', 'a', 'a-10', 'é', 'z'].sort(byCodeUnit)).toEqual(['B', 'a', 'a-10', 'a-2', 'b', 'z', 'é']);
    expect(byCodeUnit('same', 'same')).toBe(0);
  });

  it('orders ISO timestamps of one format by time', () => {
    const times = ['2026-11-30T14:05:14.120Z', '2026-01-02T00:00:00.000Z', '2026-11-30T09:59:59.999Z', '2025-12-31T23:59:59.999Z'];
    expect([...times].sort(byCodeUnit)).toEqual([...times].sort((a, b) => Date.parse(a) - Date.parse(b)));
  });
});
