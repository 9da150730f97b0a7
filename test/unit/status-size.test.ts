/**
 * Sizes: the size parser (src/config/size.ts), the size anomaly check (src/status/size.ts) and the
 * mandate alert keys as labels and static keys (src/mandates/alert-keys.ts).
 */
import { describe, expect, it } from 'vitest';
import { parseConfigText } from '../../src/config/load.js';
import { formatSize, sizeBytes } from '../../src/config/size.js';
import { parseMandate, parseStaticMandates } from '../../src/mandates/parse.js';
import { sources } from '../../src/sources/index.js';
import { checkSize, median } from '../../src/status/size.js';

describe('sizeBytes', () => {
  it('reads bytes with decimal and binary units', () => {
    expect(sizeBytes('1048576')).toBe(1048576);
    expect(sizeBytes('500k')).toBe(500_000);
    expect(sizeBytes('500 kB')).toBe(500_000);
    expect(sizeBytes('10MiB')).toBe(10 * 1024 * 1024);
    expect(sizeBytes('10mib')).toBe(10 * 1024 * 1024);
    expect(sizeBytes('2GB')).toBe(2e9);
    expect(sizeBytes('1.5Ki')).toBe(1536);
    expect(sizeBytes('3B')).toBe(3);
    expect(sizeBytes(' 1T ')).toBe(1e12);
  });

  it('refuses what is no size', () => {
    for (const bad of ['', 'ten', '-5', '5 XB', '1e3', '10 MiBs', '99999999999TiB']) expect(sizeBytes(bad), bad).toBeUndefined();
  });

  it('formats sizes for messages', () => {
    expect(formatSize(512)).toBe('512 B');
    expect(formatSize(10 * 1024 * 1024)).toBe('10 MiB');
    expect(formatSize(1536)).toBe('1.5 KiB');
  });
});

describe('checkSize', () => {
  const none = { min_size_bytes: null, size_change_percent: null };

  it('takes the median of the newest 10', () => {
    expect(median([])).toBeNull();
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    // The 11th (oldest) value does not count.
    expect(checkSize(100, [100, 100, 100, 100, 100, 100, 100, 100, 100, 100, 1e9], none).median_bytes).toBe(100);
  });

  it('flags a size below min_size', () => {
    const check = checkSize(1000, [], { min_size_bytes: 1024 * 1024, size_change_percent: null });
    expect(check).toEqual({ median_bytes: null, reason: 'raw size 1000 B is below min_size 1 MiB' });
    expect(checkSize(2 * 1024 * 1024, [], { min_size_bytes: 1024 * 1024, size_change_percent: null }).reason).toBeNull();
  });

  it('flags a change beyond size_change_alert percent, up or down, and not within it', () => {
    const history = [1000, 1100, 900, 1000];
    expect(checkSize(1400, history, { min_size_bytes: null, size_change_percent: 50 }).reason).toBeNull();
    expect(checkSize(400, history, { min_size_bytes: null, size_change_percent: 50 }).reason).toBe(
      'raw size 400 B shrank 60% from the median 1000 B of the last 4 backups (size_change_alert 50%)',
    );
    expect(checkSize(3000, history, { min_size_bytes: null, size_change_percent: 50 }).reason).toMatch(/grew 200% from the median/);
    // No history: nothing to compare with.
    expect(checkSize(1, [], { min_size_bytes: null, size_change_percent: 1 }).reason).toBeNull();
    expect(checkSize(5, [0, 0], { min_size_bytes: null, size_change_percent: 10 }).reason).toMatch(/grew from zero/);
    // Both at once: both reasons.
    expect(checkSize(10, [1000], { min_size_bytes: 100, size_change_percent: 50 }).reason).toMatch(/below min_size .*; raw size 10 B shrank 99%/);
  });
});

const yaml = (mandate: string): string => `targets:\n  - name: local\n    type: local\n    path: /srv/b\nmandates:\n  m:\n    type: files\n    files:\n      path: /srv/f\n${mandate}`;

function fromLabels(raw: Record<string, string>) {
  const { config } = parseConfigText(yaml(''), 'backer.yml', {}, '/etc/backer');
  return parseMandate({ name: 'db', raw: { type: 'mysql', ...raw }, origin: 'labels', container: 'db', describe: (k) => `container db label backer.${k}`, config, sources });
}

describe('alert keys', () => {
  it('reads backer.max_age, backer.min_size and backer.size_change_alert', () => {
    const { mandate, problems } = fromLabels({ max_age: '26h', min_size: '10MiB', size_change_alert: '50%' });
    expect(problems).toEqual([]);
    expect(mandate?.alerts).toEqual({ max_age_ms: 26 * 3_600_000, min_size_bytes: 10 * 1024 * 1024, size_change_percent: 50 });
    expect(fromLabels({}).mandate?.alerts).toEqual({ max_age_ms: null, min_size_bytes: null, size_change_percent: null });
  });

  it('names the label of a bad value', () => {
    const { mandate, problems } = fromLabels({ max_age: '90', min_size: '10 XB', size_change_alert: '0' });
    expect(mandate).toBeUndefined();
    expect(problems).toEqual([
      { where: 'container db label backer.max_age', message: 'expected a duration like 30s, 5m, 26h or 7d, got "90" (no successful backup for longer than this is stale)' },
      { where: 'container db label backer.min_size', message: 'expected a size like 500k, 10MiB, 2GB or 1048576 (bytes), got "10 XB", at least 1 byte' },
      { where: 'container db label backer.size_change_alert', message: 'expected a percentage from 1 to 1000 (e.g. 50 or 50%), received "0"' },
    ]);
    expect(fromLabels({ size_change_alert: '1001' }).problems[0]?.where).toBe('container db label backer.size_change_alert');
    expect(fromLabels({ min_size: '0' }).problems[0]?.where).toBe('container db label backer.min_size');
  });

  it('reads the same keys in a static mandate, with the config path in problems', () => {
    const statics = (text: string) => {
      const { config, problems } = parseConfigText(yaml(text), 'backer.yml', {}, '/etc/backer');
      expect(problems).toEqual([]);
      return parseStaticMandates(config, sources, 'backer.yml');
    };
    const good = statics('    max_age: 7d\n    min_size: 500k\n    size_change_alert: 200\n');
    expect(good.problems).toEqual([]);
    expect(good.mandates[0]?.alerts).toEqual({ max_age_ms: 7 * 86_400_000, min_size_bytes: 500_000, size_change_percent: 200 });
    const bad = statics('    max_age: soon\n');
    expect(bad.problems).toEqual([{ where: 'backer.yml: mandates.m.max_age', message: expect.stringContaining('expected a duration') as unknown }]);
  });
});
