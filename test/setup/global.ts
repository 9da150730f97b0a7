import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { buildHostImage, commandExists, startDockerd, startS3 } from './services.js';

declare module 'vitest' {
  export interface ProvidedContext {
    dockerHost: string;
    s3: { endpoint: string; region: string; accessKeyId: string; secretAccessKey: string };
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const missing: string[] = [];
  for (const cmd of ['dockerd', 'docker', 'ccrypt', 'mariadbd', 'mariadb-dump', 'gpg', 'age', 'zstd', 'redis-server', 'redis-cli', 'sqlite3', 'pg_ctlcluster', 'debootstrap']) {
    if (!(await commandExists(cmd))) missing.push(cmd);
  }
  if (missing.length > 0) {
    throw new Error(`tests need ${missing.join(', ')} on this machine: run ./scripts/test (it installs them)`);
  }
  // Every temp dir of this run (test envs, backups, keys) lives below one folder, removed at the end.
  const runDir = await mkdtemp(join(tmpdir(), 'backer-test-'));
  process.env.TMPDIR = runDir;
  const s3 = await startS3();
  const dockerd = await startDockerd();
  await buildHostImage(dockerd.host);
  project.provide('dockerHost', dockerd.host);
  project.provide('s3', { endpoint: s3.endpoint, region: s3.region, accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey });
  return async () => {
    await dockerd.stop();
    await s3.stop();
    await rm(runDir, { recursive: true, force: true });
  };
}
