import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rename, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { callApi } from '../src/cli/client.js';
import type { Job } from '../src/queue/types.js';
import { spawnDaemon, waitForHealth, type DaemonProcess } from './helpers/daemon-proc.js';
import { CCRYPT_KEY, createTestEnv, filesMandateYaml, localFiles, type TestEnv } from './helpers/env.js';
import { docker, HOST_IMAGE } from './setup/services.js';

// The systemd unit is checked by systemd's own tools (no systemd runs as PID 1 here), and the
// SIGHUP its ExecReload sends is tested against real daemon processes.

const UNIT = fileURLToPath(new URL('../packaging/backer.service', import.meta.url));
const BIN = fileURLToPath(new URL('../bin/backer.js', import.meta.url));
const host = (): string => inject('dockerHost');
const EARLY = 'pksvc-early';
const LATE = 'pksvc-late';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function run(cmd: string, args: string[]): Promise<Run> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { encoding: 'utf8' }, (err, stdout, stderr) => {
      // A string code (ENOENT) is a program that could not start, not an exit code.
      if (typeof err?.code === 'string') reject(new Error(`${cmd} could not run (./scripts/install-deps installs it): ${err.message}`));
      else resolve({ code: err === null ? 0 : (err.code ?? -1), stdout, stderr });
    });
  });
}

/** The unit's settings as `Section.Key` → values (a key may repeat). */
function parseUnit(text: string): Map<string, string[]> {
  const settings = new Map<string, string[]>();
  let section = '';
  for (const line of text.split('\n')) {
    const header = /^\[(\w+)\]$/.exec(line);
    if (header) section = header[1] ?? '';
    const kv = /^(\w+)=(.*)$/.exec(line);
    if (kv) settings.set(`${section}.${kv[1] ?? ''}`, [...(settings.get(`${section}.${kv[1] ?? ''}`) ?? []), kv[2] ?? '']);
  }
  return settings;
}

/** A copy of the unit (named backer.service) whose ExecStart runs this checkout's bin/backer.js. */
async function unitCopy(edit: (text: string) => string = (t) => t): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'pksvc-unit-'));
  const text = (await readFile(UNIT, 'utf8')).replace(/^ExecStart=\S+/m, `ExecStart=${process.execPath} ${BIN}`);
  await writeFile(join(dir, 'backer.service'), edit(text));
  return join(dir, 'backer.service');
}

describe('packaging/backer.service', () => {
  it('runs backer daemon as the user backer with the Docker group, restarts on failure, reloads with SIGHUP, and is hardened', async () => {
    const unit = parseUnit(await readFile(UNIT, 'utf8'));
    expect(unit.get('Service.Type')).toEqual(['simple']);
    expect(unit.get('Service.ExecStart')).toEqual(['/usr/local/bin/backer daemon --config /etc/backer/backer.yml']);
    expect(unit.get('Service.ExecReload')).toEqual(['/bin/kill -HUP $MAINPID']);
    expect(unit.get('Service.Restart')).toEqual(['on-failure']);
    expect(unit.get('Service.User')).toEqual(['backer']);
    expect(unit.get('Service.SupplementaryGroups')).toEqual(['docker']);
    expect(unit.get('Service.StateDirectory')).toEqual(['backer']);
    expect(unit.get('Service.ProtectSystem')).toEqual(['strict']);
    expect(unit.get('Service.ReadWritePaths')).toEqual(['-/srv/backups']);
    expect(unit.get('Service.NoNewPrivileges')).toEqual(['true']);
    expect(unit.get('Install.WantedBy')).toEqual(['multi-user.target']);
  });

  it('passes systemd-analyze verify without a warning, and the check catches a typo', async () => {
    const good = await run('systemd-analyze', ['verify', await unitCopy()]);
    expect(good.stderr).toBe('');
    expect(good.code).toBe(0);
    // verify exits 0 on unknown keys and bad values: the empty stderr above is the real check.
    const bad = await run('systemd-analyze', ['verify', await unitCopy((t) => t.replace('ProtectSystem=strict', 'ProtectSystem=strictt'))]);
    expect(bad.stderr).toMatch(/Failed to parse protect system value/);
    // The shipped unit names /usr/local/bin/backer, which the install puts there (not on this machine).
    const shipped = await run('systemd-analyze', ['verify', UNIT]);
    expect(shipped.stderr).toMatch(/\/usr\/local\/bin\/backer is not executable|Command \/usr\/local\/bin\/backer/);
  });

  it('has a low exposure level in systemd-analyze security', async () => {
    const r = await run('systemd-analyze', ['security', '--offline=true', '--no-pager', '--threshold=20', await unitCopy()]);
    const level = /Overall exposure level for backer\.service: ([\d.]+)/.exec(r.stdout)?.[1];
    expect(Number(level)).toBeLessThanOrEqual(2);
    expect(r.code).toBe(0);
  });
});

