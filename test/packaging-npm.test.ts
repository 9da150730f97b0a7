import { execFile, spawn } from 'node:child_process';
import { cp, mkdir, mkdtemp, readFile, readdir, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { callApi } from '../src/cli/client.js';

// `npm pack` of a clean checkout, installed with `npm install -g` into an empty prefix, is the
// package a user installs: its `backer` must work without the repository around it.

const REPO = fileURLToPath(new URL('..', import.meta.url));
// What a checkout holds that matters for packing (test/ too: the tarball must leave it out).
const CHECKOUT = ['package.json', 'package-lock.json', 'tsconfig.json', 'tsconfig.build.json', 'README.md', 'LICENSE', 'bin', 'src', 'web', 'test', 'demo', 'packaging'];
const VERSION = (JSON.parse(await readFile(join(REPO, 'package.json'), 'utf8')) as { version: string }).version;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** The test's environment without npm's own variables (npx sets some), and this Node first on PATH. */
function cleanEnv(extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !/^npm_/i.test(k)) env[k] = v;
  env.PATH = `${dirname(process.execPath)}:${env.PATH ?? ''}`;
  return { ...env, ...extra };
}

function run(cmd: string, args: string[], options: { cwd?: string; env?: Record<string, string> } = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { encoding: 'utf8', cwd: options.cwd, env: cleanEnv(options.env), maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      // A string code (ENOENT) is a program that could not start, not an exit code.
      if (typeof err?.code === 'string') reject(new Error(`${cmd} could not run (./scripts/install-deps installs it): ${err.message}`));
      else resolve({ code: err === null ? 0 : (err.code ?? -1), stdout, stderr });
    });
  });
}

let work: string;
let tarball: string;
let prefix: string;
let backer: string;
const timings: Record<string, number> = {};

async function timed<T>(name: string, f: () => Promise<T>): Promise<T> {
  const start = Date.now();
  try {
    return await f();
  } finally {
    timings[name] = Date.now() - start;
  }
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'pknpm-'));
  const checkout = join(work, 'checkout');
  await mkdir(checkout);
  for (const entry of CHECKOUT) await cp(join(REPO, entry), join(checkout, entry), { recursive: true });
  // The build (prepack) needs the dev dependencies: the repository's, not a second install.
  await symlink(join(REPO, 'node_modules'), join(checkout, 'node_modules'));
  const pack = await timed('npm pack', () => run('npm', ['pack', '--pack-destination', work], { cwd: checkout }));
  expect(pack.code, pack.stderr).toBe(0);
  tarball = join(work, `backer-${VERSION}.tgz`);
  prefix = join(work, 'prefix');
  const install = await timed('npm install -g', () =>
    // better-sqlite3 builds from source here (no prebuilt binary download): against this Node's headers.
    run('npm', ['install', '-g', '--prefix', prefix, '--prefer-offline', '--no-audit', '--no-fund', tarball], { cwd: work, env: { npm_config_nodedir: dirname(dirname(process.execPath)) } }),
  );
  expect(install.code, install.stderr).toBe(0);
  backer = join(prefix, 'bin', 'backer');
}, 600_000);

