/**
 * queue.nice where the system refuses to lower a priority, against a running `backer daemon`
 * process: the daemon runs under a seccomp filter that answers setpriority(2) with EPERM (as a
 * sandbox without that syscall does; test/helpers/deny-setpriority.py). Backups succeed, the work
 * runs at the daemon's own priority, and the log says so once per program and reason: zstd,
 * ccrypt and the checksum thread. A second backup adds no warning; the daemon keeps answering.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { callApi } from '../src/cli/client.js';
import type { Job } from '../src/queue/types.js';
import { backupThroughApi, spawnDaemon, waitForHealth, type DaemonProcess } from './helpers/daemon-proc.js';
import { createTestEnv, filesMandateYaml, type TestEnv } from './helpers/env.js';

const DENY = fileURLToPath(new URL('./helpers/deny-setpriority.py', import.meta.url));
const M = `nicedeny-${randomBytes(3).toString('hex')}`;
let env: TestEnv;
let files: string;
let socket: string;
let daemon: DaemonProcess;

beforeAll(async () => {
  const extra = `  - { name: packed, type: zstd, threads: 1 }\nmandates:\n${filesMandateYaml(M, 'DENY_DIR', { target: 'local', middleware: 'packed,encryption' })}`;
  env = await createTestEnv('nicedeny', extra, '', { docker: false });
  files = join(env.dir, 'files');
  await mkdir(files, { recursive: true });
  // More than one hash batch (1 MiB) per step, so every step starts the checksum thread.
  await writeFile(join(files, 'random.bin'), randomBytes(4 * 1024 * 1024));
  socket = join(env.dir, 'data', 'backer.sock');
  daemon = spawnDaemon(env.configPath, { env: { DENY_DIR: files }, wrapper: ['python3', DENY] });
  await waitForHealth(daemon, socket);
}, 60_000);

afterAll(async () => {
  expect(await daemon.stop()).toBe(0);
  await rm(env.dir, { recursive: true, force: true });
});

const backup = (): Promise<Job> => backupThroughApi(socket, M);

/** The daemon's warnings about priorities, as logged (JSON lines). */
function priorityWarnings(): { level: number; component?: string; msg: string }[] {
  return daemon
    .output()
    .split('\n')
    .filter((line) => line.includes('queue.nice'))
    .map((line) => JSON.parse(line) as { level: number; component?: string; msg: string });
}

it('the sandbox refuses setpriority, as the test means it to', () => {
  // Our own probe: the daemon's process runs under the filter (the wrapper exec'd node).
  const status = readFileSync(`/proc/${daemon.child.pid ?? 0}/status`, 'utf8');
  expect(status).toMatch(/^Seccomp:\s+2$/m);
});

it('backs up at the daemon priority, and warns once per program and reason; the daemon goes on', async () => {
  const first = await backup();
  expect(first.state, JSON.stringify(first)).toBe('succeeded');
  const warnings = priorityWarnings();
  const what = warnings.map((w) => /could not lower the priority of (.+), it runs at Backer's: (.+)$/.exec(w.msg)?.slice(1, 3));
  expect(what.map((w) => w?.[0]).sort()).toEqual(['ccrypt', 'the checksum thread', 'zstd']);
  for (const w of what) expect(w?.[1]).toMatch(/EPERM|not permitted/i);
  for (const w of warnings) expect(w).toMatchObject({ level: 40, component: 'queue' });

  const second = await backup();
  expect(second.state, JSON.stringify(second)).toBe('succeeded');
  expect(priorityWarnings()).toHaveLength(warnings.length);
  expect(await callApi<{ status: string }>(socket, 'GET', '/v1/health')).toMatchObject({ status: 'ok' });
  expect(daemon.output()).not.toMatch(/unexpected error|unhandled/i);
}, 120_000);
