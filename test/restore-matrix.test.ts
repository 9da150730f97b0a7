/**
 * A restore through every middleware (gzip, zstd, ccrypt, gpg with a passphrase, gpg with a
 * public and a private key, age with an identity, and a chain of three) from the local target
 * and from S3, through a real `backer daemon` process and the CLI: static `files` mandates,
 * backed up, changed, restored into their own directory with `--to file:PATH --yes`, compared
 * by a fingerprint of every entry and file hash. A middleware that can only encrypt (gpg with
 * public keys only, age with recipients only) is refused before anything is touched (exit 5).
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parseDocument } from 'yaml';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { callApi } from '../src/cli/client.js';
import type { Manifest } from '../src/manifests/schema.js';
import type { RestoreResult } from '../src/pipeline/run-restore.js';
import type { Job } from '../src/queue/types.js';
import { runProgram } from './helpers/artifacts.js';
import { cli } from './helpers/cli.js';
import { spawnDaemon, waitForHealth, type DaemonProcess } from './helpers/daemon-proc.js';
import { AGE_IDENTITY, AGE_RECIPIENT, createTestEnv, testProcessEnv, type TestEnv } from './helpers/env.js';
import { change as changeRedis, fingerprint as redisFingerprint, seed as seedRedis, startRedis } from './helpers/redis.js';
import { docker } from './setup/services.js';

const exec = promisify(execFile);
const host = (): string => inject('dockerHost');
const ID = randomBytes(3).toString('hex');
const REDIS = `rmx-redis-${ID}`;
const REDIS_VOLUME = `rmx-redis-data-${ID}`;

/** Mandate → its middleware chain (names in the config; the types are in TYPES). */
const CHAINS: Record<string, string[]> = {
  'mx-gzip': ['compression'],
  'mx-zstd': ['zstd'],
  'mx-ccrypt': ['encryption'],
  'mx-gpg-passphrase': ['gpg'],
  'mx-gpg-key': ['gpg_key'],
  'mx-age': ['age_id'],
  'mx-chain': ['zstd', 'gpg_key', 'age_id'],
};
const TYPES: Record<string, string> = { compression: 'gzip', zstd: 'zstd', encryption: 'ccrypt', gpg: 'gpg', gpg_key: 'gpg', age_id: 'age', gpg_pub_only: 'gpg', age_no_identity: 'age' };
const REFUSED = { 'mx-gpg-pub-only': ['gpg_pub_only'], 'mx-age-no-identity': ['age_no_identity'] };

let env: TestEnv;
let daemon: DaemonProcess;
let socket: string;
let keyring: string;
const dirOf = (mandate: string): string => join(env.dir, 'files', mandate);

const run = (args: string[]): ReturnType<typeof cli> => cli([...args, '--config', env.configPath], testProcessEnv());

async function runJson<T>(args: string[]): Promise<{ code: number; body: T }> {
  const r = await run([...args, '--json']);
  return { code: r.code, body: JSON.parse(r.stdout || 'null') as T };
}

/** Every entry with type, mode, size and link target, and every file's sha256: find and sha256sum, not Backer's code. */
async function fingerprint(dir: string): Promise<string> {
  const { stdout: entries } = await exec('find', ['.', '-printf', '%P|%y|%m|%s|%l\n'], { cwd: dir });
  const { stdout: hashes } = await exec('find', ['.', '-type', 'f', '-exec', 'sha256sum', '{}', '+'], { cwd: dir });
  const sorted = (text: string): string => text.split('\n').filter((l) => l !== '').sort().join('\n');
  return `${sorted(entries.split('\n').map((l) => (l.includes('|d|') ? l.replace(/\|\d+\|\|$/, '||') : l)).join('\n'))}\n${sorted(hashes)}`;
}

async function seedDir(dir: string): Promise<void> {
  await mkdir(join(dir, 'db'), { recursive: true });
  await mkdir(join(dir, 'conf/private'), { recursive: true });
  await writeFile(join(dir, 'db/dump.sql'), 'INSERT INTO t VALUES (1, \'ü\');\n'.repeat(8_000));
  await writeFile(join(dir, 'blob.bin'), randomBytes(400_000));
  await writeFile(join(dir, 'empty'), '');
  await writeFile(join(dir, 'conf/private/key.txt'), 'secret-ish\n');
  await chmod(join(dir, 'conf/private/key.txt'), 0o600);
  await chmod(join(dir, 'conf/private'), 0o700);
  await symlink('db/dump.sql', join(dir, 'latest.sql'));
}

