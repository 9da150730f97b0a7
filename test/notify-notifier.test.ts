/**
 * The notifier in process, on a real state database and a real event bus, delivering to real
 * HTTP receivers (generic JSON webhooks): which bus event becomes which notification, filters
 * (events, mandates globs, min_level), de-duplication with reminders every `repeat` (also after a
 * restart: the open problems live in state.db), retries of a failing receiver, and ordering.
 */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createEventBus, type EventBus } from '../src/events/bus.js';
import { SecretRegistry } from '../src/logging/logger.js';
import { createNotifier, type Notifier } from '../src/notify/notifier.js';
import { DEFAULT_EVENTS, type NotifyEvent } from '../src/notify/events.js';
import type { NotificationConfig } from '../src/notify/schema.js';
import type { AnyJob, JobKind } from '../src/queue/types.js';
import { openStateDb, type StateDb } from '../src/state/db.js';
import type { MandateHealth, MandateStatus } from '../src/status/types.js';
import { capturingLogger } from './helpers/logs.js';
import { startHttpReceiver, type HttpReceiver, type RecordedRequest } from './helpers/receivers.js';

const TOKEN = 'nt_0123456789abcdefTOKEN';
const HOUR = 3_600_000;
let http: HttpReceiver;
let seq = 0;

interface Harness {
  bus: EventBus;
  notifier: Notifier;
  state: StateDb;
  now: { t: number };
  lines: ReturnType<typeof capturingLogger>['lines'];
  /** The bodies received at /NAME since the harness started. */
  got(name: string): Record<string, unknown>[];
}
const open: Harness[] = [];

function destination(name: string, extra: Partial<NotificationConfig> = {}): NotificationConfig {
  return { name, url: `generic+http://${http.host}/${name}/${TOKEN}`, events: [...DEFAULT_EVENTS], mandates: null, min_level: 'info', repeat: 24 * HOUR, templates: {}, ...extra };
}

async function harness(configs: NotificationConfig[], dir?: string): Promise<Harness & { dir: string }> {
  const dataDir = dir ?? (await mkdtemp(join(tmpdir(), 'notify-notifier-')));
  const { logger, lines } = capturingLogger();
  const state = openStateDb(dataDir, logger);
  const bus = createEventBus();
  const now = { t: Date.parse('2026-11-29T12:00:00Z') };
  const start = http.requests.length;
  const notifier = createNotifier({ config: { notifications: configs }, events: bus, secrets: new SecretRegistry(), logger, state, clock: () => new Date(now.t), retry: { tries: 3, delayMs: 50 }, sweepMs: 20, mandateTargets: () => ['local'] });
  notifier.start();
  const h = {
    bus, notifier, state, now, lines, dir: dataDir,
    got: (name: string) => http.requests.slice(start).filter((r: RecordedRequest) => r.path.startsWith(`/${name}/`)).map((r) => JSON.parse(r.body) as Record<string, unknown>),
  };
  open.push(h);
  return h;
}

function job(kind: JobKind, mandate: string, state: AnyJob['state'], error: AnyJob['error'] = null): AnyJob {
  seq++;
  return {
    id: `job-${seq}`, kind, mandate, params: null, progress: null, trigger: 'api', state, priority: 5, attempts: 1, not_before: null, wait_ms: 0,
    created_at: '2026-11-29T12:00:00.000Z', started_at: '2026-11-29T12:00:00.000Z', finished_at: '2026-11-29T12:00:01.000Z', error, result: null,
  };
}

const FAIL = { code: 'DUMP_FAILED' as const, message: 'cannot read /srv/missing' };
const failBackup = (h: Harness, m: string): void => h.bus.emit({ type: 'job.failed', job: job('backup', m, 'failed', FAIL) });
const succeedBackup = (h: Harness, m: string): void => h.bus.emit({ type: 'job.succeeded', job: job('backup', m, 'succeeded') });
function status(h: Harness, m: string, s: MandateStatus, previous: MandateStatus | null, reason: string | null = null): void {
  const health = { mandate: m, status: s, reason } as MandateHealth;
  h.bus.emit({ type: 'mandate.status', mandate: m, status: s, previous, health });
}
const events = (bodies: Record<string, unknown>[]): NotifyEvent[] => bodies.map((b) => b.event as NotifyEvent);

beforeAll(async () => {
  http = await startHttpReceiver();
});
afterEach(async () => {
  for (const h of open.splice(0)) {
    await h.notifier.close();
    h.state.close();
  }
});
afterAll(async () => {
  await http.close();
});

