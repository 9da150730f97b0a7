/**
 * The state database seen from a real `backer daemon` process: a damaged or newer state.db stops
 * it at start with a message that names the file and the way out; a second daemon on the same
 * data_dir is refused while the first keeps answering.
 */
import { SCHEMA_VERSION } from '../../src/state/migrations.js';
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { pino } from 'pino';
import { beforeAll, describe, expect, it } from 'vitest';
import { callApi } from '../../src/cli/client.js';
import { EXIT } from '../../src/cli/exit-codes.js';
import { openStateDb } from '../../src/state/db.js';
import { cli } from '../helpers/cli.js';
import { spawnDaemon, waitForHealth, type DaemonProcess } from '../helpers/daemon-proc.js';
import { createTestEnv, type TestEnv } from '../helpers/env.js';

let env: TestEnv;
let dataDir: string;
let socket: string;
let statePath: string;

/** The exit code of a daemon that must stop by itself at start. */
async function exitCode(daemon: DaemonProcess, timeoutMs = 30_000): Promise<number | NodeJS.Signals | null> {
  const deadline = Date.now() + timeoutMs;
  while (daemon.child.exitCode === null && daemon.child.signalCode === null && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  const stillRunning = daemon.child.exitCode === null && daemon.child.signalCode === null;
  const code = await daemon.stop();
  expect(stillRunning, `daemon kept running:\n${daemon.output()}`).toBe(false);
  return code;
}

async function runsAfterReset(): Promise<void> {
  const reset = await cli(['state', 'reset', '--yes', '--config', env.configPath]);
  expect(reset.code, reset.stdout + reset.stderr).toBe(0);
  const daemon = spawnDaemon(env.configPath);
  try {
    await waitForHealth(daemon, socket);
  } finally {
    await daemon.stop();
  }
}

beforeAll(async () => {
  env = await createTestEnv('state-daemon');
  dataDir = join(env.dir, 'data');
  socket = join(dataDir, 'backer.sock');
  statePath = join(dataDir, 'state.db');
  openStateDb(dataDir, pino({ level: 'silent' })).close();
});

describe('backer daemon and its state.db', () => {
  it('refuses to start on a file that is not a database, naming it and `backer state reset`; runs after the reset', async () => {
    await writeFile(statePath, randomBytes(32 * 1024));
    const daemon = spawnDaemon(env.configPath);
    expect(await exitCode(daemon)).toBe(EXIT.FAILED);
    expect(daemon.output()).toContain(`state.db at ${statePath} is not a readable Backer state database`);
    expect(daemon.output()).toContain('backer state reset');
    const show = await cli(['state', 'show', '--config', env.configPath]);
    expect(show.code).toBe(EXIT.FAILED);
    expect(show.stderr).toContain(`state.db at ${statePath} is not a readable Backer state database`);
    await runsAfterReset();
  });

  it('refuses to start on a newer schema and leaves the file alone', async () => {
    const raw = new Database(statePath);
    raw.pragma('user_version = 42');
    raw.close();
    const daemon = spawnDaemon(env.configPath);
    expect(await exitCode(daemon)).toBe(EXIT.FAILED);
    expect(daemon.output()).toContain(`state.db at ${statePath} has schema version 42; this Backer knows up to ${SCHEMA_VERSION}`);
    const after = new Database(statePath, { readonly: true });
    expect(after.pragma('user_version', { simple: true })).toBe(42);
    after.close();
    await runsAfterReset();
  });

  it('refuses a second daemon on the same data_dir while the first keeps answering', async () => {
    const first = spawnDaemon(env.configPath);
    try {
      await waitForHealth(first, socket);
      const second = spawnDaemon(env.configPath);
      expect(await exitCode(second)).toBe(EXIT.REFUSED);
      expect(second.output()).toContain(`another Backer daemon (pid ${first.child.pid}) uses data_dir ${dataDir}`);
      expect(await callApi<{ status: string }>(socket, 'GET', '/v1/health')).toMatchObject({ status: 'ok' });
      const mandates = await cli(['mandates', 'list', '--config', env.configPath]);
      expect(mandates.code, mandates.stderr).toBe(0);
    } finally {
      await first.stop();
    }
  });

  it('takes over the record of a daemon killed with -9', async () => {
    const first = spawnDaemon(env.configPath);
    await waitForHealth(first, socket);
    first.child.kill('SIGKILL');
    expect(await first.stop()).toBe('SIGKILL');
    const second = spawnDaemon(env.configPath);
    try {
      await waitForHealth(second, socket);
      const show = await cli(['state', 'show', '--json', '--config', env.configPath]);
      expect(JSON.parse(show.stdout)).toMatchObject({ lock: { pid: second.child.pid, alive: true } });
    } finally {
      await second.stop();
    }
  });
});
