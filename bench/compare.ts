/**
 * Benchmarks 1–6 of issue 11, interleaved, each figure as a ratio to its baseline measured in the
 * same run on the same data: backup to a local target, to S3, with zstd + age, fan-out, restore,
 * and start-up (see bench/README.md). Starts its own dockerd and s3rver and stops them.
 *
 *   npm run bench:compare -- --size-mb 100 --size-mb 1024 --rounds 3
 *   options: --size-mb N (repeatable, default 100), --rounds N (default 3), --startup-rounds N
 *            (default 5), --backer built|tsx (default built: tsc into a private dir, then node),
 *            --only all|restore|N[,N…] (default all; restore: benchmark 5 alone, after one untimed
 *            backup; numbers: those of benchmarks 1–4 alone, e.g. `--only 3`, without start-up and restore)
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parseArgs } from 'node:util';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { buildHostImage, startDockerd, startS3, type DockerService, type S3Service } from '../test/setup/services.js';
import { prepareBacker, type BackerBuild } from './lib/backer.js';
import { runBackups } from './lib/backup-runs.js';
import type { Env } from './lib/configs.js';
import { generate, removeContainers, startDatabase } from './lib/mariadb-data.js';
import { printBackups, printRestores, printStartup } from './lib/report.js';
import { localArtifactOnce, runRestores } from './lib/restore-runs.js';
import { runStartup } from './lib/startup-runs.js';

const exec = promisify(execFile);
const { values } = parseArgs({
  options: {
    'size-mb': { type: 'string', multiple: true, default: ['100'] },
    rounds: { type: 'string', default: '3' },
    'startup-rounds': { type: 'string', default: '5' },
    backer: { type: 'string', default: 'built' },
    only: { type: 'string', default: 'all' },
  },
});
const SIZES = values['size-mb'].map(Number).filter((n) => n > 0);
const ROUNDS = Number(values.rounds);
const STARTUP_ROUNDS = Number(values['startup-rounds']);
if (values.backer !== 'built' && values.backer !== 'tsx') throw new Error('--backer is built or tsx');
if (values.only !== 'all' && values.only !== 'restore' && !/^[1-4](,[1-4])*$/.test(values.only)) throw new Error('--only is all, restore or benchmark numbers 1–4 (e.g. 3 or 1,3)');
const ONLY_RESTORE = values.only === 'restore';
/** Benchmarks 1–4 to run alone (no start-up, no restore), or undefined. */
const ONLY_BACKUPS = /^\d/.test(values.only) ? values.only.split(',') : undefined;
const log = (text: string): void => void process.stderr.write(`${text}\n`);

async function ageRecipient(dir: string): Promise<string> {
  const keyFile = join(dir, 'age.key');
  await exec('age-keygen', ['-o', keyFile]);
  const match = /# public key: (age1\w+)/.exec(await readFile(keyFile, 'utf8'));
  if (!match?.[1]) throw new Error('age-keygen wrote no public key');
  return match[1];
}

async function benchSize(env: Env, backer: BackerBuild, dockerd: DockerService, sizeMb: number): Promise<void> {
  const source = `bench-${sizeMb}`;
  const destination = `bench-${sizeMb}-restored`;
  await startDatabase(dockerd.host, source);
  await startDatabase(dockerd.host, destination);
  try {
    log(`generating ~${sizeMb} MiB of dump in ${source}…`);
    await generate(dockerd.host, source, sizeMb);
    if (ONLY_RESTORE) {
      // Benchmark 5 alone: one untimed backup for the artifact.
      const once = await localArtifactOnce(env, backer, source);
      const restores = await runRestores(backer, { dockerHost: dockerd.host, dir: env.dir, source, destination, config: once.config, artifact: once.artifact }, ROUNDS, log);
      printRestores(`${sizeMb} MiB asked`, restores, once.rawMiB, ROUNDS);
      return;
    }
    const backups = await runBackups(env, backer, source, ROUNDS, log, ONLY_BACKUPS);
    printBackups(`${sizeMb} MiB asked`, backups.samples, backups.rawMiB, ROUNDS);
    if (ONLY_BACKUPS) return;
    const restores = await runRestores(backer, { dockerHost: dockerd.host, dir: env.dir, source, destination, config: backups.configs.local, artifact: backups.localArtifact }, ROUNDS, log);
    printRestores(`${sizeMb} MiB asked`, restores, backups.rawMiB, ROUNDS);
  } finally {
    await removeContainers(dockerd.host, [source, destination]);
  }
}

async function createBucket(s3: S3Service): Promise<void> {
  const client = new S3Client({ endpoint: s3.endpoint, region: s3.region, forcePathStyle: true, credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey } });
  await client.send(new CreateBucketCommand({ Bucket: 'bench' }));
  client.destroy();
}

async function main(): Promise<void> {
  if (!ONLY_RESTORE && !existsSync('/usr/bin/aws')) throw new Error("benchmark 2 needs Debian's awscli at /usr/bin/aws: run ./scripts/install-deps --bench");
  const dir = await mkdtemp(join(tmpdir(), 'bk-compare-'));
  const backer = await prepareBacker(values.backer === 'tsx' ? 'tsx' : 'built');
  const dockerd = await startDockerd();
  const s3 = await startS3();
  process.env.DOCKER_HOST = dockerd.host;
  // dockerd runs in its own process group: a bench stopped with Ctrl-C or kill still stops it.
  const stop = (): void => void dockerd.stop().finally(() => process.exit(130));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    await buildHostImage(dockerd.host);
    await createBucket(s3);
    const env: Env = { dir, dockerSocket: dockerd.socketPath, s3, ageRecipient: await ageRecipient(dir) };
    const { stdout: commit } = await exec('git', ['rev-parse', '--short', 'HEAD'], { cwd: join(import.meta.dirname, '..') });
    console.log(`Backer: ${backer.describe}; Node ${process.version}; ${cpus().length} cores; HEAD ${commit.trim()} + working tree; ${new Date().toISOString()}`);
    console.log('Figures: wall seconds, median (min–max) over the rounds; ratio = median / median of the baseline; peak RSS from GNU time (%M)');
    if (!ONLY_RESTORE && !ONLY_BACKUPS) {
      const startup = await runStartup(backer, dir, STARTUP_ROUNDS, log);
      printStartup(startup, STARTUP_ROUNDS);
    }
    for (const sizeMb of SIZES) await benchSize(env, backer, dockerd, sizeMb);
  } finally {
    await dockerd.stop();
    await s3.stop();
    await backer.close();
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
