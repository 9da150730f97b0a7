/**
 * The errors a new user hits on the first day (issue 6), each through the real CLI: `config check`,
 * a real `backer daemon` process, `backup --once`, --json errors and bin/backer.js.
 */
import { existsSync } from 'node:fs';
import { cp, mkdir, mkdtemp, readdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { callApi } from '../src/cli/client.js';
import type { ConfigProblem } from '../src/config/problems.js';
import { capture, cli, spawnCli, type CliResult } from './helpers/cli.js';
import { spawnDaemon, waitForHealth } from './helpers/daemon-proc.js';
import { createTestEnv, type TestEnv } from './helpers/env.js';
import { docker, HOST_IMAGE } from './setup/services.js';

const host = (): string => inject('dockerHost');
const NEVER = '0 0 29 2 *';

const LOCAL_TARGET = (dir: string): string => `targets:\n  - name: local\n    type: local\n    path: ${dir}/backups\n`;

/** A config file without Docker in a fresh directory, with a local target there unless `body` has targets. */
async function plainConfig(label: string, body = ''): Promise<{ dir: string; path: string }> {
  const dir = await mkdtemp(join(tmpdir(), `fd-${label}-`));
  const path = join(dir, 'backer.yml');
  const targets = body.includes('targets:') ? '' : LOCAL_TARGET(dir);
  await writeFile(path, `data_dir: ${dir}/data\ndocker:\n  enabled: false\n${targets}${body}`);
  return { dir, path };
}

async function checkJson(configPath: string): Promise<{ code: number; ok: boolean; problems: ConfigProblem[]; mandates: string[] }> {
  const result = await cli(['--json', '--config', configPath, 'config', 'check']);
  const doc = JSON.parse(result.stdout) as { ok: boolean; problems: ConfigProblem[]; mandates: string[] };
  return { code: result.code, ...doc };
}

/** Runs a CLI process that must end by itself within `ms`; fails (and kills it) when it hangs. */
async function mustExit(args: string[], ms: number): Promise<CliResult & { elapsed: number }> {
  const started = Date.now();
  const { child, output } = spawnCli(args);
  const code = await new Promise<number | null>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${args.join(' ')} still running after ${ms} ms:\n${output()}`));
    }, ms);
    child.on('close', (c) => {
      clearTimeout(timer);
      resolve(c);
    });
  });
  return { code: code ?? -1, stdout: output(), stderr: '', elapsed: Date.now() - started };
}

describe('config check', () => {
  it('--demo checks the embedded demo config instead of looking for a file', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'fd-demo-'));
    // No Docker here: label problems of other test files' containers must not count.
    const result = await cli(['--demo', 'config', 'check'], { DOCKER_HOST: `unix://${dir}/no-docker.sock`, BACKER_CONFIG: '' });
    expect(result.stderr).not.toMatch(/no config file/);
    expect(result.stdout).toContain('embedded demo config: OK (1 mandate: demo-files)');
    expect(result.code).toBe(0);
  });

  it('reports a static mandate missing a key at its place in the file', async () => {
    const { path } = await plainConfig('missing', `mandates:\n  nopath:\n    type: files\n    interval: "${NEVER}"\n`);
    const result = await cli(['--config', path, 'config', 'check']);
    expect(result.stdout).toContain(`${path}: mandates.nopath.files.path: expected the directory to back up`);
    expect(result.stdout).not.toMatch(/container +label/);
    expect(result.code).toBe(1);
  });

  it('reports the file and every mandate in one pass, without false "no targets" problems', async () => {
    const { path } = await plainConfig(
      'onepass',
      `targets:
  - name: broken
    type: s3
    bucket: 5
middleware:
  - name: squeeze
    type: gzip
    level: 99
mandates:
  uses-broken:
    type: files
    target: broken
    middleware: squeeze
    interval: "not a cron"
    files:
      path: /srv
  default-target:
    type: files
    interval: "${NEVER}"
    retention: "0"
    files:
      path: /srv
  typo:
    type: files
    target: brokn
    interval: "${NEVER}"
    files:
      path: /srv
`,
    );
    const { code, ok, problems } = await checkJson(path);
    const lines = problems.map((p) => `${p.where}: ${p.message}`);
    expect(lines).toEqual(
      expect.arrayContaining([
        `${path}: targets[0].bucket: expected a string, received 5`,
        expect.stringMatching(new RegExp(`^${path}: middleware\\[0\\]\\.level: `)),
        expect.stringMatching(new RegExp(`^${path}: mandates\\.uses-broken\\.interval: expected a cron expression`)),
        expect.stringMatching(new RegExp(`^${path}: mandates\\.default-target\\.retention: expected a whole number`)),
        `${path}: mandates.typo.target: unknown target "brokn" (did you mean broken?); known targets: broken`,
      ]),
    );
    // The target and middleware have problems of their own: naming them is not a second problem.
    expect(lines.filter((l) => /no targets are configured|unknown target "broken"|unknown middleware/.test(l))).toEqual([]);
    expect(new Set(lines).size).toBe(lines.length);
    expect(lines).toHaveLength(5);
    expect(ok).toBe(false);
    expect(code).toBe(1);
  });

  it('refuses a name_pattern whose names would be longer than 200 bytes', async () => {
    const long = `<DATE>-${'x'.repeat(186)}`; // 20 + 1 + 186 = 207 bytes
    const fits = `<DATE>-${'y'.repeat(173)}`; // 20 + 1 + 173 + "-" + 5 ("files") = 200 bytes
    const { dir, path } = await plainConfig(
      'pattern',
      `mandates:\n  files:\n    type: files\n    interval: "${NEVER}"\n    name_pattern: ${long}\n    files:\n      path: /srv\n`,
    );
    const result = await cli(['--config', path, 'config', 'check']);
    expect(result.stdout).toContain(`${path}: mandates.files.name_pattern: renders names of 207 bytes`);
    expect(result.stdout).toContain('at most 200 bytes');
    expect(result.code).toBe(1);
    const ok = join(dir, 'ok.yml');
    await writeFile(ok, `docker:\n  enabled: false\n${LOCAL_TARGET(dir)}mandates:\n  files:\n    type: files\n    name_pattern: ${fits}-<MANDATE>\n    files:\n      path: /srv\n`);
    expect((await cli(['--config', ok, 'config', 'check'])).code).toBe(0);
  });
});