/** Log lines (JSON) of the daemon from `from` on. */
function logLines(daemon: DaemonProcess, from: number): Record<string, unknown>[] {
  return daemon
    .output()
    .slice(from)
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

async function waitForLog(daemon: DaemonProcess, from: number, msg: RegExp, timeoutMs = 20_000): Promise<Record<string, unknown>> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const found = logLines(daemon, from).find((l) => typeof l.msg === 'string' && msg.test(l.msg));
    if (found) return found;
    if (daemon.child.exitCode !== null || daemon.child.signalCode !== null) throw new Error(`daemon ended:\n${daemon.output()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`no log line ${String(msg)}:\n${daemon.output().slice(from)}`);
}

/** Sends SIGHUP and returns the 'reload done' line and the output offset before the signal. */
async function reload(daemon: DaemonProcess): Promise<{ done: Record<string, unknown>; from: number }> {
  const from = daemon.output().length;
  daemon.child.kill('SIGHUP');
  return { done: await waitForLog(daemon, from, /^reload done$/), from };
}

async function backupThroughApi(socket: string, mandate: string): Promise<Job> {
  const { job } = await callApi<{ job: Job }>(socket, 'POST', `/v1/mandates/${mandate}/backups`);
  return (await callApi<{ job: Job }>(socket, 'GET', `/v1/jobs/${job.id}?wait=60`)).job;
}

async function startIdle(name: string): Promise<void> {
  const labels = ['--label', 'backer.enabled=true', '--label', 'backer.type=sqlite', '--label', 'backer.sqlite.path=/data/app.db', '--label', 'backer.target=local'];
  await docker(host(), ['run', '-d', '--name', name, '--network', 'none', '-v', '/usr:/usr:ro', '-v', '/etc:/etc:ro', ...labels, HOST_IMAGE, 'sleep', '600']);
}

describe('SIGHUP (systemctl reload backer)', () => {
  let env: TestEnv;
  let daemon: DaemonProcess;
  let socket: string;

  beforeAll(async () => {
    env = await createTestEnv(
      'pksvc',
      `mandates:\n${filesMandateYaml('pksvc-files', 'PKSVC_DIR', { target: 'local', middleware: 'compression' })}`,
    );
    await mkdir(join(env.dir, 'files'));
    await writeFile(join(env.dir, 'files', 'a.txt'), 'reload me\n');
    await startIdle(EARLY);
    daemon = spawnDaemon(env.configPath, { env: { PKSVC_DIR: join(env.dir, 'files') } });
    socket = join(env.dir, 'data', 'backer.sock');
    await waitForHealth(daemon, socket);
    await waitForLog(daemon, 0, /^backer daemon started$/);
  });

  afterAll(async () => {
    await docker(host(), ['rm', '-f', EARLY, LATE]).catch(() => undefined);
    expect(await daemon.stop()).toBe(0);
  });

  it('lists the containers again, and the daemon keeps running and backing up', async () => {
    await startIdle(LATE);
    const { done } = await reload(daemon);
    expect(done.mandates).toEqual(expect.arrayContaining(['pksvc-files', EARLY, LATE]));
    expect(daemon.child.exitCode).toBeNull();
    expect((await callApi<{ status: string }>(socket, 'GET', '/v1/health')).status).toBe('ok');
    const listing = await callApi<{ mandates: { name: string }[] }>(socket, 'GET', '/v1/mandates');
    expect(listing.mandates.map((m) => m.name)).toEqual(expect.arrayContaining([EARLY, LATE]));
    const job = await backupThroughApi(socket, 'pksvc-files');
    expect(job.state).toBe('succeeded');
  });

  it('reports a changed, an invalid and a missing config file, keeps the config it started with, and stays up', async () => {
    const original = await readFile(env.configPath, 'utf8');
    // A valid change: reported, not applied.
    await writeFile(env.configPath, `${original}  pksvc-added:\n    type: files\n    target: local\n    files:\n      path: /tmp\n`);
    let step = await reload(daemon);
    expect(logLines(daemon, step.from).map((l) => l.msg)).toContain('config file changed since start; restart backer to apply it (the daemon keeps the config it started with)');
    expect(step.done.mandates).not.toContain('pksvc-added');

    // An invalid change: the problem with its path, so the admin knows a restart would fail.
    await writeFile(env.configPath, original.replace('level: 6', 'level: 99'));
    step = await reload(daemon);
    const invalid = await waitForLog(daemon, step.from, /a restart would fail/);
    expect(invalid.msg).toMatch(/middleware\[0\]\.level/);
    expect(invalid.level).toBe(50);

    // An unreadable (removed) file.
    await rename(env.configPath, `${env.configPath}.away`);
    step = await reload(daemon);
    expect(logLines(daemon, step.from).map((l) => l.msg)).toContain('config file cannot be read; the daemon keeps the config it started with');

    // Back to the original: no change reported.
    await writeFile(env.configPath, original);
    step = await reload(daemon);
    expect(logLines(daemon, step.from).map((l) => l.msg)).not.toContain('config file changed since start; restart backer to apply it (the daemon keeps the config it started with)');

    // Through all of it the daemon answered and backs up with the config it started with.
    expect((await callApi<{ status: string }>(socket, 'GET', '/v1/health')).status).toBe('ok');
    const job = await backupThroughApi(socket, 'pksvc-files');
    expect(job.state).toBe('succeeded');
    expect((await localFiles(env, 'pksvc-files')).filter((f) => f.endsWith('.tar.gz'))).toHaveLength(2);
    expect(daemon.output()).not.toContain(CCRYPT_KEY);
  });
});
