import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { createMemoryJobStore } from '../../src/queue/memory-store.js';
import { openStateDb } from '../../src/state/db.js';
import { createSqliteJobStore } from '../../src/state/job-store.js';
import { describeJobStore, finished, makeJob } from './store-suite.js';

const silent = pino({ level: 'silent' });
const dataDir = (): string => mkdtempSync(join(tmpdir(), 'bk-jobstore-'));

describeJobStore('memory', () => {
  const store = createMemoryJobStore();
  return { store, dispose: () => store.close() };
});

describeJobStore('sqlite', () => {
  const state = openStateDb(dataDir(), silent);
  const store = createSqliteJobStore(state);
  return {
    store,
    dispose: () => {
      store.close();
      state.close();
    },
  };
});

describe('SQLite job store across reopen', () => {
  it('keeps jobs, events, leases, stats and fires when the database is opened again', () => {
    const dir = dataDir();
    const first = openStateDb(dir, silent);
    const store = createSqliteJobStore(first);
    const running = makeJob({ state: 'running' });
    const done = finished(makeJob(), 'succeeded', '2026-01-01T00:00:00.000Z', 2000);
    store.save(running);
    store.save(done);
    store.lease(running.id, 'host:1:a', new Date('2026-01-01T00:01:00.000Z'));
    store.addEvent(done.id, { at: done.created_at, attempt: 1, type: 'succeeded', message: null });
    store.claimFire('m1', 'backup', new Date('2026-01-01T00:00:00.000Z'));
    store.close();
    // The store closes nothing shared: the database is still usable until its owner closes it.
    expect(first.db.open).toBe(true);
    first.close();
    first.close();

    const again = openStateDb(dir, silent);
    const reopened = createSqliteJobStore(again);
    expect(reopened.get(running.id)).toEqual(running);
    expect(reopened.get(done.id)).toEqual(done);
    expect(reopened.orphaned('host:2:b').map((j) => j.id)).toEqual([running.id]);
    expect(reopened.events(done.id)).toHaveLength(1);
    expect(reopened.mandateStats('m1')?.successes).toBe(1);
    expect(reopened.claimFire('m1', 'backup', new Date('2026-01-01T00:00:00.000Z'))).toBe(false);
    again.close();
  });
});
