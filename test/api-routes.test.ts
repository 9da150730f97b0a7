/**
 * The API's backup, mandate and target routes against a real `backer daemon` process (unix socket),
 * real local and S3 (s3rver) targets and static files mandates: paging and filters, manifests,
 * downloads byte-equal to the stored artifact (and a client that goes away mid-download), forget
 * refused and done, mandate status and last backup, target usage, health and settings.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, readlink, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { Manifest } from '../src/manifests/schema.js';
import type { ManifestProblem } from '../src/manifests/store.js';
import type { AnyJob } from '../src/queue/types.js';
import type { MandateHealth } from '../src/status/types.js';
import { cli } from './helpers/cli.js';
import { spawnDaemon, waitForHealth, type DaemonProcess } from './helpers/daemon-proc.js';
import { createTestEnv, filesMandateYaml, s3Client, type TestEnv } from './helpers/env.js';
import { jsonRequest, openRequest, rawRequest } from './helpers/socket-http.js';

const ID = randomBytes(3).toString('hex');
/** This file's mandates (the engine is shared: other files' labelled containers are discovered too). */
const ours = (name: string): boolean => name.startsWith('ar-') && name.endsWith(`-${ID}`);
const TWO = `ar-two-${ID}`; // local and S3, gzip
const ONE = `ar-one-${ID}`; // local only
const BIG = `ar-big-${ID}`; // local only, 24 MiB of random bytes: a download that cannot fit in socket buffers
const IDLE = `ar-idle-${ID}`; // never backed up
const FAIL = `ar-fail-${ID}`; // its directory does not exist: every backup fails
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const LISTING_BOUND_MS = 1000;

interface BackupPage {
  backups: Manifest[];
  total: number;
  limit: number;
  offset: number;
  problems: ManifestProblem[];
}
interface ErrorBody {
  error: { code: string; message: string };
}

let env: TestEnv;
let daemon: DaemonProcess;
let socket: string;
const dirs: Record<string, string> = {};

const get = async <T>(path: string, status = 200): Promise<T> => {
  const r = await jsonRequest<T>(socket, 'GET', path);
  expect(r.status, JSON.stringify(r.body)).toBe(status);
  return r.body;
};

async function stillAnswers(): Promise<void> {
  expect(await get<{ status: string }>('/v1/health')).toMatchObject({ status: 'ok' });
  // Labelled containers of other test files (one engine) are mandates here too: count ours.
  expect((await get<{ mandates: { name: string }[] }>('/v1/mandates')).mandates.filter((m) => ours(m.name))).toHaveLength(5);
}

async function backup(mandate: string, state: AnyJob['state'] = 'succeeded'): Promise<AnyJob> {
  const queued = await jsonRequest<{ job: AnyJob }>(socket, 'POST', `/v1/mandates/${mandate}/backups`);
  expect(queued.status).toBe(202);
  const done = await get<{ job: AnyJob }>(`/v1/jobs/${queued.body.job.id}?wait=120`);
  expect(done.job.state, JSON.stringify(done.job.error)).toBe(state);
  return done.job;
}

const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex');

async function s3Object(key: string): Promise<Buffer> {
  const client = s3Client();
  try {
    const out = await client.send(new GetObjectCommand({ Bucket: env.bucket, Key: `backer/${key}` }));
    return Buffer.from((await out.Body?.transformToByteArray()) ?? []);
  } finally {
    client.destroy();
  }
}

/** The files the daemon process has open under `dir`. */
async function openFilesUnder(dir: string): Promise<string[]> {
  const fdDir = `/proc/${daemon.child.pid ?? 0}/fd`;
  const links = await Promise.all((await readdir(fdDir)).map((fd) => readlink(join(fdDir, fd)).catch(() => '')));
  return links.filter((l) => l.startsWith(dir));
}

