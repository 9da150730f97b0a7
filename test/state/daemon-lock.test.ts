import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { BackerError } from '../../src/errors.js';
import { claimDataDir, liveOwner, ownerKey, recordedOwner, releaseDataDir } from '../../src/state/daemon-lock.js';
import { openStateDb } from '../../src/state/db.js';
import { currentOwner, processStart, type ProcessOwner } from '../../src/state/owner.js';

const open = () => openStateDb(join(mkdtempSync(join(tmpdir(), 'bk-lock-')), 'data'), pino({ level: 'silent' }));

/** A real process other than this one, as a ProcessOwner; stopped by the returned function. */
function otherProcess(): { owner: ProcessOwner; stop: () => Promise<void> } {
  const child = spawn('sleep', ['60']);
  const pid = child.pid ?? 0;
  const closed = new Promise<void>((resolve) => child.on('close', () => resolve()));
  return {
    owner: { pid, start: processStart(pid), host: hostname() },
    stop: async () => {
      child.kill('SIGKILL');
      await closed;
    },
  };
}

describe('data_dir lock', () => {
  it('ownerKey is host:pid:start', () => {
    expect(ownerKey({ host: 'h', pid: 12, start: 'boot:34' })).toBe('h:12:boot:34');
    expect(ownerKey({ host: 'h', pid: 12, start: null })).toBe('h:12:-');
    expect(ownerKey(currentOwner())).toBe(ownerKey(currentOwner()));
  });

  it('records the owner, refuses another live one, and takes over a dead one', async () => {
    const state = open();
    const other = otherProcess();
    claimDataDir(state, other.owner);
    expect(liveOwner(state)).toEqual(other.owner);
    let err: unknown;
    try {
      claimDataDir(state);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(BackerError);
    expect((err as BackerError).code).toBe('STATE_LOCKED');
    expect((err as BackerError).message).toBe(`another Backer daemon (pid ${other.owner.pid}) uses data_dir ${join(state.path, '..')}`);
    // Claiming again for the holder itself is idempotent.
    claimDataDir(state, other.owner);
    await other.stop();
    expect(liveOwner(state)).toBeNull();
    claimDataDir(state);
    expect(recordedOwner(state)).toEqual(currentOwner());
    state.close();
  });

  it('releases only its own record, idempotently, also after close', async () => {
    const state = open();
    const other = otherProcess();
    claimDataDir(state, other.owner);
    releaseDataDir(state);
    expect(recordedOwner(state)).toEqual(other.owner);
    releaseDataDir(state, other.owner);
    releaseDataDir(state, other.owner);
    expect(recordedOwner(state)).toBeNull();
    await other.stop();
    state.close();
    releaseDataDir(state);
  });
});
