/**
 * The manifest cache and the listing index in a real `backer daemon` process, on a local directory
 * and on s3rver: once the documented bound has passed after hand edits (manifest edited, artifact
 * deleted or truncated, manifest deleted), GET /v1/backups reports exactly what an uncached listing
 * of the same target reports, and the daemon keeps answering. The daemon runs with a bound of
 * BOUND_MS (BACKER_INTERNAL_LISTING_MAX_AGE_MS; 60 s by default) and the test waits that long; a
 * backup and a removal through the daemon itself are seen at once. In process: a warm listing
 * reads no manifest, a changed one reads only that one.
 */
import { DeleteObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfigOrThrow } from '../src/config/load.js';
import type { Manifest } from '../src/manifests/schema.js';
import { setManifestCacheOptions } from '../src/manifests/cache.js';
import { listBackups, type ManifestProblem } from '../src/manifests/store.js';
import { createTarget } from '../src/targets/index.js';
import type { Target } from '../src/targets/types.js';
import { spawnDaemon, waitForHealth, type DaemonProcess } from './helpers/daemon-proc.js';
import { createTestEnv, filesMandateYaml, s3Client, testProcessEnv, type TestEnv } from './helpers/env.js';
import { sleep } from './helpers/poll.js';
import { jsonRequest } from './helpers/socket-http.js';
import { manifestBytes, storedFixture, type StoredFixture } from './helpers/stored-backups.js';

interface Store {
  put(key: string, data: Buffer): Promise<void>;
  remove(key: string): Promise<void>;
}

let env: TestEnv;
let daemon: DaemonProcess;
let socket: string;
const targets = new Map<string, Target>();
/** The daemon's listing bound: changes made by hand are reported at the latest this long after. */
const BOUND_MS = 1500;
/** Waits out the bound after a change made by hand. */
const afterBound = (): Promise<void> => sleep(BOUND_MS + 200);

function localStore(): Store {
  const path = (key: string): string => join(env.dir, 'backups', key);
  return {
    put: async (key, data) => {
      await mkdir(dirname(path(key)), { recursive: true });
      await writeFile(path(key), data);
    },
    remove: (key) => rm(path(key)),
  };
}

function s3Store(): Store {
  return {
    put: async (key, data) => {
      const client = s3Client();
      await client.send(new PutObjectCommand({ Bucket: env.bucket, Key: `backer/${key}`, Body: data })).finally(() => client.destroy());
    },
    remove: async (key) => {
      const client = s3Client();
      await client.send(new DeleteObjectCommand({ Bucket: env.bucket, Key: `backer/${key}` })).finally(() => client.destroy());
    },
  };
}

interface ApiPage {
  backups: Manifest[];
  total: number;
  problems: ManifestProblem[];
}

/** The daemon's answer and what an uncached listing of the same target gives, side by side. */
async function compare(target: string): Promise<ApiPage> {
  const reply = await jsonRequest<ApiPage>(socket, 'GET', `/v1/backups?target=${target}&limit=100`);
  expect(reply.status).toBe(200);
  setManifestCacheOptions({ enabled: false });
  const reference = await listBackups(targets.get(target) as Target).finally(() => setManifestCacheOptions({ enabled: true }));
  expect(reply.body.backups).toEqual(reference.backups.map((b) => b.manifest));
  expect(reply.body.problems).toEqual(reference.problems);
  return reply.body;
}

async function storeAll(store: Store, fixtures: StoredFixture[]): Promise<void> {
  for (const f of fixtures) {
    await store.put(f.artifactKey, f.artifact);
    await store.put(f.manifestKey, manifestBytes(f));
  }
}

beforeAll(async () => {
  env = await createTestEnv('mcache', `mandates:\n${filesMandateYaml('mc-own', 'MC_FILES', { target: 'local' })}`);
  await mkdir(join(env.dir, 'files'), { recursive: true });
  await writeFile(join(env.dir, 'files', 'a.txt'), 'own backup\n');
  const config = await loadConfigOrThrow(env.configPath, { ...testProcessEnv(), MC_FILES: join(env.dir, 'files') });
  for (const t of config.targets) targets.set(t.name, createTarget(t));
  daemon = spawnDaemon(env.configPath, { env: { MC_FILES: join(env.dir, 'files'), BACKER_INTERNAL_LISTING_MAX_AGE_MS: String(BOUND_MS) } });
  socket = join(env.dir, 'data', 'backer.sock');
  await waitForHealth(daemon, socket, 60_000);
}, 90_000);

afterAll(async () => {
  await daemon?.stop();
  for (const t of targets.values()) await t.close();
});

