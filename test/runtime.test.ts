import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

// The runtime Backer is tested on (Node 24 LTS, engines >=22.12), and the set-up scripts that
// provide it: scripts/install-deps (demo vs test package sets) and scripts/lib/node-path.sh.

const run = promisify(execFile);
const ROOT = resolve(import.meta.dirname, '..');
const INSTALL_DEPS = join(ROOT, 'scripts', 'install-deps');
const NODE_PATH_LIB = join(ROOT, 'scripts', 'lib', 'node-path.sh');
const MIDDLEWARE_PACKAGES = ['ccrypt', 'gzip', 'tar', 'gnupg', 'age', 'zstd'];
/** The toolchain that builds better-sqlite3 when no prebuilt binary can be fetched. */
const BUILD_PACKAGES = ['python3', 'make', 'g++'];
const TEST_STACK_PACKAGES = [
  'docker.io',
  'mariadb-server',
  'mariadb-client',
  'postgresql',
  'redis-server',
  'redis-tools',
  'sqlite3',
  'debootstrap',
  'restic',
  'docker-compose',
  'systemd',
];

function atLeast(version: string, major: number, minor: number): boolean {
  const [maj = 0, min = 0] = version.replace(/^v/, '').split('.').map(Number);
  return maj > major || (maj === major && min >= minor);
}

async function printedPackages(...args: string[]): Promise<string[]> {
  const { stdout } = await run(INSTALL_DEPS, ['--print', ...args]);
  return stdout.trim().split('\n');
}

/** A `node` that reports `version` and otherwise is the real one (npm runs through it). */
async function fakeNode(version: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'runtime-node-'));
  const script = `#!/bin/sh\nif [ "$1" = --version ]; then echo ${version}; exit 0; fi\nexec "${process.execPath}" "$@"\n`;
  await writeFile(join(dir, 'node'), script);
  await chmod(join(dir, 'node'), 0o755);
  return dir;
}

/** Runs `body` in bash with node-path.sh sourced, `nodeDir` first on PATH. */
async function withLib(nodeDir: string, body: string, tools: string): Promise<{ stdout: string; stderr: string }> {
  const env = { ...process.env, PATH: `${nodeDir}:${process.env.PATH ?? ''}`, BACKER_TOOLS: tools };
  return run('bash', ['-c', `set -euo pipefail; source "${NODE_PATH_LIB}"; ${body}`], { env });
}

describe('runtime', () => {
  it('runs the tests on Node 22.12 or newer', () => {
    expect(atLeast(process.versions.node, 22, 12), `tests run on Node ${process.versions.node}`).toBe(true);
  });

  it('declares engines >=22.12 in package.json and the lockfile, with Node 24 types', async () => {
    const pkg = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as {
      engines: { node: string };
      devDependencies: Record<string, string>;
    };
    const lock = JSON.parse(await readFile(join(ROOT, 'package-lock.json'), 'utf8')) as {
      packages: Record<string, { engines?: { node: string }; version?: string }>;
    };
    expect(pkg.engines.node).toBe('>=22.12');
    expect(lock.packages['']?.engines?.node).toBe('>=22.12');
    expect(pkg.devDependencies['@types/node']).toMatch(/^\^24\./);
    expect(lock.packages['node_modules/@types/node']?.version).toMatch(/^24\./);
  });

  it('has a LICENSE matching package.json', async () => {
    const pkg = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as { license: string };
    const license = await readFile(join(ROOT, 'LICENSE'), 'utf8');
    expect(pkg.license).toBe('MIT');
    expect(license).toMatch(/^MIT License\n\nCopyright \(c\) 2026 the Backer authors\n/);
  });
});

