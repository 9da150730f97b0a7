/**
 * A `files` backup that fails, against a running `backer daemon` process: a files.path that is a
 * file, and a tar that writes part of an archive and then fails (a fake tar first on the daemon's
 * PATH). Each job fails with the reason, nothing is stored, and the daemon still answers.
 */
import { chmod, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { callApi } from '../src/cli/client.js';
import { TERMINAL_STATES, type AnyJob } from '../src/queue/types.js';
import { spawnDaemon, waitForHealth, type DaemonProcess } from './helpers/daemon-proc.js';
import { createTestEnv, filesMandateYaml, type TestEnv } from './helpers/env.js';

let env: TestEnv;
let daemon: DaemonProcess;
let socket: string;
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bk-files-fail-'));
  await writeFile(join(dir, 'a-file.txt'), 'not a directory\n');
  await writeFile(join(dir, 'tar'), '#!/bin/sh\nprintf partial\necho "tar: disk on fire" >&2\nexit 2\n');
  await chmod(join(dir, 'tar'), 0o755);
  const mandates = [filesMandateYaml('ff-not-dir', 'FF_FILE', { target: 'local' }), filesMandateYaml('ff-tar-fails', 'FF_DIR', { target: 'local', middleware: 'compression' })];
  env = await createTestEnv('files-fail', `mandates:\n${mandates.join('')}`, '', { docker: false });
  socket = join(env.dir, 'data', 'backer.sock');
  daemon = spawnDaemon(env.configPath, { env: { FF_FILE: join(dir, 'a-file.txt'), FF_DIR: dir, PATH: `${dir}:${process.env.PATH ?? ''}` } });
  await waitForHealth(daemon, socket);
});

afterAll(async () => {
  await daemon?.stop();
  await rm(dir, { recursive: true, force: true });
  if (env) await rm(env.dir, { recursive: true, force: true });
});

async function backupEnded(mandate: string): Promise<AnyJob> {
  let { job } = await callApi<{ job: AnyJob }>(socket, 'POST', `/v1/mandates/${mandate}/backups`);
  while (!TERMINAL_STATES.has(job.state)) ({ job } = await callApi<{ job: AnyJob }>(socket, 'GET', `/v1/jobs/${job.id}?wait=30`));
  return job;
}

it('fails a backup whose files.path is a file, and one whose tar fails, with the reason; stores nothing; still answers', async () => {
  const notDir = await backupEnded('ff-not-dir');
  expect(notDir.state).toBe('failed');
  expect(notDir.error).toEqual({ code: 'DUMP_FAILED', message: `${join(dir, 'a-file.txt')} is not a directory` });

  const tarFails = await backupEnded('ff-tar-fails');
  expect(tarFails.state).toBe('failed');
  expect(tarFails.error).toEqual({ code: 'DUMP_FAILED', message: `tar of ${dir} exited with code 2: tar: disk on fire` });

  // No file under the local target (the mandate's directory may be there, empty: its temp file is gone).
  const stored = await readdir(join(env.dir, 'backups'), { recursive: true, withFileTypes: true }).catch(() => []);
  expect(stored.filter((e) => !e.isDirectory()).map((e) => e.name)).toEqual([]);
  expect((await callApi<{ status: string }>(socket, 'GET', '/v1/health')).status).toBe('ok');
  expect(daemon.child.exitCode).toBeNull();
});
