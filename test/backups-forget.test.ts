/**
 * A manifest whose artifact was deleted by hand is reported on every list (exit 1) until
 * `backer backups forget` removes it; forget never touches a backup whose artifact is present.
 * Real local and S3 (s3rver) targets, no daemon.
 */
import { existsSync } from 'node:fs';
import { mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DeleteObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Manifest } from '../src/manifests/schema.js';
import type { ManifestProblem } from '../src/manifests/store.js';
import { callApi } from '../src/cli/client.js';
import { cli, spawnCli } from './helpers/cli.js';
import { createTestEnv, filesMandateYaml, s3Client, type TestEnv } from './helpers/env.js';

const MANDATE = 'forget-files';
let env: TestEnv;
let filesDir: string;

const run = (args: string[]): ReturnType<typeof cli> => cli([...args, '--config', env.configPath], { TEST_FILES_DIR: filesDir });

async function s3Keys(): Promise<string[]> {
  const client = s3Client();
  try {
    const listing = await client.send(new ListObjectsV2Command({ Bucket: env.bucket, Prefix: `backer/${MANDATE}/` }));
    return (listing.Contents ?? []).map((o) => o.Key ?? '').sort();
  } finally {
    client.destroy();
  }
}

async function localKeys(): Promise<string[]> {
  return (await readdir(join(env.dir, 'backups', MANDATE)).catch(() => [])).sort();
}

async function list(): Promise<{ code: number; stderr: string; backups: Manifest[]; problems: ManifestProblem[] }> {
  const r = await run(['backups', 'list', '--mandate', MANDATE, '--json']);
  return { code: r.code, stderr: r.stderr, ...(JSON.parse(r.stdout) as { backups: Manifest[]; problems: ManifestProblem[] }) };
}

let first: Manifest;
let second: Manifest;

beforeAll(async () => {
  env = await createTestEnv(
    'forget',
    `mandates:\n${filesMandateYaml(MANDATE, 'TEST_FILES_DIR', { target: '[local, s3]' })}`,
  );
  filesDir = join(env.dir, 'files');
  await mkdir(filesDir, { recursive: true });
  await writeFile(join(filesDir, 'a.txt'), 'alpha\n');
  for (let i = 0; i < 2; i++) {
    const r = await run(['backup', MANDATE, '--once']);
    expect(r.code, r.stderr).toBe(0);
  }
  const listing = await list();
  expect(listing.code).toBe(0);
  expect(listing.backups).toHaveLength(4);
  const names = [...new Set(listing.backups.map((b) => b.name))].sort();
  expect(names).toHaveLength(2);
  first = listing.backups.find((b) => b.name === names[0]) as Manifest;
  second = listing.backups.find((b) => b.name === names[1]) as Manifest;
});

