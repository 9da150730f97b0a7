import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { callApi } from '../src/cli/client.js';
import type { AnyJob } from '../src/queue/types.js';
import { currentOwner, ownerLabels, type ProcessOwner } from '../src/state/owner.js';
import { recordStopped, type StoppedRecord } from '../src/state/stopped-containers.js';
import { cli, spawnCli } from './helpers/cli.js';
import { createTestEnv, type TestEnv } from './helpers/env.js';
import { buildHostImage, docker, HOST_IMAGE, startDockerd, type DockerService } from './setup/services.js';

// An engine of its own: every daemon's start-up pass removes helpers of dead owners on its engine,
// so daemons of other test files (sharing the run's engine) would race this file's assertions.
let engine: DockerService | undefined;
const host = (): string => {
  if (!engine) throw new Error('the recovery engine is not started');
  return engine.host;
};
const suffix = randomBytes(3).toString('hex');
const APP = `recovery-app-${suffix}`;
const ONCE = `recovery-once-${suffix}`;
const LIVE = `recovery-live-${suffix}`;
const DEAD = `recovery-dead-${suffix}`;
const UP = `recovery-up-${suffix}`;
const SHARED = `recovery-shared-${suffix}`;
const HELPER_LIVE = `recovery-helper-live-${suffix}`;
const HELPER_DEAD = `recovery-helper-dead-${suffix}`;
const HELPER_OLD = `recovery-helper-old-${suffix}`;
// Helpers of daemons in containers (host name = the container's short id), and of another host.
const HELPER_IN_RUNNING = `recovery-helper-in-running-${suffix}`;
const HELPER_IN_STOPPED = `recovery-helper-in-stopped-${suffix}`;
const HELPER_FOREIGN = `recovery-helper-foreign-${suffix}`;
const CONTAINERS = [APP, ONCE, LIVE, DEAD, UP, SHARED, HELPER_LIVE, HELPER_DEAD, HELPER_OLD, HELPER_IN_RUNNING, HELPER_IN_STOPPED, HELPER_FOREIGN];
const VOLUMES = [`${APP}-data`, `${ONCE}-data`];
const IDLE = 'trap "exit 0" TERM; while :; do sleep 1 & wait $!; done';

let env: TestEnv;
let records: string;
let socket: string;
const children: ChildProcess[] = [];

async function dockerOut(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('docker', args, { env: { ...process.env, DOCKER_HOST: host() } }, (err, stdout) => {
      if (err) reject(new Error(`docker ${args.join(' ')}: ${err.message}`));
      else resolve(stdout.trim());
    });
  });
}

const running = async (name: string): Promise<boolean> => (await dockerOut(['inspect', '-f', '{{.State.Running}}', name])) === 'true';
const exists = async (name: string): Promise<boolean> => (await dockerOut(['ps', '-aq', '--filter', `name=^${name}$`])) !== '';
const helpers = (container: string): Promise<string> => dockerOut(['ps', '-aq', '--filter', 'label=backer.helper=true', '--filter', `label=backer.helper.container=${container}`]);
const recordFiles = async (): Promise<string[]> => (await readdir(records).catch(() => [])).filter((f) => f.endsWith('.json'));
/** The local target's files of a mandate (none before its first backup). */
const backupFiles = (mandate: string): Promise<string[]> =>
  readdir(join(env.dir, 'backups', mandate)).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return [];
    throw err;
  });
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function recordsOf(container: string): Promise<StoppedRecord[]> {
  const out: StoppedRecord[] = [];
  // The garbage file of the last test is no record.
  for (const f of (await recordFiles()).filter((name) => !name.startsWith('garbage-'))) {
    const r = JSON.parse(await readFile(join(records, f), 'utf8')) as StoppedRecord;
    if (r.container === container) out.push(r);
  }
  return out;
}