describe('a static mandate with problems is a config error', () => {
  let path: string;
  let dir: string;
  beforeAll(async () => {
    ({ dir, path } = await plainConfig(
      'refuse',
      `mandates:\n  broken:\n    type: files\n    interval: "every day"\n  fine:\n    type: files\n    interval: "${NEVER}"\n    files:\n      path: /srv\n`,
    ));
  });

  it('backer daemon refuses to start, listing every problem with its path, and leaves no socket', async () => {
    const result = await mustExit(['daemon', '--config', path], 30_000);
    expect(result.stdout).toContain(`${path}: mandates.broken.interval: expected a cron expression`);
    expect(result.stdout).toContain(`${path}: mandates.broken.files.path: expected the directory to back up`);
    expect(result.stdout).toContain('has 2 problems');
    expect(result.code).toBe(2);
    expect(existsSync(join(dir, 'data', 'backer.sock'))).toBe(false);
  });

  it('backup --once refuses too', async () => {
    const result = await mustExit(['backup', 'fine', '--once', '--config', path], 30_000);
    expect(result.stdout).toContain(`${path}: mandates.broken.interval: expected a cron expression`);
    expect(result.code).toBe(2);
  });
});

describe('labels', () => {
  let env: TestEnv;
  const spellings = { 'fd-upper': 'TRUE', 'fd-yes': 'yes', 'fd-one': '1', 'fd-on': 'On', 'fd-off': 'off', 'fd-zero': '0', 'fd-maybe': 'maybe' };

  beforeAll(async () => {
    env = await createTestEnv('fd-labels');
    for (const [name, enabled] of Object.entries(spellings)) {
      await docker(host(), [
        'create', '--name', name, '--network', 'none',
        '--label', `backer.enabled=${enabled}`, '--label', 'backer.type=volume', '--label', `backer.interval=${NEVER}`,
        HOST_IMAGE, 'sleep', 'infinity',
      ]);
    }
    // A labelled container with a bad label: reported and skipped, never fatal.
    await docker(host(), [
      'create', '--name', 'fd-badcron', '--network', 'none',
      '--label', 'backer.enabled=true', '--label', 'backer.type=volume', '--label', 'backer.interval=sometimes',
      HOST_IMAGE, 'sleep', 'infinity',
    ]);
  });

  afterAll(async () => {
    await docker(host(), ['rm', '-f', ...Object.keys(spellings), 'fd-badcron']).catch(() => undefined);
  });

  it('config check accepts every boolean spelling of backer.enabled and reports any other value', async () => {
    const { problems, mandates } = await checkJson(env.configPath);
    expect(mandates).toEqual(expect.arrayContaining(['fd-upper', 'fd-yes', 'fd-one', 'fd-on']));
    expect(mandates).not.toContain('fd-off');
    expect(mandates).not.toContain('fd-zero');
    expect(mandates).not.toContain('fd-maybe');
    const mine = problems.filter((p) => p.where.startsWith('container fd-')).sort((a, b) => a.where.localeCompare(b.where));
    expect(mine).toHaveLength(2);
    expect(mine[0]).toEqual({ where: 'container fd-badcron label backer.interval', message: expect.stringMatching(/^expected a cron expression/) as unknown });
    expect(mine[1]).toEqual({
      where: 'container fd-maybe label backer.enabled',
      message: 'expected true or false (also yes/no, on/off, 1/0), received "maybe"; the container is not backed up',
    });
  });

  it('a real daemon starts with bad labels, runs the others and keeps answering', async () => {
    const daemon = spawnDaemon(env.configPath);
    const socket = join(env.dir, 'data', 'backer.sock');
    try {
      await waitForHealth(daemon, socket);
      const listed = await callApi<{ mandates: { name: string }[]; problems: ConfigProblem[] }>(socket, 'GET', '/v1/mandates');
      expect(listed.mandates.map((m) => m.name)).toEqual(expect.arrayContaining(['fd-upper', 'fd-yes', 'fd-one', 'fd-on']));
      expect(listed.mandates.map((m) => m.name)).not.toContain('fd-maybe');
      expect(listed.problems.map((p) => p.where)).toEqual(expect.arrayContaining(['container fd-maybe label backer.enabled', 'container fd-badcron label backer.interval']));
      expect(daemon.output()).toContain('container fd-maybe label backer.enabled');
      expect((await callApi<{ status: string }>(socket, 'GET', '/v1/health')).status).toBe('ok');
    } finally {
      expect(await daemon.stop()).toBe(0);
    }
  });
});