describe('de-duplication', () => {
  it('one backup_failed per problem, a reminder after repeat, backup_recovered once, then a new failure is new', async () => {
    const h = await harness([destination('dedup', { repeat: 2 * HOUR })]);
    failBackup(h, 'shop');
    failBackup(h, 'shop');
    await h.notifier.idle();
    expect(events(h.got('dedup'))).toEqual(['backup_failed']);
    expect(h.got('dedup')[0]).toMatchObject({ mandate: 'shop', target: 'local', level: 'error', reminder: false, error: FAIL, title: 'Backup of shop failed' });
    h.now.t += 2 * HOUR;
    await new Promise((r) => setTimeout(r, 100));
    await h.notifier.idle();
    expect(h.got('dedup').map((b) => [b.event, b.reminder, b.title])).toEqual([
      ['backup_failed', false, 'Backup of shop failed'],
      ['backup_failed', true, 'Reminder: Backup of shop failed'],
    ]);
    succeedBackup(h, 'shop');
    status(h, 'shop', 'ok', 'failing');
    await h.notifier.idle();
    const recovered = h.got('dedup')[2];
    expect(recovered).toMatchObject({ event: 'backup_recovered', level: 'info', mandate: 'shop' });
    expect(recovered?.message).toContain('succeeded again after failing since 2026-11-29T12:00:00.000Z');
    failBackup(h, 'shop');
    await h.notifier.idle();
    expect(events(h.got('dedup'))).toEqual(['backup_failed', 'backup_failed', 'backup_recovered', 'backup_failed']);
  });

  it('a restart on the same state.db neither repeats the failure nor forgets it', async () => {
    const first = await harness([destination('restart')]);
    failBackup(first, 'crm');
    await first.notifier.idle();
    await first.notifier.close();
    first.state.close();
    open.splice(open.indexOf(first), 1);
    const second = await harness([destination('restart')], first.dir);
    failBackup(second, 'crm');
    await second.notifier.idle();
    expect(events(second.got('restart'))).toEqual([]);
    succeedBackup(second, 'crm');
    await second.notifier.idle();
    expect(events(second.got('restart'))).toEqual(['backup_recovered']);
  });

  it('stale from the status monitor is one notification; recovery after staleness says so', async () => {
    const h = await harness([destination('stale')]);
    status(h, 'wiki', 'stale', 'ok', 'no successful backup for 2h (max age 1h 30m)');
    status(h, 'wiki', 'stale', 'stale', 'no successful backup for 3h (max age 1h 30m)');
    await h.notifier.idle();
    expect(h.got('stale')).toHaveLength(1);
    expect(h.got('stale')[0]).toMatchObject({ event: 'stale', level: 'warning', command: 'backer mandates show wiki', job_id: null });
    expect(h.got('stale')[0]?.message).toContain('no successful backup for 2h (max age 1h 30m)');
    status(h, 'wiki', 'ok', 'stale');
    await h.notifier.idle();
    expect(h.got('stale')[1]?.message).toContain('after being stale since');
  });
});

describe('mapping and filters', () => {
  it('backup_succeeded only when asked; verification, size anomaly and restores map to their events', async () => {
    const h = await harness([destination('all', { events: ['backup_succeeded', 'verification_failed', 'size_anomaly', 'restore_started', 'restore_finished'] })]);
    succeedBackup(h, 'db');
    h.bus.emit({ type: 'job.failed', job: job('verify', 'db', 'failed', { code: 'VERIFY_FAILED', message: 'sha256 mismatch' }) });
    h.bus.emit({ type: 'job.failed', job: job('drill', 'db', 'failed', { code: 'DRILL_FAILED', message: 'restore failed' }) });
    h.bus.emit({ type: 'mandate.size_anomaly', mandate: 'db', job_id: 'job-x', raw_bytes: 10, median_bytes: 1000, min_bytes: null, reason: 'raw size 10 B is 99% below the median 1000 B' });
    const restore = job('restore', 'db', 'running');
    h.bus.emit({ type: 'job.started', job: restore });
    h.bus.emit({ type: 'job.failed', job: { ...restore, state: 'failed', error: { code: 'RESTORE_FAILED', message: 'mysql exited with 1' } } });
    await h.notifier.idle();
    const got = h.got('all');
    // The drill failure is the same open verification problem: not repeated.
    expect(events(got)).toEqual(['backup_succeeded', 'verification_failed', 'size_anomaly', 'restore_started', 'restore_finished']);
    expect(got[2]).toMatchObject({ level: 'warning', job_id: 'job-x', command: 'backer jobs show job-x' });
    expect(got[4]).toMatchObject({ level: 'error', title: 'Restore of db failed' });
  });

  it('mandates globs and min_level choose the destinations; templates override title and body', async () => {
    const h = await harness([
      destination('shops', { mandates: ['shop-*'] }),
      destination('errors', { min_level: 'error', events: ['backup_failed', 'stale'] }),
      destination('custom', { templates: { backup_failed: { title: '[{{level}}] {{mandate}} down', body: '{{error_code}} on {{target}}: see {{command}}' } } }),
    ]);
    failBackup(h, 'shop-eu');
    failBackup(h, 'blog');
    status(h, 'blog', 'stale', 'failing');
    await h.notifier.idle();
    expect(h.got('shops').map((b) => b.mandate)).toEqual(['shop-eu']);
    expect(h.got('errors').map((b) => [b.event, b.mandate])).toEqual([['backup_failed', 'shop-eu'], ['backup_failed', 'blog']]);
    const custom = h.got('custom')[0];
    expect(custom?.title).toBe('[error] shop-eu down');
    expect(custom?.message).toMatch(/^DUMP_FAILED on local: see backer jobs show job-\d+$/);
  });
});

describe('delivery', () => {
  it('retries a failing receiver, logs each failure with the name and the redacted URL, keeps the order', async () => {
    const h = await harness([destination('flaky')]);
    http.failNext(2);
    failBackup(h, 'erp');
    succeedBackup(h, 'erp');
    await h.notifier.idle();
    expect(events(h.got('flaky'))).toEqual(['backup_failed', 'backup_failed', 'backup_failed', 'backup_recovered']);
    const warnings = h.lines().filter((l) => l.msg.startsWith('notification to flaky failed'));
    expect(warnings.map((l) => [l.attempt, l.url, l.error])).toEqual([
      [1, `generic+http://${http.host}/flaky/***`, 'HTTP 503 Service Unavailable: {"error":"unavailable"}'],
      [2, `generic+http://${http.host}/flaky/***`, 'HTTP 503 Service Unavailable: {"error":"unavailable"}'],
    ]);
    expect(h.lines().filter((l) => l.msg === 'notification sent').map((l) => [l.event, l.attempt])).toEqual([['backup_failed', 3], ['backup_recovered', 1]]);
    expect(JSON.stringify(h.lines())).not.toContain(TOKEN);
  });
});
