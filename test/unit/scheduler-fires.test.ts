import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import type { MandateSpec } from '../../src/mandates/types.js';
import { createMemoryJobStore } from '../../src/queue/memory-store.js';
import { createScheduler, type FireInfo, type FireLog, type Scheduler } from '../../src/scheduler/scheduler.js';

const logger = pino({ level: 'silent' });
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const schedulers: Scheduler[] = [];
afterEach(async () => {
  await Promise.all(schedulers.splice(0).map((s) => s.close()));
});

function spec(name: string, interval: string): MandateSpec {
  const source = { type: 'files', container: null, options: {} };
  return { name, origin: 'config', source, interval, targets: ['local'], middleware: [], retention: 1, priority: 5, name_pattern: '<DATE>', verify: { interval: null, level: 'decode' }, alerts: { max_age_ms: null, min_size_bytes: null, size_change_percent: null } };
}

/** The state database's fire log (the memory store has the same semantics). */
function fireLog(): FireLog {
  const store = createMemoryJobStore();
  return { claim: (m, k, at) => store.claimFire(m, k, at), last: (m, k) => store.lastFire(m, k) };
}

function scheduler(fires: FireLog, catchUp: 'skip' | 'once', fired: [string, FireInfo][], windowMs = 3_600_000): Scheduler {
  const s = createScheduler({ trigger: (m, _run, info) => fired.push([m, info]), fires, catchUp: { mode: catchUp, windowMs }, logger });
  schedulers.push(s);
  return s;
}

describe('idempotent schedules', () => {
  it('two schedulers on one fire log (a restart racing its predecessor) trigger each fire time once', async () => {
    const fires = fireLog();
    const fired: [string, FireInfo][] = [];
    scheduler(fires, 'skip', fired).update([spec('db', '* * * * * *')]);
    scheduler(fires, 'skip', fired).update([spec('db', '* * * * * *')]);
    await sleep(2_300);
    const times = fired.map(([, info]) => info.at.toISOString());
    expect(times.length).toBeGreaterThanOrEqual(2);
    expect(new Set(times).size).toBe(times.length);
    expect(fired.every(([, info]) => !info.catchUp && info.at.getMilliseconds() === 0)).toBe(true);
  });
});

describe('schedule.catch_up', () => {
  const daily = '0 3 * * *';
  /** The fire time of `daily` before now, and the one before that. */
  function lastTwoFires(): [Date, Date] {
    const now = new Date();
    const today = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate(), 3));
    const latest = today.getTime() <= now.getTime() ? today : new Date(today.getTime() - 86_400_000);
    return [latest, new Date(latest.getTime() - 86_400_000)];
  }

  it('once: one catch-up run when the newest fire time was missed within the window', () => {
    const fires = fireLog();
    const [missed, before] = lastTwoFires();
    fires.claim('db', 'backup', before);
    const fired: [string, FireInfo][] = [];
    const s = scheduler(fires, 'once', fired, 2 * 86_400_000);
    s.update([spec('db', daily)]);
    expect(fired).toEqual([['db', { at: missed, catchUp: true }]]);
    // The catch-up is recorded: a second start (or reconcile) does not run it again.
    scheduler(fires, 'once', fired, 2 * 86_400_000).update([spec('db', daily)]);
    expect(fired).toHaveLength(1);
    expect(fires.last('db', 'backup')).toEqual(missed);
  });

  it('once: nothing when the missed fire time is older than the window, or when it ran', () => {
    const [missed, before] = lastTwoFires();
    const old = fireLog();
    old.claim('db', 'backup', before);
    const fired: [string, FireInfo][] = [];
    // A window shorter than the time since the missed fire.
    scheduler(old, 'once', fired, Math.max(1, Date.now() - missed.getTime() - 1000)).update([spec('db', daily)]);
    const ran = fireLog();
    ran.claim('db', 'backup', missed);
    scheduler(ran, 'once', fired, 2 * 86_400_000).update([spec('db', daily)]);
    expect(fired).toEqual([]);
  });

  it('once: a schedule that never fired before (a new mandate) starts with its next fire time', () => {
    const fired: [string, FireInfo][] = [];
    scheduler(fireLog(), 'once', fired, 2 * 86_400_000).update([spec('db', daily)]);
    expect(fired).toEqual([]);
  });

  it('skip: never catches up', () => {
    const fires = fireLog();
    fires.claim('db', 'backup', lastTwoFires()[1]);
    const fired: [string, FireInfo][] = [];
    scheduler(fires, 'skip', fired, 2 * 86_400_000).update([spec('db', daily)]);
    expect(fired).toEqual([]);
  });
});