describe('scripts/install-deps', () => {
  it('installs the middleware programs and the addon toolchain, not the test stack, for the demo', async () => {
    const demo = await printedPackages('--demo');
    expect(demo).toEqual(expect.arrayContaining([...MIDDLEWARE_PACKAGES, ...BUILD_PACKAGES]));
    for (const pkg of TEST_STACK_PACKAGES) expect(demo).not.toContain(pkg);
  });

  it('installs the demo set plus the whole test stack for the tests', async () => {
    const demo = await printedPackages('--demo');
    const full = await printedPackages();
    expect(full).toEqual(expect.arrayContaining([...demo, ...TEST_STACK_PACKAGES]));
    expect(await printedPackages('--test')).toEqual(full);
  });

  it('refuses an unknown option with exit 2 and its usage', async () => {
    const failure = await run(INSTALL_DEPS, ['--bogus']).then(
      () => null,
      (error: unknown) => error as { code: number; stderr: string },
    );
    expect(failure?.code).toBe(2);
    expect(failure?.stderr).toContain("unknown option '--bogus'");
    expect(failure?.stderr).toContain('--demo');
  });
});

describe('scripts/lib/node-path.sh', () => {
  it('makes the Node it puts on PATH trust the system CA store too (npm behind a proxy whose CA is installed), unless told otherwise', async () => {
    const tools = await mkdtemp(join(tmpdir(), 'runtime-tools-'));
    // NODE_EXTRA_CA_CERTS (set on some machines) adds to the default store too: left out here.
    const trusted = "node -p \"const t = require('node:tls'); t.getCACertificates('default').length > t.getCACertificates('bundled').length\"";
    const on = await withLib(dirname(process.execPath), `unset NODE_USE_SYSTEM_CA NODE_EXTRA_CA_CERTS; backer_use_node; echo "$NODE_USE_SYSTEM_CA"; ${trusted}`, tools);
    expect(on.stdout.trim().split('\n')).toEqual(['1', 'true']);
    const off = await withLib(dirname(process.execPath), `unset NODE_EXTRA_CA_CERTS; export NODE_USE_SYSTEM_CA=0; backer_use_node; echo "$NODE_USE_SYSTEM_CA"; ${trusted}`, tools);
    expect(off.stdout.trim().split('\n')).toEqual(['0', 'false']);
  });

  it('accepts Node 22.12 and newer only', async () => {
    const tools = await mkdtemp(join(tmpdir(), 'runtime-tools-'));
    const verdicts: Record<string, boolean> = {};
    for (const version of ['v20.19.0', 'v22.11.0', 'v22.12.0', 'v24.1.0', 'v100.0.0']) {
      const { stdout } = await withLib(await fakeNode(version), 'backer_node_ok && echo yes || echo no', tools);
      verdicts[version] = stdout.trim() === 'yes';
    }
    expect(verdicts).toEqual({ 'v20.19.0': false, 'v22.11.0': false, 'v22.12.0': true, 'v24.1.0': true, 'v100.0.0': true });
  });

  it('installs Node 24 from the npm registry next to an old node, puts it first on PATH, and skips it the second time', async () => {
    const tools = join(await mkdtemp(join(tmpdir(), 'runtime-tools-')), '.tools');
    await mkdir(tools);
    const oldNode = await fakeNode('v20.19.0');
    const pkg = (await withLib(oldNode, 'backer_node_package', tools)).stdout.trim();
    const first = await withLib(oldNode, 'backer_ensure_node; command -v node; node --version', tools);
    const [where, version] = first.stdout.trim().split('\n').slice(-2);
    expect(first.stdout).toContain(`node on PATH is v20.19.0: installing ${pkg}@24 into ${tools}`);
    expect(where).toBe(join(tools, 'node_modules', pkg, 'bin', 'node'));
    expect(version).toMatch(/^v24\./);

    const second = await withLib(oldNode, 'backer_ensure_node; command -v node; node --version', tools);
    expect(second.stdout.trim().split('\n')).toEqual([where, version]);
  });

  it('points native addon builds at the headers of the node first on PATH (better-sqlite3 must load in it)', async () => {
    const tools = join(await mkdtemp(join(tmpdir(), 'runtime-tools-')), '.tools');
    const bin = dirname(process.execPath);
    const { stdout } = await withLib(bin, 'npm_config_nodedir=/usr; backer_use_node; echo "$npm_config_nodedir"', tools);
    expect(existsSync(join(dirname(bin), 'include', 'node', 'node_version.h')), 'this Node ships its headers').toBe(true);
    expect(stdout.trim()).toBe(dirname(bin));
  });
});
