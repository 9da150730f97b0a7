/**
 * Target usage (src/status/target-usage.ts) over a real local target whose listing can be made to
 * fail, and readiness (src/status/readiness.ts) over a real state.db and a Docker that hangs.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BackerError } from '../../src/errors.js';
import { createEventBus } from '../../src/events/bus.js';
import type { AnyJob } from '../../src/queue/types.js';
import { openStateDb } from '../../src/state/db.js';
import { createReadiness } from '../../src/status/readiness.js';
import { createTargetUsage } from '../../src/status/target-usage.js';
import { createTarget } from '../../src/targets/index.js';
import type { Target } from '../../src/targets/types.js';
import { capturingLogger } from '../helpers/logs.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bk-status-usage-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** The real local target, whose list() fails while `broken.on` is true. */
function flaky(broken: { on: boolean; lists: number }): Target {
  const real = createTarget({ name: 'disk', type: 'local', path: join(dir, 'backups'), file_mode: '0600', dir_mode: '0700' } as Parameters<typeof createTarget>[0]);
  return new Proxy(real, {
    get(target, prop, receiver) {
      if (prop !== 'list') return Reflect.get(target, prop, receiver) as unknown;
      return async (prefix: string) => {
        broken.lists += 1;
        if (broken.on) throw new BackerError('TARGET_READ_FAILED', 'the disk is gone', { component: 'target' });
        return real.list(prefix);
      };
    },
  });
}

const finished = (targets: string[]): AnyJob =>
  ({ id: 'j1', kind: 'backup', mandate: 'm', state: 'succeeded', result: { targets: targets.map((target) => ({ target })) } }) as unknown as AnyJob;

describe('createTargetUsage', () => {
  it('lists at start, after jobs (debounced), marks a failing target unhealthy and keeps its figures', async () => {
    const broken = { on: false, lists: 0 };
    const events = createEventBus();
    const { logger, lines } = capturingLogger();
    let now = new Date('2026-11-30T10:00:00Z');
    const usage = createTargetUsage({ targets: new Map([['disk', flaky(broken)]]), events, logger, clock: () => now, debounceMs: 50, intervalMs: 3_600_000 });
    expect(usage.get('disk')).toMatchObject({ checked_at: null, healthy: true, type: 'local' });
    usage.start();
    await usage.refresh();
    expect(usage.current()).toEqual([{ target: 'disk', type: 'local', backups: 0, bytes: 0, problems: 0, healthy: true, error: null, checked_at: now.toISOString() }]);

    broken.on = true;
    const before = broken.lists;
    now = new Date('2026-11-30T10:05:00Z');
    // Three jobs end at once: one listing.
    for (let i = 0; i < 3; i++) events.emit({ type: 'job.succeeded', job: finished(['disk']) });
    // Jobs on other targets, and other kinds, cause none.
    events.emit({ type: 'job.succeeded', job: finished(['elsewhere']) });
    await new Promise((r) => setTimeout(r, 300));
    expect(broken.lists - before).toBe(1);
    expect(usage.get('disk')).toMatchObject({ healthy: false, error: { code: 'TARGET_READ_FAILED', message: 'the disk is gone' }, checked_at: '2026-11-30T10:00:00.000Z' });
    expect(lines().filter((l) => l.msg === 'target disk cannot be listed')).toHaveLength(1);

    broken.on = false;
    await usage.refresh('disk');
    expect(usage.get('disk')).toMatchObject({ healthy: true, error: null, checked_at: now.toISOString() });
    expect(lines().some((l) => l.msg === 'target disk can be listed again')).toBe(true);
    await usage.close();
    await usage.close();
  });
});

describe('createReadiness', () => {
  it('is ready with both checks ok, disabled without Docker, failed when Docker hangs or state.db is closed', async () => {
    const state = openStateDb(join(dir, 'data'), capturingLogger().logger);
    const up = { ping: () => Promise.resolve('OK') } as unknown as Pick<Docker, 'ping'>;
    const hung = { ping: () => new Promise(() => undefined) } as unknown as Pick<Docker, 'ping'>;
    expect(await createReadiness({ docker: up, state }).check()).toEqual({ ready: true, checks: { docker: { status: 'ok', message: null }, state: { status: 'ok', message: null } } });
    expect(await createReadiness({ docker: null, state }).check()).toMatchObject({ ready: true, checks: { docker: { status: 'disabled' } } });
    const started = Date.now();
    const slow = await createReadiness({ docker: hung, state, timeoutMs: 200 }).check();
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(slow).toEqual({ ready: false, checks: { docker: { status: 'failed', message: 'Docker is not reachable: Docker did not answer within 0.2 s' }, state: { status: 'ok', message: null } } });
    state.close();
    const closed = await createReadiness({ docker: up, state }).check();
    expect(closed).toMatchObject({ ready: false, checks: { docker: { status: 'ok' }, state: { status: 'failed', message: expect.stringContaining('the state database cannot be read') as string } } });
  });
});
