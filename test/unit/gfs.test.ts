import { describe, expect, it } from 'vitest';
import { parseConfigText } from '../../src/config/load.js';
import { labelsToRaw, parseMandate, parseStaticMandates } from '../../src/mandates/parse.js';
import type { Manifest } from '../../src/manifests/schema.js';
import { applyGfs, isoWeek, withinMs, type RetentionRules } from '../../src/retention/gfs.js';
import { planRetention } from '../../src/retention/policy.js';
import { sources } from '../../src/sources/index.js';
import { readme } from '../helpers/readme.js';

const at = (iso: string): { time: number; id: string } => ({ time: Date.parse(iso), id: iso });
const kept = (items: { time: number; id: string }[], rules: RetentionRules, keepOldest = true): string[] =>
  applyGfs(items, rules, { keepOldest })
    .filter((d) => d.keep)
    .map((d) => d.item.id);

describe('GFS policy (pure)', () => {
  it('refuses an empty policy', () => {
    expect(() => applyGfs([at('2024-05-01T00:00:00Z')], {})).toThrow(/empty retention policy/);
    expect(() => applyGfs([], { keep_daily: 0, keep_weekly: 0 })).toThrow(/empty retention policy/);
    // A bad keep_within (the mandate parser refuses it earlier, at its key) is no silent "off".
    expect(() => applyGfs([at('2024-05-01T00:00:00Z')], { keep_within: '6mo' })).toThrow('invalid keep_within: expected a duration like 30s, 5m, 26h or 7d, got "6mo"');
  });

  it('buckets ISO weeks across the year boundary', () => {
    expect(isoWeek(Date.parse('2024-12-29T23:59:59Z'))).toBe('2024-W52'); // Sunday
    expect(isoWeek(Date.parse('2024-12-30T00:00:00Z'))).toBe('2025-W01'); // Monday
    expect(isoWeek(Date.parse('2021-01-03T12:00:00Z'))).toBe('2020-W53');
    expect(isoWeek(Date.parse('2026-01-01T00:00:00Z'))).toBe('2026-W01');
    const items = ['2025-01-01T10:00:00Z', '2024-12-30T10:00:00Z', '2024-12-29T10:00:00Z', '2024-12-23T10:00:00Z'].map(at);
    // 2025-01-01 and 2024-12-30 share week 2025-W01: the newer of them counts.
    expect(kept(items, { keep_weekly: 2 })).toEqual(['2025-01-01T10:00:00Z', '2024-12-29T10:00:00Z']);
    expect(applyGfs(items, { keep_weekly: 2 })[0]?.reasons).toEqual(['weekly 2025-W01']);
  });

  it('keeps the oldest too when a rule has buckets left (restic >= 0.16), not otherwise', () => {
    const items = ['2024-05-03T10:00:00Z', '2024-05-03T08:00:00Z', '2024-05-02T10:00:00Z', '2024-05-02T09:00:00Z'].map(at);
    expect(kept(items, { keep_daily: 7 })).toEqual(['2024-05-03T10:00:00Z', '2024-05-02T10:00:00Z', '2024-05-02T09:00:00Z']);
    expect(kept(items, { keep_daily: 7 }, false)).toEqual(['2024-05-03T10:00:00Z', '2024-05-02T10:00:00Z']);
    expect(applyGfs(items, { keep_daily: 7 })[3]?.reasons).toEqual(['daily 2024-05-02 (oldest, 5 left)']);
    // All buckets used up: the oldest goes.
    expect(kept(items, { keep_daily: 2 })).toEqual(['2024-05-03T10:00:00Z', '2024-05-02T10:00:00Z']);
  });

  it('ORs the rules and names every rule that keeps a backup', () => {
    const items = ['2024-05-03T10:00:00Z', '2024-05-03T08:00:00Z', '2024-04-30T10:00:00Z', '2024-03-01T10:00:00Z'].map(at);
    const decisions = applyGfs(items, { keep_last: 2, keep_daily: 1, keep_monthly: 2 }, { keepOldest: false });
    expect(decisions.map((d) => [d.item.id, d.reasons])).toEqual([
      ['2024-05-03T10:00:00Z', ['last 1', 'daily 2024-05-03', 'monthly 2024-05']],
      ['2024-05-03T08:00:00Z', ['last 2']],
      ['2024-04-30T10:00:00Z', ['monthly 2024-04']],
      ['2024-03-01T10:00:00Z', []],
    ]);
  });

  it('measures keep_within from the newest backup with the shared duration parser (exclusive bound)', () => {
    // The one parser of labels and config: m is minutes, w is 7 days, no months or years.
    expect(withinMs({ keep_within: '30d' })).toBe(30 * 86_400_000);
    expect(withinMs({ keep_within: '90m' })).toBe(90 * 60_000);
    expect(withinMs({ keep_within: '2w' })).toBe(withinMs({ keep_within: '14d' }));
    expect(withinMs({ keep_within: '1d12h' })).toBe(withinMs({ keep_within: '36h' }));
    expect(withinMs({})).toBeNull();
    for (const bad of ['', '30', '1y', '6mo', '1m2d', '0d', '-1d', '1.5d']) expect(() => withinMs({ keep_within: bad }), bad).toThrow(/^invalid keep_within: expected a duration like/);
    // 30 days before 2024-03-31 12:00 is 2024-03-01 12:00 (a fixed span, leap day included): that instant is out.
    const items = ['2024-03-31T12:00:00Z', '2024-03-01T12:00:01Z', '2024-03-01T12:00:00Z'].map(at);
    expect(kept(items, { keep_within: '30d' })).toEqual(['2024-03-31T12:00:00Z', '2024-03-01T12:00:01Z']);
    expect(applyGfs(items, { keep_within: ' 30d ' })[0]?.reasons).toEqual(['within 30d']);
    const minutes = ['2024-03-31T12:00:00Z', '2024-03-31T10:30:01Z', '2024-03-31T10:30:00Z'].map(at);
    expect(kept(minutes, { keep_within: '90m' })).toEqual(['2024-03-31T12:00:00Z', '2024-03-31T10:30:01Z']);
  });

  it('never removes the newest regular backup and keeps safety backups by their own rule', () => {
    const manifest = (name: string, created: string, tags?: string[]): { manifest: Manifest } => ({
      manifest: { name, created_at: created, ...(tags ? { tags } : {}) } as Manifest,
    });
    const backups = [manifest('a', '2024-05-01T00:00:00Z'), manifest('b', '2024-05-02T00:00:00Z'), manifest('s', '2024-04-01T00:00:00Z', ['safety'])];
    const plan = planRetention(backups, { keep: 1, rules: { keep_within: '1h' } }, new Date('2024-05-02T00:00:00Z'));
    expect(plan.map((p) => [p.backup.manifest.name, p.keep, p.reasons])).toEqual([
      ['b', true, ['within 1h']],
      ['a', false, ['no rule keeps it']],
      ['s', true, ['safety: newest 3']],
    ]);
  });
});