/** Files changed, removed and added. */
async function changeDir(dir: string): Promise<void> {
  await writeFile(join(dir, 'blob.bin'), randomBytes(1000));
  await rm(join(dir, 'db/dump.sql'));
  await writeFile(join(dir, `new-${randomBytes(3).toString('hex')}.txt`), 'added after the backup\n');
}

async function backup(mandate: string): Promise<string> {
  const { code, body } = await runJson<Job>(['backup', mandate, '--wait']);
  expect(code, JSON.stringify(body)).toBe(0);
  return (body.result as { name?: string } | null)?.name ?? '';
}

async function manifests(mandate: string): Promise<Manifest[]> {
  return (await runJson<{ backups: Manifest[] }>(['backups', 'list', '--mandate', mandate])).body.backups;
}

const gpg = (args: string[], input: Buffer): Promise<Buffer> =>
  runProgram('gpg', ['--batch', '--no-tty', '--quiet', '--homedir', keyring, '--pinentry-mode', 'loopback', ...args], input);

/** An unprotected key pair made with the real gpg (the passphrase line on stdin is empty). */
async function gpgKeys(): Promise<{ publicKey: string; privateKey: string }> {
  keyring = await mkdtemp(join(env.dir, 'keyring-'));
  await gpg(['--passphrase-fd', '0', '--quick-gen-key', 'Restore <restore@example.test>', 'future-default', 'default', 'never'], Buffer.from('\n'));
  const publicKey = (await gpg(['--armor', '--export', 'restore@example.test'], Buffer.alloc(0))).toString();
  const privateKey = (await gpg(['--passphrase-fd', '0', '--armor', '--export-secret-keys', 'restore@example.test'], Buffer.from('\n'))).toString();
  return { publicKey, privateKey };
}

/** The helper's config plus the key-holding middleware and one files mandate per chain, edited as YAML. */
async function writeConfig(): Promise<void> {
  const { publicKey, privateKey } = await gpgKeys();
  expect(privateKey).toContain('-----BEGIN PGP PRIVATE KEY BLOCK-----');
  const doc = parseDocument(await readFile(env.configPath, 'utf8'));
  doc.addIn(['middleware'], { name: 'gpg_key', type: 'gpg', public_keys: [publicKey], private_key: privateKey });
  doc.addIn(['middleware'], { name: 'gpg_pub_only', type: 'gpg', public_keys: [publicKey] });
  doc.addIn(['middleware'], { name: 'age_id', type: 'age', recipients: [AGE_RECIPIENT], identity: AGE_IDENTITY });
  doc.addIn(['middleware'], { name: 'age_no_identity', type: 'age', recipients: [AGE_RECIPIENT] });
  const mandates: Record<string, unknown> = {};
  for (const [mandate, chain] of [...Object.entries(CHAINS), ...Object.entries(REFUSED)]) {
    await seedDir(dirOf(mandate));
    mandates[mandate] = { type: 'files', interval: '0 0 29 2 *', target: 'local,s3', middleware: chain.join(','), files: { path: dirOf(mandate) } };
  }
  doc.setIn(['mandates'], mandates);
  await writeFile(env.configPath, doc.toString());
}

beforeAll(async () => {
  env = await createTestEnv('rmatrix');
  socket = join(env.dir, 'data', 'backer.sock');
  await writeConfig();
  await startRedis(REDIS, {
    volume: REDIS_VOLUME,
    labels: { 'backer.enabled': 'true', 'backer.type': 'redis', 'backer.interval': '0 0 29 2 *', 'backer.target': 'local', 'backer.middleware': 'gpg_pub_only', 'backer.redis.password': 'Env:REDIS_PASSWORD' },
  });
  await seedRedis(REDIS);
  daemon = spawnDaemon(env.configPath);
  await waitForHealth(daemon, socket, 60_000);
}, 180_000);

afterAll(async () => {
  await daemon.stop();
  if (process.env.BACKER_TEST_DAEMON_LOG) await writeFile(process.env.BACKER_TEST_DAEMON_LOG, daemon.output());
  await docker(host(), ['rm', '-f', '-v', REDIS]).catch(() => undefined);
  await docker(host(), ['volume', 'rm', '-f', REDIS_VOLUME]).catch(() => undefined);
  await runProgram('gpgconf', ['--homedir', keyring, '--kill', 'gpg-agent'], Buffer.alloc(0)).catch(() => undefined);
  await rm(env.dir, { recursive: true, force: true });
});