describe.each([
  ['local', localStore],
  ['s3', s3Store],
] as const)('on the %s target', (targetName, makeStore) => {
  it('reports hand edits, deleted and truncated artifacts and deleted manifests exactly as an uncached listing', async () => {
    const store = makeStore();
    const mandate = `mc-${targetName}`;
    const fixtures = [0, 1, 2, 3, 4].map((i) =>
      storedFixture(mandate, `${mandate}-${i}`, Buffer.from(`artifact ${i} `.repeat(i + 1)), new Date(Date.UTC(2026, 5, 1, i)), { name: targetName, type: targetName }),
    );
    await storeAll(store, fixtures);
    await afterBound();
    const [edited, gone, short, forgotten, valid] = fixtures as [StoredFixture, StoredFixture, StoredFixture, StoredFixture, StoredFixture];
    expect((await compare(targetName)).total).toBe(5);
    expect((await compare(targetName)).problems).toEqual([]); // warm

    // A valid edit (same size) is seen; then an edit that breaks the manifest.
    edited.manifest.backer_version = '0.0.0-EDIT';
    await store.put(edited.manifestKey, manifestBytes(edited));
    await afterBound();
    expect((await compare(targetName)).backups.find((m) => m.name === edited.name)?.backer_version).toBe('0.0.0-EDIT');
    await store.put(edited.manifestKey, Buffer.from(manifestBytes(edited).toString().replace(`"mandate": "${mandate}"`, '"mandate": "elsewhere"')));
    await store.remove(gone.artifactKey);
    await store.put(short.artifactKey, short.artifact.subarray(0, 4));
    await store.remove(forgotten.manifestKey);
    await afterBound();

    const page = await compare(targetName);
    expect(page.backups.map((m) => m.name)).toEqual([valid.name]);
    expect(page.problems.map((p) => p.message)).toEqual([
      `${targetName}: ${edited.manifestKey}: manifest describes elsewhere/${edited.name}, not the backup its key names`,
      `${targetName}: ${gone.manifestKey}: artifact ${gone.artifactKey} is missing (deleted by hand? \`backer backups forget ${gone.name}\` removes this manifest)`,
      `${targetName}: ${short.manifestKey}: artifact ${short.artifactKey} has 4 bytes, the manifest says ${short.artifact.length}`,
    ]);
    expect(page.problems[1]?.dangling).toMatchObject({ name: gone.name, uuid: gone.manifest.uuid, artifact_key: gone.artifactKey });
    expect(await compare(targetName)).toEqual(page); // warm again: same verdicts

    // Repaired by hand: seen at once as well.
    await store.put(short.artifactKey, short.artifact);
    await afterBound();
    expect((await compare(targetName)).backups.map((m) => m.name)).toEqual([valid.name, short.name]);
    const health = await jsonRequest<{ status: string }>(socket, 'GET', '/v1/health');
    expect(health.body.status).toBe('ok');
  });

  it('reads no manifest on a warm listing and only the changed one after an edit', async () => {
    const store = makeStore();
    const mandate = `mr-${targetName}`;
    const fixtures = [0, 1, 2].map((i) => storedFixture(mandate, `${mandate}-${i}`, Buffer.from(`r${i}`), new Date(Date.UTC(2026, 6, 1, i)), { name: targetName, type: targetName }));
    await storeAll(store, fixtures);
    const inner = targets.get(targetName) as Target;
    const reads: string[] = [];
    const counted: Target = { ...inner, read: (key) => (reads.push(key), inner.read(key)) };
    expect((await listBackups(counted, mandate)).backups).toHaveLength(3);
    expect(reads).toHaveLength(3);
    reads.length = 0;
    expect((await listBackups(counted, mandate)).backups).toHaveLength(3);
    expect(reads).toEqual([]);
    const changed = fixtures[1] as StoredFixture;
    changed.manifest.backer_version = '0.0.0-ANEW';
    await store.put(changed.manifestKey, manifestBytes(changed));
    const listing = await listBackups(counted, mandate);
    expect(reads).toEqual([changed.manifestKey]);
    expect(listing.backups.find((b) => b.manifest.name === changed.name)?.manifest.backer_version).toBe('0.0.0-ANEW');
  });
});

describe('writes and removals through the daemon', () => {
  it('are in the very next listing, whatever the bound', async () => {
    await compare('local'); // the index exists and is fresh
    const queued = await jsonRequest<{ job: { id: string } }>(socket, 'POST', '/v1/mandates/mc-own/backups');
    expect(queued.status).toBe(202);
    const done = await jsonRequest<{ job: { state: string; result: { name: string } | null } }>(socket, 'GET', `/v1/jobs/${queued.body.job.id}?wait=60`);
    expect(done.body.job.state).toBe('succeeded');
    const name = done.body.job.result?.name ?? '';
    const page = await compare('local');
    expect(page.backups.map((m) => m.name)).toContain(name);

    // Removed through the daemon (forget refuses while the artifact is there): the artifact by hand, then forget.
    const artifact = page.backups.find((m) => m.name === name)?.artifact.key ?? '';
    await localStore().remove(artifact);
    const forgot = await jsonRequest(socket, 'DELETE', `/v1/backups/${name}?target=local`);
    expect(forgot.status).toBe(200);
    const after = await compare('local');
    expect(after.backups.map((m) => m.name)).not.toContain(name);
    expect(after.problems.filter((p) => p.key.includes(name))).toEqual([]);
  });
});
