import { describe, expect, it } from 'vitest';
import type { Job, Mandate, SkippedMandate } from './api';
import { buildRows, sizesLabel } from './rows';

const mandate = (name: string, status: Mandate['status'], extra: Partial<Mandate> = {}): Mandate => ({
  name,
  origin: 'config',
  type: 'files',
  container: null,
  targets: ['local'],
  next_run: null,
  status,
  last_backup: null,
  ...extra,
});

const skipped: SkippedMandate = { name: 'bad', origin: 'labels', container: 'shop-db', problems: [{ where: 'label backer.interval', message: 'not a cron expression' }], last_backup: null };

describe('buildRows', () => {
  it('orders by urgency (skipped, failing, stale, never succeeded, ok), then by name', () => {
    const rows = buildRows([mandate('b-ok', 'ok'), mandate('a-ok', 'ok'), mandate('new', 'never_succeeded'), mandate('old', 'stale'), mandate('broken', 'failing')], [skipped], [], '');
    expect(rows.map((r) => r.name)).toEqual(['bad', 'broken', 'old', 'new', 'a-ok', 'b-ok']);
  });

  it("shows a failing mandate's job error, a skipped one's problems with where they are", () => {
    const failing = mandate('db', 'failing', {
      health: { status: 'failing', reason: 'last backup failed', last_success_at: null, last_error: { code: 'SOURCE_FAILED', message: 'access denied for user root' }, max_age_ms: 1000, age_ms: null, running: false },
    });
    const [bad, db] = buildRows([failing], [skipped], [], '');
    expect(db?.detail).toBe('access denied for user root');
    expect(bad?.detail).toBe('label backer.interval: not a cron expression');
    expect(bad?.runnable).toBe(false);
  });

  it('filters on name, container, type, status text and target; attaches the running backup job', () => {
    const job: Job = { id: 'j1', kind: 'backup', mandate: 'db', state: 'running', progress: { bytes: 10, total: null }, error: null };
    const rows = [mandate('db', 'ok', { container: 'shop-db', targets: ['s3'] }), mandate('files', 'never_succeeded')];
    expect(buildRows(rows, [], [job], 'SHOP').map((r) => r.name)).toEqual(['db']);
    expect(buildRows(rows, [], [job], 'never succeeded').map((r) => r.name)).toEqual(['files']);
    expect(buildRows(rows, [], [job], 's3')[0]?.job?.id).toBe('j1');
  });

  it('carries the recent raw sizes (oldest first) for the sparkline, and says them in words', () => {
    const [row] = buildRows([{ ...mandate('db', 'ok'), recent_sizes: [1024, 2048, 3 * 1024 * 1024] }], [], [], '');
    expect(row?.recentSizes).toEqual([1024, 2048, 3 * 1024 * 1024]);
    expect(sizesLabel(row?.recentSizes ?? [])).toBe('last 3 sizes, from 1.0 KiB to 3.0 MiB');
    expect(buildRows([mandate('old', 'ok')], [], [], '')[0]?.recentSizes).toEqual([]);
  });
});
