import { watch } from 'node:fs';
import { lstat, mkdir, mkdtemp, readdir, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Hono } from 'hono';
import { beforeAll, describe, expect, it } from 'vitest';
import { createApiServer } from '../src/api/server.js';
import { callApi } from '../src/cli/client.js';
import { isBackerError } from '../src/errors.js';
import { spawnDaemon, waitForHealth } from './helpers/daemon-proc.js';
import { createTestEnv, type TestEnv } from './helpers/env.js';

// bind(2) creates a unix socket with 0777 & ~umask; a chmod afterwards leaves a window in which
// any local user may connect. Backer binds inside a private 0700 directory and renames the socket
// into place (see listenPrivately in src/api/server.ts). These tests run the daemon with umask 000,
// the worst case, and look at the socket at the very moment of bind (a `node --import` probe that
// hooks the 'listening' event, which fires right after bind and before any of Backer's callbacks)
// and at every appearance in the socket's directory.

const PROBE = fileURLToPath(new URL('./helpers/listen-probe.ts', import.meta.url));
let env: TestEnv;

beforeAll(async () => {
  env = await createTestEnv('secsock');
});

interface ProbeRecord {
  path: string;
  socket: number | null;
  dir: number | null;
}

/** Reachable by a user who is neither the owner nor in the group: a mode bit for "other" on the socket and search on its directory. */
const otherMayConnect = (r: ProbeRecord): boolean => r.socket !== null && r.dir !== null && (r.socket & 0o007) !== 0 && (r.dir & 0o001) !== 0;

describe('API socket mode', () => {
  it('is never reachable with a mode wider than 0660, even under umask 000', async () => {
    const dataDir = join(env.dir, 'data');
    await mkdir(dataDir, { recursive: true, mode: 0o755 });
    const socket = join(dataDir, 'backer.sock');
    const probeOut = join(env.dir, 'listen-probe.jsonl');
    const seen: number[] = [];
    const watcher = watch(dataDir, (_event, name) => {
      if (name !== 'backer.sock') return;
      void lstat(socket).then((s) => seen.push(s.mode & 0o777), () => undefined);
    });
    const daemon = spawnDaemon(env.configPath, { umask: '000', imports: [PROBE], env: { LISTEN_PROBE_OUT: probeOut } });
    try {
      await waitForHealth(daemon, socket);
      expect((await lstat(socket)).mode & 0o777).toBe(0o660);
      expect((await lstat(socket)).isSocket()).toBe(true);
      // No private directory is left behind.
      expect(await readdir(dataDir)).not.toContainEqual(expect.stringMatching(/^\./));
      expect((await callApi<{ status: string }>(socket, 'GET', '/v1/health')).status).toBe('ok');
    } finally {
      watcher.close();
      expect(await daemon.stop()).toBe(0);
    }
    const records = (await readFile(probeOut, 'utf8'))
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as ProbeRecord);
    expect(records).toHaveLength(1);
    const [bound] = records;
    // Bound elsewhere than the final path, in a directory only the owner can enter.
    expect(bound?.path).not.toBe(socket);
    expect(dirname(dirname(bound?.path ?? ''))).toBe(dataDir);
    expect(bound?.dir).toBe(0o700);
    expect(records.filter(otherMayConnect)).toEqual([]);
    // Every time the socket showed up at its final path, it was 0660 already.
    expect(seen.length).toBeGreaterThan(0);
    expect(seen.filter((mode) => mode !== 0o660)).toEqual([]);
    await expect(lstat(socket)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('refuses a socket directory too long for the private bind, and leaves nothing behind', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'secsock-long-'));
    // Final path 107 bytes (the limit) with a 1-byte name: the private bind path would be 108.
    const deep = join(dir, 'd'.repeat(Math.max(1, 107 - dir.length - 3)));
    await mkdir(deep, { recursive: true });
    const socketPath = join(deep, 's');
    expect(Buffer.byteLength(socketPath)).toBeLessThanOrEqual(107);
    const server = createApiServer(new Hono(), socketPath);
    const err: unknown = await server.start().then(() => undefined, (e: unknown) => e);
    expect(isBackerError(err, 'CONFIG_INVALID')).toBe(true);
    expect((err as Error).message).toMatch(/too long for a unix socket.*choose a shorter path/);
    expect(await readdir(deep)).toEqual([]);
    await server.close();
  });
});
