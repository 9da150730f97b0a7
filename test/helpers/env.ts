import { execFileSync } from 'node:child_process';
import { mkdtemp, readdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { CreateBucketCommand, ListMultipartUploadsCommand, S3Client } from '@aws-sdk/client-s3';
import { inject } from 'vitest';
import { loadConfigOrThrow } from '../../src/config/load.js';
import { createDaemon, type Daemon } from '../../src/daemon/daemon.js';
import { createLogger, SecretRegistry } from '../../src/logging/logger.js';
import type { BackupResult } from '../../src/pipeline/run-backup.js';
import type { AnyJob, Job, JobEvent } from '../../src/queue/types.js';
import { openStateDb } from '../../src/state/db.js';
import { createSqliteJobStore } from '../../src/state/job-store.js';

export const CCRYPT_KEY = 'correct-horse-battery-staple-42';
export const GPG_PASSPHRASE = 'gpg-test-passphrase-7f3a';

/** A fresh age key pair per test process (age-keygen prints the identity, with the recipient in a comment). */
const ageKey = execFileSync('age-keygen', [], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
export const AGE_IDENTITY = /^AGE-SECRET-KEY-[0-9A-Z]+$/m.exec(ageKey)?.[0] ?? '';
export const AGE_RECIPIENT = /age1[0-9a-z]+/.exec(ageKey)?.[0] ?? '';

export function s3Client(): S3Client {
  const s3 = inject('s3');
  return new S3Client({
    endpoint: s3.endpoint,
    region: s3.region,
    forcePathStyle: true,
    credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
  });
}

export async function createBucket(name: string): Promise<void> {
  const client = s3Client();
  await client.send(new CreateBucketCommand({ Bucket: name }));
  client.destroy();
}

/** The unfinished multipart uploads in a bucket (under `prefix`), every page, through the SDK. */
export async function listUploads(bucket: string, prefix?: string): Promise<{ key: string; uploadId: string }[]> {
  const client = s3Client();
  const out: { key: string; uploadId: string }[] = [];
  try {
    let markers: { KeyMarker?: string; UploadIdMarker?: string } = {};
    for (;;) {
      const page = await client.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: prefix, ...markers }));
      for (const u of page.Uploads ?? []) out.push({ key: u.Key ?? '', uploadId: u.UploadId ?? '' });
      if (page.IsTruncated !== true) return out;
      markers = { KeyMarker: page.NextKeyMarker, UploadIdMarker: page.NextUploadIdMarker };
    }
  } finally {
    client.destroy();
  }
}

export interface TestEnv {
  dir: string;
  configPath: string;
  bucket: string;
  logs: string[];
}

/**
 * A config with a local and an S3 target, gzip and ccrypt middleware, pointing at the private
 * Docker engine (or with Docker discovery off: `docker: false`, for a daemon that must see only its
 * own static mandates, not the labelled containers of other test files on the shared engine).
 * `extra` is appended to the YAML (e.g. static mandates).
 */