async function waitFor(check: () => Promise<boolean> | boolean, what: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await sleep(50);
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** True once the local target's temp file of the mandate holds bytes: the copy is streaming. */
async function copying(mandate: string): Promise<boolean> {
  const dir = join(env.dir, 'backups', mandate);
  return (await readdir(dir).catch(() => [])).some((name) => name.includes('.partial-'));
}

/** A `backer daemon` process; resolves once its start-up (recovery included) is done. */
async function startDaemon(): Promise<{ child: ChildProcess; output: () => string }> {
  const d = spawnCli(['daemon', '--config', env.configPath]);
  children.push(d.child);
  await waitFor(() => d.output().includes('backer daemon started') || d.child.exitCode !== null, 'the daemon to start');
  expect(d.child.exitCode, d.output()).toBeNull();
  return d;
}

async function stopDaemon(d: { child: ChildProcess }): Promise<number | null> {
  const closed = new Promise<number | null>((resolve) => d.child.once('close', resolve));
  d.child.kill('SIGTERM');
  return closed;
}

async function health(): Promise<string> {
  return (await callApi<{ status: string }>(socket, 'GET', '/v1/health')).status;
}

/** A pid that no process has (any more). */
async function deadOwner(): Promise<ProcessOwner> {
  const child = spawn('true');
  await new Promise((r) => child.once('close', r));
  return { pid: child.pid ?? 999_999, start: 'gone:1', host: hostname() };
}

async function writeRecord(record: StoppedRecord): Promise<void> {
  await writeFile(join(records, `${record.container_id}-${record.owner.pid}-test${randomBytes(2).toString('hex')}.json`), JSON.stringify(record));
}

async function containerId(name: string): Promise<string> {
  return dockerOut(['inspect', '-f', '{{.Id}}', name]);
}

async function startApp(name: string, volume: string | null): Promise<void> {
  const labels = { 'backer.enabled': 'true', 'backer.type': 'volume', 'backer.volume.stop': 'true', 'backer.target': 'local', 'backer.middleware': 'compression', 'backer.interval': '0 0 29 2 *' };
  const args = ['run', '-d', '--name', name, '--network', 'none', '-v', '/usr:/usr:ro', '-v', '/etc:/etc:ro'];
  if (volume !== null) args.push('-v', `${volume}:/data`);
  for (const [k, v] of Object.entries(labels)) args.push('--label', `${k}=${v}`);
  await docker(host(), [...args, HOST_IMAGE, 'bash', '-c', IDLE]);
}

async function createHelper(name: string, labels: Record<string, string>): Promise<void> {
  const args = ['create', '--name', name, '--network', 'none', '-v', '/usr:/usr:ro', '--label', 'backer.helper=true', '--label', `backer.helper.container=${name}`];
  for (const [k, v] of Object.entries(labels)) args.push('--label', `${k}=${v}`);
  await docker(host(), [...args, HOST_IMAGE, 'sleep', 'infinity']);
}

beforeAll(async () => {
  engine = await startDockerd();
  await buildHostImage(engine.host);
  env = await createTestEnv('recovery', 'volume:\n  helper_image: hostuser:latest\n  helper_binds: [/usr:/usr:ro]\n');
  const shared = inject('dockerHost').replace(/^unix:\/\//, '');
  const yaml = await readFile(env.configPath, 'utf8');
  if (!yaml.includes(`socket_path: ${shared}`)) throw new Error('the test config no longer names the shared engine');
  await writeFile(env.configPath, yaml.replace(`socket_path: ${shared}`, `socket_path: ${engine.socketPath}`));
  records = join(env.dir, 'data', 'stopped-containers');
  socket = join(env.dir, 'data', 'backer.sock');
  for (const [name, volume] of [[APP, `${APP}-data`], [ONCE, `${ONCE}-data`]] as [string, string][]) {
    await docker(host(), ['volume', 'create', volume]);
    await startApp(name, volume);
    // Random data through gzip: a copy of some seconds, long enough to kill the daemon in it.
    await docker(host(), ['exec', name, 'bash', '-c', 'head -c 96M /dev/urandom > /data/big.bin']);
  }
});

afterAll(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  for (const name of CONTAINERS) await docker(host(), ['rm', '-f', name]).catch(() => undefined);
  await docker(host(), ['volume', 'rm', '-f', ...VOLUMES]).catch(() => undefined);
  if (env) await rm(env.dir, { recursive: true, force: true });
  await engine?.stop();
});

describe('containers stopped for a copy after a crash', () => {
  it('a daemon killed mid-copy leaves the container stopped; the next start restarts it and removes the helper', async () => {
    const first = await startDaemon();
    expect(await health()).toBe('ok');
    const trigger = await cli(['backup', APP, '--config', env.configPath]);
    expect(trigger.code, trigger.stderr).toBe(0);
    await waitFor(async () => !(await running(APP)) && (await helpers(APP)) !== '' && (await copying(APP)), 'the copy to stream with the container stopped');
    // Recorded before the stop, by the daemon process.
    const [record] = await recordsOf(APP);
    expect(record).toMatchObject({ container: APP, mandate: APP, container_id: await containerId(APP), owner: { pid: first.child.pid, host: hostname() } });
    const killed = new Promise((r) => first.child.once('close', r));
    first.child.kill('SIGKILL');
    await killed;

    await sleep(1000);
    expect(await running(APP)).toBe(false);
    expect(await helpers(APP)).not.toBe('');
    expect(await recordsOf(APP)).toHaveLength(1);

    const second = await startDaemon();
    expect(second.output()).toMatch(new RegExp(`"container":"${APP}".*"msg":"container restarted after an interrupted backup"`));
    expect(second.output()).toMatch(new RegExp(`"container":"${APP}".*"msg":"removed a helper container left by an interrupted backup"`));
    // The interrupted backup runs again (attempt 2) and succeeds; then nothing is left stopped.
    const { jobs } = await callApi<{ jobs: AnyJob[] }>(socket, 'GET', `/v1/jobs?mandate=${APP}&limit=1`);
    const rerun = await callApi<{ job: AnyJob }>(socket, 'GET', `/v1/jobs/${jobs[0]?.id ?? ''}?wait=120`);
    expect(rerun.job).toMatchObject({ state: 'succeeded', attempts: 2 });
    expect(await running(APP)).toBe(true);
    expect(await recordsOf(APP)).toEqual([]);
    expect(await helpers(APP)).toBe('');
    expect(await health()).toBe('ok');

    // The normal path: recorded while stopped, record gone once it runs again.
    const done = cli(['backup', APP, '--wait', '--config', env.configPath]);
    await waitFor(async () => !(await running(APP)) && (await recordsOf(APP)).length === 1, 'the container to be stopped and recorded');
    const backup = await done;
    expect(backup.code, backup.stdout + backup.stderr).toBe(0);
    expect(backup.stdout).toMatch(/succeeded/);
    expect(await running(APP)).toBe(true);
    expect(await recordFiles()).toEqual([]);
    expect(await helpers(APP)).toBe('');
    expect(await health()).toBe('ok');
    expect(await stopDaemon(second)).toBe(0);
  });

  it('a daemon starting beside a running backup --once leaves its container and helper alone; after the --once is killed it restarts the container', async () => {
    const once = spawnCli(['backup', ONCE, '--once', '--config', env.configPath]);
    children.push(once.child);
    await waitFor(async () => !(await running(ONCE)) && (await helpers(ONCE)) !== '' && (await copying(ONCE)), 'the --once copy to stream');
    expect(await recordsOf(ONCE)).toMatchObject([{ container: ONCE, owner: { pid: once.child.pid } }]);
    // Frozen mid-copy: alive, so its record and helper must survive the daemon's start-up pass.
    once.child.kill('SIGSTOP');
    const daemon = await startDaemon();
    expect(await running(ONCE)).toBe(false);
    expect(await helpers(ONCE)).not.toBe('');
    expect(await recordsOf(ONCE)).toHaveLength(1);
    expect(daemon.output()).not.toContain('container restarted after an interrupted backup');

    const killed = new Promise((r) => once.child.once('close', r));
    once.child.kill('SIGKILL');
    await killed;
    // The daemon checks again while a live process's record exists (first retry after 5 s).
    await waitFor(() => running(ONCE), 'the daemon to start the container of the killed --once', 30_000);
    await waitFor(async () => (await helpers(ONCE)) === '' && (await recordsOf(ONCE)).length === 0, 'the helper and record to go');
    expect(daemon.output()).toMatch(new RegExp(`"container":"${ONCE}".*"msg":"container restarted after an interrupted backup"`));
    expect(await health()).toBe('ok');
    expect(await stopDaemon(daemon)).toBe(0);
  });
});

describe('the start-up pass', () => {
  async function plain(name: string, stopped: boolean): Promise<string> {
    await docker(host(), ['run', '-d', '--name', name, '--network', 'none', '-v', '/usr:/usr:ro', '-v', '/etc:/etc:ro', HOST_IMAGE, 'bash', '-c', IDLE]);
    if (stopped) await docker(host(), ['stop', name]);
    return containerId(name);
  }
  const record = (id: string, container: string, owner: ProcessOwner): StoppedRecord => ({ container_id: id, container, mandate: container, stopped_at: new Date().toISOString(), owner });

  it('starts only containers of dead writers that are still stopped, clears the rest, removes only orphaned helpers', async () => {
    const dead = await deadOwner();
    // This test process is a live writer, like a `backup --once` running beside the daemon.
    await recordStopped(records, { container_id: await plain(LIVE, true), container: LIVE, mandate: LIVE });
    await writeRecord(record(await plain(DEAD, true), DEAD, dead));
    await writeRecord(record(await plain(UP, false), UP, dead));
    await writeRecord(record('f'.repeat(64), `recovery-gone-${suffix}`, dead));
    const shared = await plain(SHARED, true);
    await writeRecord(record(shared, SHARED, dead));
    await recordStopped(records, { container_id: shared, container: SHARED, mandate: SHARED });
    const garbage = join(records, `garbage-${suffix}.json`);
    await writeFile(garbage, '{"half":');
    await createHelper(HELPER_LIVE, ownerLabels(currentOwner()));
    await createHelper(HELPER_DEAD, ownerLabels(dead));
    await createHelper(HELPER_OLD, {});
    const inContainer = async (container: string): Promise<Record<string, string>> =>
      ownerLabels({ pid: 1, start: 'boot:1', host: (await containerId(container)).slice(0, 12) });
    await createHelper(HELPER_IN_RUNNING, await inContainer(UP));
    await createHelper(HELPER_IN_STOPPED, await inContainer(LIVE));
    await createHelper(HELPER_FOREIGN, ownerLabels({ pid: 1, start: 'boot:1', host: `elsewhere-${suffix}` }));

    const daemon = await startDaemon();
    const logs = daemon.output();
    expect(await running(DEAD)).toBe(true);
    expect(logs).toMatch(new RegExp(`"container":"${DEAD}".*"msg":"container restarted after an interrupted backup"`));
    expect(await recordsOf(DEAD)).toEqual([]);
    expect(await running(UP)).toBe(true);
    expect(await recordsOf(UP)).toEqual([]);
    expect(logs).toMatch(new RegExp(`"container":"${UP}".*"msg":"container stopped by an interrupted backup runs again; record cleared"`));
    expect(await recordsOf(`recovery-gone-${suffix}`)).toEqual([]);
    expect(logs).toMatch(new RegExp(`"level":40.*"container":"recovery-gone-${suffix}".*"msg":"container stopped by an interrupted backup no longer exists; record cleared"`));
    // Live writers: untouched.
    expect(await running(LIVE)).toBe(false);
    expect(await recordsOf(LIVE)).toMatchObject([{ owner: { pid: process.pid } }]);
    expect(await running(SHARED)).toBe(false);
    expect(await recordsOf(SHARED)).toMatchObject([{ owner: { pid: process.pid } }]);
    // An unreadable record is reported and kept, never dropped silently.
    expect(logs).toMatch(/"msg":"unreadable stopped-container record left in place/);
    expect(await readFile(garbage, 'utf8')).toBe('{"half":');
    expect(await exists(HELPER_LIVE)).toBe(true);
    expect(await exists(HELPER_DEAD)).toBe(false);
    expect(await exists(HELPER_OLD)).toBe(false);
    // A daemon in a running container may still use its helper; one in a stopped container cannot.
    expect(await exists(HELPER_IN_RUNNING)).toBe(true);
    expect(await exists(HELPER_IN_STOPPED)).toBe(false);
    // A process on another host cannot be asked: its helper is left alone (for a day).
    expect(await exists(HELPER_FOREIGN)).toBe(true);
    for (const helper of [HELPER_DEAD, HELPER_OLD, HELPER_IN_STOPPED]) expect(logs).toMatch(new RegExp(`"helper":"${helper}".*"msg":"removed a helper container left by an interrupted backup"`));
    expect(logs).not.toContain(`"helper":"${HELPER_LIVE}"`);
    expect(await health()).toBe('ok');
    expect(await stopDaemon(daemon)).toBe(0);
    await rm(garbage);
    for (const f of await recordFiles()) await rm(join(records, f));
  });
});

describe('when the stop cannot be recorded', () => {
  it('fails the job with the reason, never stops the container, and the daemon still answers', async () => {
    const daemon = await startDaemon();
    const startedAt = await dockerOut(['inspect', '-f', '{{.State.StartedAt}}', APP]);
    const filesBefore = await backupFiles(APP);
    await rm(records, { recursive: true, force: true });
    await writeFile(records, 'a file where the records directory should be');
    try {
      const r = await cli(['backup', APP, '--wait', '--config', env.configPath]);
      expect(r.code, r.stdout + r.stderr).toBe(1);
      expect(r.stdout).toMatch(new RegExp(`failed.*cannot record that container ${APP} is stopped for the copy \\(in ${records}\\); it was not stopped: EEXIST`));
      expect(await running(APP)).toBe(true);
      expect(await dockerOut(['inspect', '-f', '{{.State.StartedAt}}', APP])).toBe(startedAt);
      expect(await helpers(APP)).toBe('');
      expect(await backupFiles(APP)).toEqual(filesBefore);
      expect(await health()).toBe('ok');
    } finally {
      await rm(records, { force: true });
    }
    expect(await stopDaemon(daemon)).toBe(0);
  });
});
