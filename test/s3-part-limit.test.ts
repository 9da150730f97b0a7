/**
 * The S3 part limit against a running `backer daemon` process: an artifact larger than the parts
 * S3 allows can hold fails its job with the setting to raise, leaves no upload and no manifest,
 * and the daemon keeps answering and backing up. S3's limit is 10,000 parts; the internal
 * BACKER_INTERNAL_S3_MAX_PARTS lowers it to 4 here (5, 5, 10 and 10 MiB: 30 MiB at most).
 * A restarted daemon starts the parts of a mandate's next upload from its previous artifact's size.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { callApi } from '../src/cli/client.js';
import type { Job } from '../src/queue/types.js';
import { backupThroughApi, spawnDaemon, waitForHealth, type DaemonProcess } from './helpers/daemon-proc.js';
import { createTestEnv, filesMandateYaml, listUploads, s3Client, type TestEnv } from './helpers/env.js';

const M = `plimit-${randomBytes(3).toString('hex')}`;
const MIB = 1024 * 1024;
let env: TestEnv;
let files: string;
let socket: string;
let daemon: DaemonProcess;

function startDaemon(): DaemonProcess {
  return spawnDaemon(env.configPath, { env: { PL_DIR: files, BACKER_INTERNAL_S3_MAX_PARTS: '4' } });
}

beforeAll(async () => {
  env = await createTestEnv('plimit', `mandates:\n${filesMandateYaml(M, 'PL_DIR', { target: 's3' })}`, '', { docker: false });
  files = join(env.dir, 'files');
  await mkdir(files, { recursive: true });
  socket = join(env.dir, 'data', 'backer.sock');
  daemon = startDaemon();
  await waitForHealth(daemon, socket);
}, 60_000);

afterAll(async () => {
  expect(await daemon.stop()).toBe(0);
  await rm(env.dir, { recursive: true, force: true });
});

const backup = (): Promise<Job> => backupThroughApi(socket, M);

async function storedKeys(): Promise<string[]> {
  const client = s3Client();
  try {
    const out = await client.send(new ListObjectsV2Command({ Bucket: env.bucket, Prefix: `backer/${M}/` }));
    return (out.Contents ?? []).map((o) => o.Key ?? '');
  } finally {
    client.destroy();
  }
}

it('fails an artifact past the part limit with the setting to raise; nothing is left, and the daemon goes on', async () => {
  // Random bytes do not compress: a tar of 36 MiB is past the 30 MiB that 4 parts hold.
  await writeFile(join(files, 'big.bin'), randomBytes(36 * MIB));
  const failed = await backup();
  expect(failed.state, JSON.stringify(failed)).toBe('failed');
  expect(failed.error?.code).toBe('TARGET_WRITE_FAILED');
  expect(failed.error?.message).toMatch(/targets\.s3\.part_size_mb/);
  expect(await listUploads(env.bucket, `backer/${M}/`)).toEqual([]);
  expect(await storedKeys()).toEqual([]);
  expect(await callApi<{ status: string }>(socket, 'GET', '/v1/health')).toMatchObject({ status: 'ok' });
  // A backup that fits is stored as usual by the same daemon.
  await writeFile(join(files, 'big.bin'), randomBytes(12 * MIB));
  const ok = await backup();
  expect(ok.state, JSON.stringify(ok)).toBe('succeeded');
  expect((await storedKeys()).filter((k) => k.endsWith('.manifest.json'))).toHaveLength(1);
  expect(daemon.output()).not.toMatch(/unexpected error|unhandled/i);
}, 120_000);

it('starts the parts from the previous artifact after a restart: the 36 MiB that failed above is stored', async () => {
  // The 12 MiB backup above is the newest: 4 parts from 13 MiB on (13, 13, 26, 26) hold 78 MiB.
  // The new process has no upload of its own to go by: the size comes from the stored manifest.
  expect(await daemon.stop()).toBe(0);
  daemon = startDaemon();
  await waitForHealth(daemon, socket);
  await writeFile(join(files, 'big.bin'), randomBytes(36 * MIB));
  const ok = await backup();
  expect(ok.state, JSON.stringify(ok)).toBe('succeeded');
  expect((await storedKeys()).filter((k) => k.endsWith('.manifest.json'))).toHaveLength(2);
  expect(await listUploads(env.bucket, `backer/${M}/`)).toEqual([]);
}, 120_000);