describe('GFS retention keys', () => {
  const { config } = parseConfigText('targets:\n  - { name: local, type: local, path: /b }\n', 'backer.yml', {}, '/etc/backer');
  const fromLabels = (labels: Record<string, string>) =>
    parseMandate({
      name: 'gfs-db',
      raw: labelsToRaw({ 'backer.type': 'redis', ...labels }),
      origin: 'labels',
      container: 'gfs-db',
      describe: (key) => `container gfs-db label backer.${key}`,
      config,
      sources,
    });

  it('reads the labels into rules; retention=N stays keep_last', () => {
    const { mandate, problems } = fromLabels({ 'backer.retention.keep_daily': '7', 'backer.retention.keep_within': '30d', 'backer.retention': '3' });
    expect(problems).toEqual([]);
    expect(mandate).toMatchObject({ retention: 3, retention_rules: { keep_last: 3, keep_daily: 7, keep_within: '30d' } });
    const plain = fromLabels({ 'backer.retention': '4' });
    expect(plain.mandate?.retention).toBe(4);
    expect(plain.mandate?.retention_rules).toBeUndefined();
  });

  it('names the key of every bad value, an empty policy, a conflict and an unknown retention key', () => {
    const where = (labels: Record<string, string>): string[] => fromLabels(labels).problems.map((p) => `${p.where}: ${p.message}`);
    expect(where({ 'backer.retention.keep_daily': 'seven' })).toEqual([
      'container gfs-db label backer.retention.keep_daily: expected a whole number of buckets to keep (0 or more), received "seven"',
    ]);
    // keep_within reads through the shared duration parser; a months or years look gets a hint.
    expect(where({ 'backer.retention.keep_within': '6mo' })).toEqual([
      'container gfs-db label backer.retention.keep_within: expected a duration like 30s, 5m, 26h or 7d, got "6mo"; months and years are not units: write days (180d, 365d)',
    ]);
    expect(where({ 'backer.retention.keep_within': '1y' })[0]).toMatch(/got "1y"; months and years are not units: write days \(180d, 365d\)$/);
    expect(where({ 'backer.retention.keep_within': '30' })).toEqual(['container gfs-db label backer.retention.keep_within: expected a duration like 30s, 5m, 26h or 7d, got "30"']);
    expect(where({ 'backer.retention.keep_within': '0d' })).toEqual(['container gfs-db label backer.retention.keep_within: expected a duration like 30s, 5m, 26h or 7d, got "0d"']);
    expect(where({ 'backer.retention.keep_daily': '0', 'backer.retention.keep_weekly': '0' })).toEqual([
      'container gfs-db label backer.retention.keep_daily: empty retention policy: retention.keep_daily, retention.keep_weekly are all 0, so nothing would be kept; set at least one retention.keep_* above 0 (e.g. retention.keep_daily: 7)',
    ]);
    expect(where({ 'backer.retention': '2', 'backer.retention.keep_last': '3' })[0]).toMatch(/^container gfs-db label backer\.retention: .*set only one/);
    expect(where({ 'backer.retention.keep_dayly': '7' })[0]).toMatch(/unknown label backer\.retention\.keep_dayly \(did you mean backer\.retention\.keep_daily\?\)/);
  });

  it('reads a static mandate as retention: { keep_* } and keeps retention: N working', () => {
    const text = `targets:\n  - { name: local, type: local, path: /b }\nmandates:\n  gfs:\n    type: files\n    files: { path: /srv }\n    retention:\n      keep_last: 2\n      keep_daily: 7\n      keep_monthly: 12\n  old:\n    type: files\n    files: { path: /srv }\n    retention: 5\n  bad:\n    type: files\n    files: { path: /srv }\n    retention: { keep_weekly: -1 }\n  minutes:\n    type: files\n    files: { path: /srv }\n    retention: { keep_within: 90m }\n  months:\n    type: files\n    files: { path: /srv }\n    retention: { keep_within: 6mo }\n`;
    const loaded = parseConfigText(text, 'backer.yml', {}, '/etc/backer');
    const { mandates, problems } = parseStaticMandates(loaded.config, sources, 'backer.yml');
    expect(mandates.find((m) => m.name === 'gfs')?.retention_rules).toEqual({ keep_last: 2, keep_daily: 7, keep_monthly: 12 });
    expect(mandates.find((m) => m.name === 'old')).toMatchObject({ retention: 5 });
    expect(mandates.find((m) => m.name === 'minutes')?.retention_rules).toEqual({ keep_within: '90m' });
    expect(problems.map((p) => `${p.where}: ${p.message}`)).toEqual([
      'backer.yml: mandates.bad.retention.keep_weekly: expected a whole number of buckets to keep (0 or more), received "-1"',
      'backer.yml: mandates.months.retention.keep_within: expected a duration like 30s, 5m, 26h or 7d, got "6mo"; months and years are not units: write days (180d, 365d)',
    ]);
  });

  it('reads the README example of the Retention section', () => {
    const section = readme.slice(readme.indexOf('### Retention (GFS)'));
    const example = /```yaml\n([\s\S]*?)```/.exec(section)?.[1] ?? '';
    const loaded = parseConfigText(`targets:\n  - { name: local, type: local, path: /b }\n${example}`, 'README.md', {}, '/etc/backer');
    const { mandates, problems } = parseStaticMandates(loaded.config, sources, 'README.md');
    expect(problems).toEqual([]);
    expect(mandates[0]?.retention_rules).toEqual({ keep_last: 3, keep_daily: 7, keep_weekly: 4, keep_monthly: 12, keep_yearly: 3, keep_within: '30d' });
  });
});