describe('a static mandate overlaying a container\'s labels', () => {
  const staticMandate = (stop: string): string =>
    `mandates:\n  fd-static:\n    container: fd-static-c\n    type: volume\n    interval: "${NEVER}"\n    volume:\n      stop: "${stop}"\n`;

  beforeAll(async () => {
    // The container's own label is bad: that stays a label problem, named as such.
    await docker(host(), ['create', '--name', 'fd-static-c', '--network', 'none', '--label', 'backer.retention=none', HOST_IMAGE, 'sleep', 'infinity']);
  });

  afterAll(async () => {
    await docker(host(), ['rm', '-f', 'fd-static-c']).catch(() => undefined);
  });

  it('reports each problem where it was written; only the file\'s stop the daemon', async () => {
    const env = await createTestEnv('fd-static', staticMandate('maybe'));
    const { problems } = await checkJson(env.configPath);
    const mine = problems.filter((p) => p.where.includes('fd-static')).map((p) => `${p.where}: ${p.message}`);
    expect(mine.sort()).toEqual([
      `${env.configPath}: mandates.fd-static.volume.stop: expected true or false (also yes/no, on/off, 1/0), received "maybe"`,
      expect.stringMatching(/^container fd-static-c label backer\.retention: expected a whole number/) as unknown as string,
    ]);
    const result = await mustExit(['daemon', '--config', env.configPath], 30_000);
    expect(result.stdout).toContain(`${env.configPath} has 1 problem:\n  ${env.configPath}: mandates.fd-static.volume.stop:`);
    expect(result.stdout).not.toContain('label backer.retention');
    expect(result.code).toBe(2);
  });

  it('with only the label wrong the daemon starts, skips the mandate and says why', async () => {
    const env = await createTestEnv('fd-static-ok', staticMandate('yes'));
    const daemon = spawnDaemon(env.configPath);
    const socket = join(env.dir, 'data', 'backer.sock');
    try {
      await waitForHealth(daemon, socket);
      const listed = await callApi<{ mandates: { name: string }[]; problems: ConfigProblem[] }>(socket, 'GET', '/v1/mandates');
      expect(listed.mandates.map((m) => m.name)).not.toContain('fd-static');
      // stop: "yes" is a boolean like any other: the label is the only problem.
      expect(listed.problems.filter((p) => p.where.includes('fd-static')).map((p) => p.where)).toEqual(['container fd-static-c label backer.retention']);
    } finally {
      expect(await daemon.stop()).toBe(0);
    }
  });
});