beforeAll(async () => {
  for (const [name, content] of [
    ['AR_TWO_DIR', 'two\n'.repeat(2000)],
    ['AR_ONE_DIR', 'one\n'],
    ['AR_BIG_DIR', randomBytes(24 * 1024 * 1024)],
    ['AR_IDLE_DIR', 'idle\n'],
  ] as const) {
    const dir = await mkdtemp(join(tmpdir(), `${name.toLowerCase()}-`));
    await writeFile(join(dir, 'data'), content);
    dirs[name] = dir;
  }
  const mandates = [
    filesMandateYaml(TWO, 'AR_TWO_DIR', { target: '[local, s3]', middleware: 'compression' }),
    filesMandateYaml(ONE, 'AR_ONE_DIR', { target: 'local' }),
    filesMandateYaml(BIG, 'AR_BIG_DIR', { target: 'local' }),
    filesMandateYaml(IDLE, 'AR_IDLE_DIR', { target: 'local' }),
    filesMandateYaml(FAIL, 'AR_FAIL_DIR', { target: 'local' }),
  ].join('');
  env = await createTestEnv('api-routes', `mandates:\n${mandates}`);
  socket = join(env.dir, 'data', 'backer.sock');
  dirs.AR_FAIL_DIR = join(env.dir, 'missing');
  // A short listing bound (README "Manifest cache and listing index", 60 s by default): the test waits it out after a change by hand.
  daemon = spawnDaemon(env.configPath, { env: { ...dirs, BACKER_INTERNAL_LISTING_MAX_AGE_MS: String(LISTING_BOUND_MS) } });
  await waitForHealth(daemon, socket, 60_000);
  // Names hold the second: one backup of a mandate per second.
  for (let i = 0; i < 3; i++) {
    await backup(TWO);
    await sleep(1100);
  }
  await backup(ONE);
  await backup(BIG);
  const failed = await backup(FAIL, 'failed');
  expect(failed.error).toMatchObject({ code: 'DUMP_FAILED', message: expect.stringContaining(`cannot read ${join(env.dir, 'missing')}`) as unknown });
}, 240_000);

afterAll(async () => {
  expect(await daemon.stop()).toBe(0);
  await Promise.all(Object.values(dirs).map((d) => rm(d, { recursive: true, force: true })));
});

describe('GET /v1/backups', () => {
  it('pages newest first with a total, and filters by mandate, target and time', async () => {
    const all = await get<BackupPage>('/v1/backups');
    expect(all).toMatchObject({ total: 8, limit: 50, offset: 0, problems: [] });
    const created = all.backups.map((b) => b.created_at);
    expect(created).toEqual([...created].sort().reverse());
    expect(all.backups.filter((b) => b.target.name === 's3').map((b) => b.mandate)).toEqual([TWO, TWO, TWO]);

    const first = await get<BackupPage>('/v1/backups?limit=3');
    const second = await get<BackupPage>('/v1/backups?limit=3&offset=3');
    const last = await get<BackupPage>('/v1/backups?limit=3&offset=6');
    expect([first, second, last].map((p) => p.backups.length)).toEqual([3, 3, 2]);
    expect([...first.backups, ...second.backups, ...last.backups]).toEqual(all.backups);
    expect((await get<BackupPage>('/v1/backups?offset=8')).backups).toEqual([]);

    const two = await get<BackupPage>(`/v1/backups?mandate=${TWO}`);
    expect(two.total).toBe(6);
    const twoOnS3 = await get<BackupPage>(`/v1/backups?mandate=${TWO}&target=s3`);
    expect(twoOnS3.total).toBe(3);
    expect(twoOnS3.backups.every((b) => b.target.name === 's3' && b.mandate === TWO)).toBe(true);
    expect((await get<BackupPage>('/v1/backups?target=local')).total).toBe(5);

    // The middle backup of TWO: since is inclusive, until exclusive.
    const times = [...new Set(two.backups.map((b) => b.created_at))].sort();
    expect(times).toHaveLength(3);
    const [t0, t1, t2] = times as [string, string, string];
    const window = await get<BackupPage>(`/v1/backups?mandate=${TWO}&since=${encodeURIComponent(t1)}&until=${encodeURIComponent(t2)}`);
    expect(window.backups.map((b) => b.created_at)).toEqual([t1, t1]);
    expect((await get<BackupPage>(`/v1/backups?mandate=${TWO}&until=${encodeURIComponent(t1)}`)).backups.map((b) => b.created_at)).toEqual([t0, t0]);
  });

  it('answers 400 naming a bad query parameter, 404 for an unknown target', async () => {
    const cases: [string, string][] = [
      ['limit=0', 'limit'],
      ['limit=501', 'limit'],
      ['limit=ten', 'limit'],
      ['offset=-1', 'offset'],
      ['since=yesterday', 'since'],
      ['until=2026-13-01', 'until'],
      ['mandate=', 'mandate'],
      ['colour=blue', 'colour'],
    ];
    for (const [query, parameter] of cases) {
      const r = await jsonRequest<ErrorBody>(socket, 'GET', `/v1/backups?${query}`);
      expect(r.status, query).toBe(400);
      expect(r.body.error.code).toBe('API_BAD_REQUEST');
      expect(r.body.error.message, query).toMatch(new RegExp(`parameter ${parameter}\\b`));
    }
    const page = await jsonRequest<ErrorBody>(socket, 'GET', `/v1/mandates/${TWO}/backups?limit=900`);
    expect(page.status).toBe(400);
    expect(page.body.error.message).toContain('query parameter limit: must be at most 500');
    const unknown = await jsonRequest<ErrorBody>(socket, 'GET', '/v1/backups?target=nas');
    expect(unknown.status).toBe(404);
    expect(unknown.body.error).toEqual({ code: 'TARGET_NOT_FOUND', message: 'no target named nas; known: local, s3' });
    await stillAnswers();
  });
});