describe('npm pack', () => {
  it('holds the compiled CLI, bin, demo files, the unit, README and LICENSE; no sources, tests or source maps', async () => {
    const list = await run('tar', ['-tzf', tarball]);
    const files = list.stdout.split('\n').filter((f) => f !== '');
    expect(files.every((f) => f.startsWith('package/'))).toBe(true);
    for (const f of ['bin/backer.js', 'dist/cli/main.js', 'dist/web/index.html', 'package.json', 'README.md', 'LICENSE', 'packaging/backer.service', 'demo/files/README.txt']) {
      expect(files).toContain(`package/${f}`);
    }
    const unwanted = files.filter((f) => /^package\/(src|web|test|node_modules|bench|scripts|\.ci|\.tools)\//.test(f) || /\.(ts|map)$/.test(f) || f.includes('tsconfig'));
    expect(unwanted).toEqual([]);
    console.log(`npm pack ${timings['npm pack'] ?? 0} ms, npm install -g ${timings['npm install -g'] ?? 0} ms, ${files.length} files`);
  });
});

describe('backer installed with npm install -g into an empty prefix', () => {
  it('prints its version and checks the demo config', async () => {
    const version = await run(backer, ['--version'], { cwd: work });
    expect(version.stdout.trim()).toBe(VERSION);
    // No Docker engine for this check: the demo's files mandate alone (shipped in the package) is judged.
    const check = await run(backer, ['config', 'check', '--demo'], { cwd: work, env: { DOCKER_HOST: `unix://${work}/no-docker.sock` } });
    expect(check.stdout).toContain('embedded demo config: OK (1 mandate: demo-files)');
    expect(check.code).toBe(0);
  });

  it('backs a host directory up with backup --once, and refuses a broken config with exit 2', async () => {
    const cfg = await filesConfig('once');
    const r = await run(backer, ['backup', '--once', 'pknpm-files', '--config', cfg.path], { cwd: work });
    expect(r.code, r.stderr).toBe(0);
    const [artifact, ...rest] = (await readdir(join(cfg.dir, 'backups', 'pknpm-files'))).filter((f) => f.endsWith('.tar.gz'));
    expect(rest).toEqual([]);
    const content = await run('tar', ['-xzOf', join(cfg.dir, 'backups', 'pknpm-files', artifact ?? ''), './hello.txt']);
    expect(content.stdout).toBe('hello from the installed package\n');

    await writeFile(cfg.path, (await readFile(cfg.path, 'utf8')).replace('level: 6', 'level: 99'));
    const broken = await run(backer, ['backup', '--once', 'pknpm-files', '--config', cfg.path], { cwd: work });
    expect(broken.code).toBe(2);
    expect(broken.stderr).toMatch(/middleware\[0\]\.level/);
  });

  it('runs as a daemon as the unit starts it: answers on its socket, reloads on SIGHUP, stops on SIGTERM', async () => {
    const cfg = await filesConfig('daemon');
    const child = spawn(backer, ['daemon', '--config', cfg.path], { cwd: work, env: cleanEnv() });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    try {
      await waitFor(() => out.includes('"msg":"backer daemon started"'), () => out);
      const mandates = await run(backer, ['mandates', 'list', '--config', cfg.path], { cwd: work });
      expect(mandates.stdout).toContain('pknpm-files');
      child.kill('SIGHUP');
      await waitFor(() => out.includes('"msg":"reload done"'), () => out);
      expect((await callApi<{ status: string }>(join(cfg.dir, 'data', 'backer.sock'), 'GET', '/v1/health')).status).toBe('ok');
    } finally {
      child.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
  });

  it('makes the shipped unit pass systemd-analyze verify with ExecStart at the installed backer', async () => {
    const shipped = join(prefix, 'lib', 'node_modules', 'backer', 'packaging', 'backer.service');
    const dir = await mkdtemp(join(work, 'unit-'));
    await writeFile(join(dir, 'backer.service'), (await readFile(shipped, 'utf8')).replace(/^ExecStart=\S+/m, `ExecStart=${backer}`));
    const verify = await run('systemd-analyze', ['verify', join(dir, 'backer.service')]);
    expect(verify.stderr).toBe('');
    expect(verify.code).toBe(0);
  });
});

async function waitFor(ok: () => boolean, output: () => string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out; output:\n${output()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** A config with one files mandate (gzip to a local target), no Docker, in its own folder. */
async function filesConfig(name: string): Promise<{ dir: string; path: string }> {
  const dir = join(work, name);
  await mkdir(join(dir, 'files'), { recursive: true });
  await writeFile(join(dir, 'files', 'hello.txt'), 'hello from the installed package\n');
  const yaml = `data_dir: ${dir}/data
docker:
  enabled: false
targets:
  - name: local
    type: local
    path: ${dir}/backups
middleware:
  - name: compression
    type: gzip
    level: 6
mandates:
  pknpm-files:
    type: files
    interval: "0 0 29 2 *"
    middleware: compression
    files:
      path: ${dir}/files
`;
  await writeFile(join(dir, 'backer.yml'), yaml);
  return { dir, path: join(dir, 'backer.yml') };
}