describe('api.socket', () => {
  it('a socket path over 107 bytes is a config problem; the daemon exits 2 promptly and leaves no socket', async () => {
    const { dir, path } = await plainConfig('sock');
    const deep = join(dir, 's'.repeat(60), 't'.repeat(60));
    await mkdir(deep, { recursive: true });
    const socket = join(deep, 'backer.sock');
    await writeFile(path, `docker:\n  enabled: false\napi:\n  socket: ${socket}\n${LOCAL_TARGET(dir)}`);
    const check = await cli(['--config', path, 'config', 'check']);
    expect(check.stdout).toContain(`${path}: api.socket: the socket path ${socket} is ${Buffer.byteLength(socket)} bytes long; unix sockets allow at most 107`);
    expect(check.code).toBe(1);

    const result = await mustExit(['daemon', '--config', path], 30_000);
    expect(result.stdout).toContain(`${path}: api.socket: the socket path`);
    expect(result.code).toBe(2);
    // Nothing was bound: neither the socket nor a truncated twin of it, and no data_dir.
    const s = 's'.repeat(60);
    expect((await readdir(dir, { recursive: true })).sort()).toEqual(['backer.yml', s, join(s, 't'.repeat(60))]);
  });

  it('a too long default socket under data_dir is reported too', async () => {
    const { dir } = await plainConfig('dsock');
    const path = join(dir, 'long.yml');
    await writeFile(path, `data_dir: ${join(dir, 'd'.repeat(110))}\ndocker:\n  enabled: false\n${LOCAL_TARGET(dir)}`);
    const check = await cli(['--config', path, 'config', 'check']);
    expect(check.stdout).toMatch(/api\.socket: the socket path \S+backer\.sock \(the default <data_dir>\/backer\.sock\) is \d+ bytes long/);
    expect(check.code).toBe(1);
  });
});

describe('--json errors', () => {
  type ErrorDoc = { error: { code: string; message: string } };

  it('a missing config file', async () => {
    const result = await cli(['--json', '--config', '/nonexistent/fd.yml', 'config', 'check']);
    const doc = JSON.parse(result.stdout) as ErrorDoc;
    expect(doc.error.code).toBe('CONFIG_NOT_FOUND');
    expect(doc.error.message).toMatch(/^no config file: tried \/nonexistent\/fd\.yml/);
    expect(result.stderr).not.toContain('no config file');
    expect(result.code).toBe(2);
    // Without --json the same error stays one line on stderr.
    const plain = await cli(['--config', '/nonexistent/fd.yml', 'config', 'check']);
    expect(plain.stdout).toBe('');
    expect(plain.stderr).toMatch(/^backer: no config file: tried \/nonexistent\/fd\.yml/);
    expect(plain.code).toBe(2);
  });

  it('an unreachable daemon keeps exit code 3', async () => {
    const { path } = await plainConfig('json');
    const result = await cli(['backup', 'anything', '--json', '--config', path]);
    expect((JSON.parse(result.stdout) as ErrorDoc).error.code).toBe('DAEMON_UNREACHABLE');
    expect(result.code).toBe(3);
  });

  it('usage errors from the command line parser', async () => {
    const missing = await cli(['--json', 'backup']);
    expect(JSON.parse(missing.stdout)).toEqual({ error: { code: 'USAGE_INVALID', message: "missing required argument 'mandate'" } });
    expect(missing.stderr).toBe('');
    expect(missing.code).toBe(2);
    const unknown = await cli(['config', 'check', '--bogus', '--json']);
    expect((JSON.parse(unknown.stdout) as ErrorDoc).error).toEqual({ code: 'USAGE_INVALID', message: "unknown option '--bogus'" });
    expect(unknown.code).toBe(2);
    const group = await cli(['--json', 'config']);
    expect(JSON.parse(group.stdout)).toEqual({ error: { code: 'USAGE_INVALID', message: 'missing command; see --help' } });
    expect(group.code).toBe(2);
  });
});

describe('bin/backer.js', () => {
  const bin = fileURLToPath(new URL('../bin', import.meta.url));

  function runBin(script: string, args: string[]): Promise<CliResult> {
    return capture(process.execPath, [script, ...args]);
  }


  it('in a checkout without dist/ says how to build, exit 2', async () => {
    const checkout = await mkdtemp(join(tmpdir(), 'fd-unbuilt-'));
    await cp(bin, join(checkout, 'bin'), { recursive: true });
    await cp(fileURLToPath(new URL('../package.json', import.meta.url)), join(checkout, 'package.json'));
    const result = await runBin(join(checkout, 'bin', 'backer.js'), ['--version']);
    expect(result.stderr).toBe('backer: not built yet: run npm run build (or ./scripts/install-deps)\n');
    expect(result.stderr).not.toContain('ERR_MODULE_NOT_FOUND');
    expect(result.code).toBe(2);
  });
});