describe('backups forget', () => {
  it('refuses to forget a backup whose artifact is present, and deletes nothing', async () => {
    const before = { local: await localKeys(), s3: await s3Keys() };
    const r = await run(['backups', 'forget', first.name]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(new RegExp(`refusing to forget ${first.name}: its artifact is present`));
    expect({ local: await localKeys(), s3: await s3Keys() }).toEqual(before);
    expect((await run(['backups', 'forget', 'no-such-backup'])).code).toBe(4);
  });

  it('local: an artifact deleted by hand is reported (exit 1) until forget removes its manifest', async () => {
    await rm(join(env.dir, 'backups', first.artifact.key));
    const broken = await list();
    expect(broken.code).toBe(1);
    expect(broken.problems).toEqual([
      {
        target: 'local',
        key: `${MANDATE}/${first.name}.manifest.json`,
        message: expect.stringContaining(`artifact ${first.artifact.key} is missing`) as unknown,
        dangling: { name: first.name, uuid: first.uuid, mandate: MANDATE, artifact_key: first.artifact.key },
      },
    ]);
    const human = await run(['backups', 'list', '--mandate', MANDATE]);
    expect(human.code).toBe(1);
    expect(human.stderr).toContain(`backer backups forget ${first.name}`);

    // A running daemon reports the same through its API, and forget works beside it.
    // A short listing bound (README "Manifest cache and listing index", 60 s by default): the forget
    // below is another process, so the daemon sees it within the bound; the test waits it out.
    const daemon = spawnCli(['daemon', '--config', env.configPath], { TEST_FILES_DIR: filesDir, BACKER_INTERNAL_LISTING_MAX_AGE_MS: '1000' });
    const socket = join(env.dir, 'data', 'backer.sock');
    try {
      for (let i = 0; i < 300 && !existsSync(socket); i++) await new Promise((r) => setTimeout(r, 100));
      expect(existsSync(socket), daemon.output()).toBe(true);
      const api = await callApi<{ problems: ManifestProblem[] }>(socket, 'GET', `/v1/backups?mandate=${MANDATE}`);
      expect(api.problems).toEqual(broken.problems);

      const forget = await run(['backups', 'forget', first.name]);
      expect(forget.code, forget.stderr).toBe(0);
      expect(forget.stdout).toContain(`forgot ${first.name} on local`);
      // The copy on S3 is healthy: kept.
      expect(forget.stdout).toContain(`kept ${MANDATE}/${first.name}.manifest.json on s3`);
      await new Promise((r) => setTimeout(r, 1200));
      expect((await callApi<{ problems: ManifestProblem[] }>(socket, 'GET', `/v1/backups?mandate=${MANDATE}`)).problems).toEqual([]);
      expect(await callApi<{ status: string }>(socket, 'GET', '/v1/health')).toMatchObject({ status: 'ok' });
    } finally {
      daemon.child.kill('SIGTERM');
      const code = await new Promise<number | null>((resolve) => daemon.child.on('close', resolve));
      expect(code).toBe(0);
    }

    const clean = await list();
    expect(clean.code).toBe(0);
    expect(clean.problems).toEqual([]);
    expect(clean.backups.map((b) => `${b.target.name}:${b.name}`).sort()).toEqual([`local:${second.name}`, `s3:${first.name}`, `s3:${second.name}`]);
    expect(await localKeys()).not.toContain(`${first.name}.manifest.json`);
  });

  it('s3: forget by uuid with --target removes only that dangling manifest', async () => {
    const secondOnS3 = (await list()).backups.find((b) => b.name === second.name && b.target.name === 's3') as Manifest;
    const client = s3Client();
    await client.send(new DeleteObjectCommand({ Bucket: env.bucket, Key: `backer/${secondOnS3.artifact.key}` }));
    client.destroy();
    const broken = await list();
    expect(broken.code).toBe(1);
    expect(broken.problems.map((p) => [p.target, p.dangling?.uuid])).toEqual([['s3', secondOnS3.uuid]]);

    // Local holds a healthy copy of the same backup name: --target local refuses, deletes nothing.
    const before = await s3Keys();
    const refused = await run(['backups', 'forget', second.name, '--target', 'local']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/refusing to forget/);

    const forget = await run(['backups', 'forget', secondOnS3.uuid, '--target', 's3', '--json']);
    expect(forget.code, forget.stderr).toBe(0);
    expect(JSON.parse(forget.stdout)).toEqual({
      forgotten: [{ target: 's3', key: `${MANDATE}/${second.name}.manifest.json`, name: second.name, uuid: secondOnS3.uuid, artifact_key: secondOnS3.artifact.key }],
      kept: [],
    });
    expect(await s3Keys()).toEqual(before.filter((k) => k !== `backer/${MANDATE}/${second.name}.manifest.json`));

    const clean = await list();
    expect(clean.code).toBe(0);
    expect(clean.backups.map((b) => `${b.target.name}:${b.name}`).sort()).toEqual([`local:${second.name}`, `s3:${first.name}`]);
  });
});