describe('GET /v1/backups/{name}', () => {
  it('answers the manifest of each copy, by name or by uuid, on one target with ?target=', async () => {
    const newest = (await get<BackupPage>(`/v1/backups?mandate=${TWO}&target=s3&limit=1`)).backups[0] as Manifest;
    const both = await get<{ manifests: Manifest[] }>(`/v1/backups/${newest.name}`);
    expect(both.manifests.map((m) => m.target.name).sort()).toEqual(['local', 's3']);
    expect(both.manifests.every((m) => m.name === newest.name && m.mandate === TWO)).toBe(true);
    // One backup, one uuid, whatever the number of targets it went to.
    expect((await get<{ manifests: Manifest[] }>(`/v1/backups/${newest.uuid}`)).manifests).toEqual(both.manifests);
    expect((await get<{ manifests: Manifest[] }>(`/v1/backups/${newest.uuid}?target=s3`)).manifests).toEqual([newest]);
    expect((await get<{ manifests: Manifest[] }>(`/v1/backups/${newest.name}?target=s3`)).manifests).toEqual([newest]);
    const missing = await jsonRequest<ErrorBody>(socket, 'GET', '/v1/backups/no-such-backup');
    expect(missing.status).toBe(404);
    expect(missing.body.error.code).toBe('BACKUP_NOT_FOUND');
  });
});

