/**
 * A static files mandate backed up through zstd then gpg (public key) to S3 by an in-process
 * daemon; the artifact is then opened with the real programs only: gpg --decrypt, zstd -d, tar -x.
 * The same mandate also goes through age and gzip+ccrypt, opened with age -d, ccrypt -d, gzip -d.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseDocument } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Daemon } from '../src/daemon/daemon.js';
import type { Manifest } from '../src/manifests/schema.js';
import { digest, runProgram, s3Get } from './helpers/artifacts.js';
import { backupJob, createTestEnv, startDaemon, type TestEnv } from './helpers/env.js';
import { backupAndDecode } from './helpers/matrix.js';

const MANDATE = 'mwe2e-files';
let env: TestEnv;
let daemon: Daemon | undefined;
let keyring: string;
let filesDir: string;
const contents = { 'dump.sql': Buffer.from('INSERT INTO t VALUES (1);\n'.repeat(20_000)), 'blob.bin': randomBytes(300_000) };

const gpg = (args: string[], input: Buffer): Promise<Buffer> =>
  runProgram('gpg', ['--batch', '--no-tty', '--quiet', '--homedir', keyring, '--pinentry-mode', 'loopback', ...args], input);

beforeAll(async () => {
  env = await createTestEnv('mwe2e');
  keyring = await mkdtemp(join(env.dir, 'keyring-'));
  // An unprotected test key, made with the real gpg; the passphrase line on stdin is empty.
  await gpg(['--passphrase-fd', '0', '--quick-gen-key', 'Ops <ops@example.test>', 'future-default', 'default', 'never'], Buffer.from('\n'));
  const publicKey = (await gpg(['--armor', '--export', 'ops@example.test'], Buffer.alloc(0))).toString();

  filesDir = join(env.dir, 'files');
  await mkdir(join(filesDir, 'db'), { recursive: true });
  await writeFile(join(filesDir, 'db', 'dump.sql'), contents['dump.sql']);
  await writeFile(join(filesDir, 'blob.bin'), contents['blob.bin']);

  // The helper's config plus our middleware and mandate, edited as YAML (no duplicate keys).
  const doc = parseDocument(await readFile(env.configPath, 'utf8'));
  doc.addIn(['middleware'], { name: 'squeeze', type: 'zstd', level: 9, threads: 0 });
  doc.addIn(['middleware'], { name: 'seal', type: 'gpg', public_keys: [publicKey] });
  doc.setIn(['mandates'], { [MANDATE]: { type: 'files', target: 's3', middleware: 'squeeze,seal', files: { path: filesDir } } });
  await writeFile(env.configPath, doc.toString());
  daemon = await startDaemon(env);
});

afterAll(async () => {
  await daemon?.services.middleware.get('seal')?.close?.();
  await daemon?.close();
  await runProgram('gpgconf', ['--homedir', keyring, '--kill', 'gpg-agent'], Buffer.alloc(0)).catch(() => undefined);
  await rm(env.dir, { recursive: true, force: true });
});

describe('files → zstd → gpg → S3', () => {
  it('stores an artifact that the real gpg decrypts and the real zstd decompresses to the original tar', async () => {
    if (daemon === undefined) throw new Error('daemon did not start');
    await daemon.services.discovery.refresh();
    const job = backupJob(await daemon.queue.wait(daemon.queue.enqueue(MANDATE, 'api').id));
    expect(job.error).toBeNull();
    expect(job.state).toBe('succeeded');
    const artifactKey = job.result?.targets[0]?.artifact_key ?? '';
    expect(artifactKey).toMatch(new RegExp(`^${MANDATE}/.*\\.tar\\.zst\\.gpg$`));

    const encrypted = await s3Get(env.bucket, `backer/${artifactKey}`);
    const manifest = JSON.parse((await s3Get(env.bucket, `backer/${artifactKey.replace(/\.tar\.zst\.gpg$/, '.manifest.json')}`)).toString()) as Manifest;
    expect(manifest.steps.map((s) => [s.processor, s.mime])).toEqual([
      ['source:files', expect.any(String)],
      ['middleware:zstd:squeeze', 'application/zstd'],
      ['middleware:gpg:seal', 'application/pgp-encrypted'],
    ]);
    expect(digest(encrypted)).toEqual({ size: manifest.artifact.size, md5: manifest.artifact.md5, sha256: manifest.artifact.sha256 });

    const compressed = await gpg(['--decrypt'], encrypted);
    const tar = await runProgram('zstd', ['-d', '-c'], compressed);
    const [tarStep, zstdStep] = manifest.steps;
    expect(digest(compressed)).toEqual({ size: zstdStep?.size, md5: zstdStep?.md5, sha256: zstdStep?.sha256 });
    expect(digest(tar)).toEqual({ size: tarStep?.size, md5: tarStep?.md5, sha256: tarStep?.sha256 });

    const restored = join(env.dir, 'restored');
    await mkdir(restored);
    await runProgram('tar', ['-x', '-C', restored, '-f', '-'], tar);
    expect((await readFile(join(restored, 'db', 'dump.sql'))).equals(contents['dump.sql'])).toBe(true);
    expect((await readFile(join(restored, 'blob.bin'))).equals(contents['blob.bin'])).toBe(true);
  });
});

describe('files → age, gzip+ccrypt → S3', () => {
  it('stores artifacts that the real age, ccrypt and gzip open to the original files', async () => {
    if (daemon === undefined) throw new Error('daemon did not start');
    // The config keeps createTestEnv's middleware (compression, encryption, age …) and adds its own.
    const chains: { chain: string[]; extension: RegExp; processors: string[] }[] = [
      { chain: ['age'], extension: /\.tar\.age$/, processors: ['middleware:age:age'] },
      { chain: ['compression', 'encryption'], extension: /\.tar\.gz\.cpt$/, processors: ['middleware:gzip:compression', 'middleware:ccrypt:encryption'] },
    ];
    for (const { chain, extension, processors } of chains) {
      const { key, manifest, raw: tar } = await backupAndDecode(daemon, env.bucket, MANDATE, chain);
      expect(key).toMatch(new RegExp(`^${MANDATE}/`));
      expect(key).toMatch(extension);
      expect(manifest.steps.map((s) => s.processor)).toEqual(['source:files', ...processors]);

      const restored = join(env.dir, `restored-${chain.join('-')}`);
      await mkdir(restored);
      await runProgram('tar', ['-x', '-C', restored, '-f', '-'], tar);
      expect((await readdir(restored, { recursive: true })).sort()).toEqual(['blob.bin', 'db', join('db', 'dump.sql')]);
      expect((await readFile(join(restored, 'db', 'dump.sql'))).equals(contents['dump.sql'])).toBe(true);
      expect((await readFile(join(restored, 'blob.bin'))).equals(contents['blob.bin'])).toBe(true);
    }
  });
});