describe('a restore through every middleware, from local and from S3', () => {
  it.each(Object.entries(CHAINS))('%s (%j): back up, change, restore from each target, same data as backed up', async (mandate, chain) => {
    const dir = dirOf(mandate);
    const original = await fingerprint(dir);
    const name = await backup(mandate);
    const stored = (await manifests(mandate)).filter((m) => m.name === name);
    expect(stored.map((m) => m.target.name).sort()).toEqual(['local', 's3']);
    for (const m of stored) {
      expect(m.steps.map((s) => s.processor)).toEqual(['source:files', ...chain.map((n) => `middleware:${TYPES[n] ?? '?'}:${n}`)]);
    }
    for (const target of ['local', 's3']) {
      await changeDir(dir);
      expect(await fingerprint(dir)).not.toBe(original);
      const { code, body } = await runJson<Job<RestoreResult>>(['restore', mandate, name, '--target', target, '--to', `file:${dir}`, '--yes', '--wait']);
      expect(code, JSON.stringify(body)).toBe(0);
      expect(body.result).toMatchObject({ backup: name, target, to: `file:${dir}`, rolled_back: false });
      expect(await fingerprint(dir), `restored from ${target}`).toBe(original);
    }
  }, 180_000);
});

describe('a middleware that can only encrypt is refused before anything is touched', () => {
  it.each([
    ['mx-gpg-pub-only', 'gpg middleware gpg_pub_only has public keys but no private_key or private_key_file'],
    ['mx-age-no-identity', 'age middleware age_no_identity has no identity or identity_file'],
  ])('%s: exit 5 naming the middleware, the directory as it was', async (mandate, reason) => {
    const dir = dirOf(mandate);
    const name = await backup(mandate);
    await changeDir(dir);
    const changed = await fingerprint(dir);
    for (const target of ['local', 's3']) {
      const refused = await run(['restore', mandate, name, '--target', target, '--to', `file:${dir}`, '--yes', '--wait']);
      expect(refused.code, refused.stdout + refused.stderr).toBe(5);
      expect(refused.stdout).toContain(`backup ${name} cannot be decoded: ${reason}`);
      expect(refused.stdout).toContain('add the private key to the config');
      expect(await fingerprint(dir)).toBe(changed);
    }
    // The plan says the same, and a new directory is not even created.
    const fresh = join(env.dir, 'files', `${mandate}-fresh`);
    const plan = await run(['restore', mandate, name, '--to', `file:${fresh}`, '--dry-run']);
    expect(plan.code, plan.stdout + plan.stderr).toBe(5);
    expect(plan.stdout + plan.stderr).toContain(reason);
    await expect(exec('test', ['-e', fresh])).rejects.toThrow();
    expect((await callApi<{ status: string }>(socket, 'GET', '/v1/health')).status).toBe('ok');
  });

  it('a labelled redis container encrypted with gpg public keys only: refused, no safety backup, the server not stopped', async () => {
    const name = await backup(REDIS);
    await changeRedis(REDIS);
    const changed = await redisFingerprint(REDIS);
    const started = await docker(host(), ['inspect', '-f', '{{.State.StartedAt}}', REDIS]);
    const before = (await manifests(REDIS)).map((m) => m.name);
    const refused = await run(['restore', REDIS, name, '--to', 'original', '--yes', '--wait']);
    expect(refused.code, refused.stdout + refused.stderr).toBe(5);
    expect(refused.stdout).toContain(`backup ${name} cannot be decoded: gpg middleware gpg_pub_only has public keys but no private_key`);
    expect(refused.stdout).toContain('add the private key to the config');
    expect(refused.stdout).not.toContain('safety backup:');
    expect((await manifests(REDIS)).map((m) => m.name)).toEqual(before);
    expect(await redisFingerprint(REDIS)).toBe(changed);
    expect(await docker(host(), ['inspect', '-f', '{{.State.Running}} {{.State.StartedAt}}', REDIS])).toBe(`true ${started}`);
    expect((await callApi<{ status: string }>(socket, 'GET', '/v1/health')).status).toBe('ok');
    expect((await run(['mandates', 'list'])).code).toBe(0);
  });
});