describe('GET /v1/backups/{name}/download', () => {
  it('streams the artifact exactly as stored on local and on S3, and audit-logs it', async () => {
    const name = ((await get<BackupPage>(`/v1/backups?mandate=${TWO}&limit=1`)).backups[0] as Manifest).name;
    const ambiguous = await jsonRequest<ErrorBody>(socket, 'GET', `/v1/backups/${name}/download`);
    expect(ambiguous.status).toBe(400);
    expect(ambiguous.body.error.message).toBe(`backup ${name} is on the targets local, s3: choose one with ?target=`);

    for (const target of ['local', 's3']) {
      const manifest = (await get<{ manifests: Manifest[] }>(`/v1/backups/${name}?target=${target}`)).manifests[0] as Manifest;
      const stored = target === 'local' ? await readFile(join(env.dir, 'backups', manifest.artifact.key)) : await s3Object(manifest.artifact.key);
      const r = await rawRequest(socket, 'GET', `/v1/backups/${name}/download?target=${target}`);
      expect(r.status, r.body.toString()).toBe(200);
      expect(r.headers['content-type']).toBe('application/octet-stream');
      expect(r.headers['content-length']).toBe(String(manifest.artifact.size));
      expect(r.headers['content-disposition']).toContain(`filename="${manifest.artifact.key.split('/').pop() ?? ''}"`);
      expect(r.body.equals(stored)).toBe(true);
      expect(sha256(r.body)).toBe(manifest.artifact.sha256);
      // gzip's magic: the artifact after middleware, not the decoded dump.
      expect([...r.body.subarray(0, 2)]).toEqual([0x1f, 0x8b]);
    }
    const audits = daemon
      .output()
      .split('\n')
      .filter((l) => l.includes('"action":"backup.download"'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(audits.map((a) => a.target)).toEqual(['local', 's3']);
    expect(audits[0]).toMatchObject({ audit: true, token: 'socket', backup: name, mandate: TWO });
  });

  it('releases the artifact when the client goes away mid-stream; the daemon still answers', async () => {
    const manifest = (await get<BackupPage>(`/v1/backups?mandate=${BIG}`)).backups[0] as Manifest;
    expect(manifest.artifact.size).toBeGreaterThan(24 * 1024 * 1024);
    const artifact = join(env.dir, 'backups', manifest.artifact.key);
    for (let round = 0; round < 3; round++) {
      const { res, abort } = await openRequest(socket, 'GET', `/v1/backups/${manifest.name}/download`);
      expect(res.statusCode).toBe(200);
      await new Promise<void>((resolve) => res.once('data', () => resolve()));
      res.pause();
      expect(await openFilesUnder(artifact)).toEqual([artifact]);
      abort();
      const deadline = Date.now() + 10_000;
      while ((await openFilesUnder(artifact)).length > 0 && Date.now() < deadline) await sleep(100);
      expect(await openFilesUnder(artifact)).toEqual([]);
    }
    await stillAnswers();
    // A whole download still works after the interrupted ones.
    const whole = await rawRequest(socket, 'GET', `/v1/backups/${manifest.uuid}/download`);
    expect(sha256(whole.body)).toBe(manifest.artifact.sha256);
  });
});

describe('mandates', () => {
  it('GET /v1/mandates lists status, health, last backup and next run; the CLI shows them', async () => {
    const list = await get<{ mandates: (Record<string, unknown> & { name: string; status?: string; health?: MandateHealth })[] }>('/v1/mandates');
    const two = list.mandates.find((m) => m.name === TWO);
    const newest = (await get<BackupPage>(`/v1/backups?mandate=${TWO}&target=local&limit=1`)).backups[0] as Manifest;
    expect(two).toMatchObject({ status: 'ok', next_run: expect.stringMatching(/^\d{4}-02-29T00:00:00.000Z$/) as unknown });
    expect(two?.health).toMatchObject({ mandate: TWO, status: 'ok', last_error: null, running: false });
    expect(two?.last_backup).toEqual({ name: newest.name, created_at: expect.any(String) as unknown, raw_bytes: newest.steps[0]?.size, stored_bytes: newest.artifact.size });
    expect(list.mandates.find((m) => m.name === IDLE)).toMatchObject({ status: 'never_succeeded', last_backup: null });
    const failing = list.mandates.find((m) => m.name === FAIL);
    expect(failing).toMatchObject({ status: 'failing', last_backup: null, health: { last_error: { code: 'DUMP_FAILED' } } });
    expect(failing?.health?.reason).toContain(`cannot read ${join(env.dir, 'missing')}`);
    const detail = await get<{ health: MandateHealth }>(`/v1/mandates/${TWO}`);
    expect(detail.health).toMatchObject({ mandate: TWO, status: 'ok' });

    const r = await cli(['mandates', 'list', '--config', env.configPath], dirs);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^NAME\s+TYPE\s+CONTAINER\s+INTERVAL\s+NEXT_RUN\s+NEXT_VERIFY\s+TARGETS\s+LAST_BACKUP\s+AGE\s+STATUS$/m);
    expect(r.stdout).toMatch(new RegExp(`^${TWO}\\s+files\\s+-\\s+0 0 29 2 \\*\\s+\\S+\\s+-\\s+local,s3\\s+${newest.name}\\s+\\d+[sm]\\s+ok$`, 'm'));
    expect(r.stdout).toMatch(new RegExp(`^${IDLE}\\s+.*\\s+local\\s+-\\s+-\\s+never_succeeded$`, 'm'));
    expect(r.stdout).toMatch(new RegExp(`^${FAIL}\\s+.*\\s+local\\s+-\\s+-\\s+failing: .*cannot read ${join(env.dir, 'missing')}`, 'm'));
  });

  it("GET /v1/mandates/{name}/backups pages the mandate's backups on every target", async () => {
    const page = await get<BackupPage>(`/v1/mandates/${TWO}/backups?limit=4`);
    expect(page).toMatchObject({ total: 6, limit: 4, offset: 0 });
    expect(page.backups).toEqual((await get<BackupPage>(`/v1/backups?mandate=${TWO}&limit=4`)).backups);
    expect((await get<BackupPage>(`/v1/mandates/${TWO}/backups?target=s3`)).total).toBe(3);
    expect((await get<BackupPage>(`/v1/mandates/${IDLE}/backups`)).backups).toEqual([]);
    const unknown = await jsonRequest<ErrorBody>(socket, 'GET', '/v1/mandates/nobody/backups');
    expect(unknown.status).toBe(404);
    expect(unknown.body.error.code).toBe('MANDATE_NOT_FOUND');
  });
});

interface TargetJson {
  name: string;
  type: string;
  default: boolean;
  usage: { backups: number; bytes: number; problems: number } | null;
  health: { healthy: boolean; error: unknown; checked_at: string | null };
  settings: Record<string, unknown>;
}

describe('targets', () => {
  it('GET /v1/targets: usage after the backups, health, settings without the secret key', async () => {
    const bytes = async (target: string): Promise<number> => (await get<BackupPage>(`/v1/backups?target=${target}`)).backups.reduce((s, b) => s + b.artifact.size, 0);
    const expected = { local: { backups: 5, bytes: await bytes('local'), problems: 0 }, s3: { backups: 3, bytes: await bytes('s3'), problems: 0 } };
    // The usage monitor reads each target again after a job that wrote to it.
    let targets: TargetJson[] = [];
    for (let i = 0; i < 100; i++) {
      targets = (await get<{ targets: TargetJson[] }>('/v1/targets')).targets;
      if (targets.every((t) => JSON.stringify(t.usage) === JSON.stringify(expected[t.name as 'local' | 's3']))) break;
      await sleep(200);
    }
    const [local, s3] = targets;
    expect(local).toMatchObject({ name: 'local', type: 'local', default: true, usage: expected.local, health: { healthy: true, error: null } });
    expect(local?.settings).toEqual({ path: join(env.dir, 'backups') });
    expect(s3).toMatchObject({ name: 's3', type: 's3', default: false, usage: expected.s3, health: { healthy: true, error: null } });
    expect(s3?.health.checked_at).toMatch(/^\d{4}-\d\d-\d\dT/);
    // s3rver's key id is its secret key too, so the scrubber hides it like every other secret.
    expect(inject('s3').accessKeyId).toBe(inject('s3').secretAccessKey);
    expect(s3?.settings).toEqual({
      bucket: env.bucket,
      prefix: 'backer/',
      endpoint: inject('s3').endpoint,
      region: inject('s3').region,
      force_path_style: true,
      access_key_id: '[REDACTED]',
      part_size_mb: 5,
      queue_size: 2,
    });
    expect(s3?.settings).not.toHaveProperty('secret_access_key');
    const raw = await rawRequest(socket, 'GET', '/v1/targets/s3');
    expect(raw.body.toString()).not.toContain(inject('s3').secretAccessKey);
  });

  it('GET /v1/targets/{name} names the mandates that write to it; /backups pages its backups', async () => {
    const s3 = await get<{ target: TargetJson; mandates: string[] }>('/v1/targets/s3');
    // Other test files' labelled containers (same engine) may name these targets too: only ours count.
    expect(s3.mandates.filter(ours)).toEqual([TWO]);
    expect(s3.target.name).toBe('s3');
    const local = await get<{ mandates: string[] }>('/v1/targets/local');
    expect(local.mandates.filter(ours)).toEqual([BIG, FAIL, IDLE, ONE, TWO].sort());
    const page = await get<BackupPage>(`/v1/targets/local/backups?mandate=${ONE}`);
    expect(page.total).toBe(1);
    expect(page.backups[0]).toMatchObject({ mandate: ONE, target: { name: 'local', type: 'local' } });
    expect((await get<BackupPage>('/v1/targets/s3/backups?limit=2')).backups).toHaveLength(2);
    for (const path of ['/v1/targets/nas', '/v1/targets/nas/backups']) {
      const r = await jsonRequest<ErrorBody>(socket, 'GET', path);
      expect(r.status).toBe(404);
      expect(r.body.error.code).toBe('TARGET_NOT_FOUND');
    }
    const bad = await jsonRequest<ErrorBody>(socket, 'GET', '/v1/targets/local/backups?since=soon');
    expect(bad.status).toBe(400);
    expect(bad.body.error.message).toMatch(/^query parameter since: /);
  });
});

describe('DELETE /v1/backups/{name}', () => {
  it('refuses while the artifact is present (409), forgets a copy whose artifact was deleted by hand', async () => {
    const oldest = (await get<BackupPage>(`/v1/backups?mandate=${TWO}&target=local`)).backups[2] as Manifest;
    const refused = await jsonRequest<ErrorBody>(socket, 'DELETE', `/v1/backups/${oldest.name}`);
    expect(refused.status).toBe(409);
    expect(refused.body.error.code).toBe('FORGET_REFUSED');
    expect(refused.body.error.message).toContain(`refusing to forget ${oldest.name}: its artifact is present`);
    expect((await get<BackupPage>(`/v1/backups?mandate=${TWO}`)).total).toBe(6);

    await rm(join(env.dir, 'backups', oldest.artifact.key));
    await sleep(LISTING_BOUND_MS + 200);
    const broken = await get<BackupPage>(`/v1/backups?mandate=${TWO}`);
    expect(broken.total).toBe(5);
    expect(broken.problems.map((p) => p.dangling?.name)).toEqual([oldest.name]);

    const forgotten = await jsonRequest<{ forgotten: { target: string; key: string }[]; kept: { target: string; key: string }[] }>(socket, 'DELETE', `/v1/backups/${oldest.name}`);
    expect(forgotten.status, JSON.stringify(forgotten.body)).toBe(200);
    expect(forgotten.body.forgotten).toEqual([{ target: 'local', key: `${TWO}/${oldest.name}.manifest.json`, name: oldest.name, uuid: oldest.uuid, artifact_key: oldest.artifact.key }]);
    expect(forgotten.body.kept).toEqual([{ target: 's3', key: `${TWO}/${oldest.name}.manifest.json` }]);
    const clean = await get<BackupPage>(`/v1/backups?mandate=${TWO}`);
    expect(clean).toMatchObject({ total: 5, problems: [] });
    expect(daemon.output()).toMatch(/"action":"backup.forget".*"token":"socket"/);

    const again = await jsonRequest<ErrorBody>(socket, 'DELETE', `/v1/backups/${oldest.name}?target=local`);
    expect(again.status).toBe(404);
    expect(again.body.error.code).toBe('BACKUP_NOT_FOUND');
    await stillAnswers();
  });
});