export async function createTestEnv(label: string, extra = '', extraTargets = '', options: { docker?: boolean } = {}): Promise<TestEnv> {
  const dir = await mkdtemp(join(tmpdir(), `bk-${label}-`));
  const bucket = `bk-${label}-${Math.random().toString(36).slice(2, 8)}`.toLowerCase();
  await createBucket(bucket);
  const s3 = inject('s3');
  const yaml = `
data_dir: ${dir}/data
log:
  level: debug
docker:
  ${options.docker === false ? 'enabled: false' : `socket_path: ${inject('dockerHost').replace(/^unix:\/\//, '')}`}
queue:
  concurrency: 2
targets:
  - name: local
    type: local
    path: ${dir}/backups
    default: true
  - name: s3
    type: s3
    bucket: ${bucket}
    prefix: backer/
    endpoint: ${s3.endpoint}
    region: ${s3.region}
    force_path_style: true
    access_key_id: ${s3.accessKeyId}
    secret_access_key: \${TEST_S3_SECRET}
    part_size_mb: 5
${extraTargets}
middleware:
  - name: compression
    type: gzip
    level: 6
  - name: encryption
    type: ccrypt
    key: \${TEST_CCRYPT_KEY}
  - name: zstd
    type: zstd
    level: 3
  - name: gpg
    type: gpg
    passphrase: \${TEST_GPG_PASSPHRASE}
  - name: age
    type: age
    recipients: [${AGE_RECIPIENT}]
${extra}`;
  const configPath = join(dir, 'backer.yml');
  await writeFile(configPath, yaml);
  return { dir, configPath, bucket, logs: [] };
}

/**
 * One static `files` mandate, as an entry under `mandates:`, archiving the directory named by the
 * environment variable `pathVar` (set it in the daemon's or the CLI's environment). Its schedule
 * never fires during a test run: backups are triggered by the tests.
 */
export function filesMandateYaml(name: string, pathVar: string, options: { target: string; middleware?: string }): string {
  const middleware = options.middleware === undefined ? '' : `    middleware: ${options.middleware}\n`;
  return `  ${name}:\n    type: files\n    interval: "0 0 29 2 *"\n    target: ${options.target}\n${middleware}    files:\n      path: \${${pathVar}}\n`;
}

export function testProcessEnv(): Record<string, string> {
  return { ...(process.env as Record<string, string>), TEST_S3_SECRET: inject('s3').secretAccessKey, TEST_CCRYPT_KEY: CCRYPT_KEY, TEST_GPG_PASSPHRASE: GPG_PASSPHRASE };
}

/** An in-process daemon whose log lines are captured in env.logs. */
export async function startDaemon(env: TestEnv): Promise<Daemon> {
  const config = await loadConfigOrThrow(env.configPath, testProcessEnv());
  const secrets = new SecretRegistry();
  const destination = new Writable({
    write(chunk: Buffer, _enc, cb) {
      env.logs.push(chunk.toString());
      cb();
    },
  });
  const logger = createLogger({ level: 'debug', secrets, destination });
  // Tests trigger every backup themselves: a cron firing mid-run (say at midnight) would add
  // backups that assertions do not expect.
  const daemon = createDaemon({ config, configFile: env.configPath, logger, secrets, schedulesPaused: true });
  await daemon.start();
  return daemon;
}

/** Runs one backup of an existing mandate through other middleware than its labels say. */
export async function backupThrough(daemon: Daemon, mandate: string, middleware: string[]): Promise<BackupResult> {
  await daemon.services.discovery.refresh();
  return daemon.services.backup(mandate, new AbortController().signal, { middleware });
}

export const TEST_KEYS = { ccrypt: CCRYPT_KEY, gpgPassphrase: GPG_PASSPHRASE, ageIdentity: AGE_IDENTITY };

/** Triggers a backup through the daemon's queue, as the API does, and waits for the job. */
export async function backupNow(daemon: Daemon, mandate: string): Promise<Job<BackupResult>> {
  await daemon.services.discovery.refresh();
  return backupJob(await daemon.queue.wait(daemon.queue.enqueue(mandate, 'api').id));
}

/** A backup job, typed as one: its result is a BackupResult. */
export function backupJob(job: AnyJob): Job<BackupResult> {
  if (job.kind !== 'backup') throw new Error(`job ${job.id} is a ${job.kind} job, not a backup`);
  return job as Job<BackupResult>;
}

/** File names under the local target's folder of one mandate (none when it does not exist). */
export async function localFiles(env: TestEnv, mandate: string): Promise<string[]> {
  return readdir(join(env.dir, 'backups', mandate)).catch(() => []);
}

/** The jobs and history a closed daemon left in its data_dir's state.db (read through a fresh store). */
export function storedJob(dataDir: string, id: string): { job: AnyJob | undefined; events: JobEvent[] } {
  const state = openStateDb(dataDir, createLogger({ level: 'error', secrets: new SecretRegistry() }));
  try {
    const store = createSqliteJobStore(state);
    return { job: store.get(id), events: store.events(id) };
  } finally {
    state.close();
  }
}
