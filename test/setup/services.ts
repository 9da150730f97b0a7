/**
 * Real services for tests and benchmarks: a private Docker engine (no registry access needed),
 * an image made from the host's own root, and an S3 server (s3rver) on loopback.
 * Everything started here is stopped by process id.
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { appendFile, mkdir, mkdtemp, readFile, rm, symlink, chmod, writeFile } from 'node:fs/promises';
import { openSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { AddressInfo } from 'node:net';
import S3rver from 's3rver';
import { installUploadListing } from './s3-uploads.js';

const exec = promisify(execFile);

export const HOST_IMAGE = 'hostuser:latest';

export interface DockerService {
  host: string;
  socketPath: string;
  pid: number;
  stop(): Promise<void>;
}

async function waitFor(check: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/**
 * Runs the docker CLI. Values for `-e NAME` (without `=value`) go in `env`: the CLI reads them
 * from its own environment, so test secrets never appear in any argv.
 */
export async function docker(host: string, args: string[], input?: string, env: Record<string, string> = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('docker', args, { env: { ...process.env, ...env, DOCKER_HOST: host } });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(out.trim()) : reject(new Error(`docker ${args.join(' ')}: ${err.trim()}`))));
    // A docker command that exits before reading its input (most never read it) closes the pipe:
    // its exit code and stderr tell what happened; EPIPE on the unread input adds nothing, and
    // unhandled it would end the test run.
    child.stdin.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code !== 'EPIPE') reject(e);
    });
    child.stdin.end(input ?? '');
  });
}

export async function startDockerd(baseDir?: string): Promise<DockerService> {
  // Short paths: unix socket paths are limited to ~100 bytes.
  const dir = baseDir ?? (await mkdtemp(join(tmpdir(), 'bkd-')));
  await mkdir(join(dir, 'data'), { recursive: true });
  const socketPath = join(dir, 'docker.sock');
  const host = `unix://${socketPath}`;
  const log = openSync(join(dir, 'dockerd.log'), 'a');
  const child: ChildProcess = spawn(
    'dockerd',
    [
      '--data-root', join(dir, 'data'),
      '--exec-root', join(dir, 'exec'),
      '--host', host,
      '--pidfile', join(dir, 'docker.pid'),
      '--storage-driver', 'vfs',
      '--iptables=false',
      '--bridge=none',
    ],
    { detached: true, stdio: ['ignore', log, log] },
  );
  closeSync(log);
  child.unref();
  const pid = child.pid;
  if (pid === undefined) throw new Error('dockerd did not start (is docker.io installed?)');
  // CI's safety net: it stops these by pid even if the test run itself is killed.
  if (process.env.BACKER_TEST_PIDS) await appendFile(process.env.BACKER_TEST_PIDS, `${pid}\n`);
  await waitFor(async () => docker(host, ['info']).then(() => true, () => false), 60_000, `dockerd (log: ${dir}/dockerd.log)`);
  return {
    host,
    socketPath,
    pid,
    async stop() {
      try {
        const ids = await docker(host, ['ps', '-aq']);
        if (ids) await docker(host, ['rm', '-f', ...ids.split(/\s+/)]).catch(() => undefined);
      } catch {
        // the engine may already be gone
      }
      try {
        process.kill(pid, 'SIGTERM');
      } catch {
        return;
      }
      await waitFor(() => {
        try {
          process.kill(pid, 0);
          return false;
        } catch {
          return true;
        }
      }, 30_000, 'dockerd to stop').catch(() => process.kill(pid, 'SIGKILL'));
      await unmountBelow(dir);
      await rm(dir, { recursive: true, force: true }).catch(() => undefined);
    },
  };
}

/**
 * Unmounts what dockerd left mounted below `dir`: a container with host networking makes it
 * bind-mount the host's network namespace at `exec/netns/default`, which outlives dockerd and
 * would make removing the folder fail with EBUSY.
 */
async function unmountBelow(dir: string): Promise<void> {
  const mountinfo = await readFile('/proc/self/mountinfo', 'utf8');
  const points = mountinfo.split('\n').map((line) => line.split(' ')[4] ?? '').filter((p) => p.startsWith(`${dir}/`));
  for (const point of points.reverse()) await exec('umount', [point]);
}

/** An image whose containers see the host's programs through `-v /usr:/usr:ro -v /etc:/etc:ro`. */
export async function buildHostImage(host: string): Promise<void> {
  const existing = await docker(host, ['images', '-q', HOST_IMAGE]);
  if (existing) return;
  const root = await mkdtemp(join(tmpdir(), 'bkroot-'));
  for (const d of ['usr', 'etc', 'tmp', 'var/lib', 'var/tmp', 'run', 'root', 'proc', 'sys', 'dev', 'data']) {
    await mkdir(join(root, d), { recursive: true });
  }
  for (const [link, to] of [['bin', 'usr/bin'], ['sbin', 'usr/sbin'], ['lib', 'usr/lib'], ['lib64', 'usr/lib64']] as const) {
    await symlink(to, join(root, link));
  }
  await chmod(join(root, 'tmp'), 0o1777);
  // mkdtemp makes 0700 directories: the image's / must be traversable for non-root users (-u 101:104).
  await chmod(root, 0o755);
  await writeFile(join(root, 'README'), 'backer test image\n');
  await new Promise<void>((resolve, reject) => {
    const tar = spawn('tar', ['-C', root, '-c', '.'], { stdio: ['ignore', 'pipe', 'inherit'] });
    const imp = spawn('docker', ['import', '-', HOST_IMAGE], {
      env: { ...process.env, DOCKER_HOST: host },
      stdio: ['pipe', 'ignore', 'inherit'],
    });
    tar.stdout.pipe(imp.stdin);
    imp.on('error', reject);
    imp.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`docker import exited ${code}`))));
  });
  await rm(root, { recursive: true, force: true });
}

export interface S3Service {
  endpoint: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
  stop(): Promise<void>;
}

export async function startS3(): Promise<S3Service> {
  const dir = await mkdtemp(join(tmpdir(), 'bks3-'));
  const server = new S3rver({ port: 0, address: '127.0.0.1', silent: true, directory: dir });
  // s3rver lacks ListMultipartUploads, ListParts and AbortMultipartUpload: see s3-uploads.ts.
  installUploadListing(server);
  const address: AddressInfo = await server.run();
  return {
    endpoint: `http://127.0.0.1:${address.port}`,
    region: 'us-east-1',
    // s3rver's fixed development credentials
    accessKeyId: 'S3RVER',
    secretAccessKey: 'S3RVER',
    async stop() {
      await server.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export async function commandExists(cmd: string): Promise<boolean> {
  return exec('sh', ['-c', `command -v ${cmd}`]).then(() => true, () => false);
}
