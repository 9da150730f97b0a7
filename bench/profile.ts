/**
 * CPU profile of one backup: a generated MariaDB database (default ~1 GiB of dump) through gzip +
 * ccrypt to S3 (s3rver, the target's default part size and queue) in one `--once` process
 * (bench/run-once.ts) under `node --cpu-prof`, then a summary of where the time goes
 * (bench/profile-summary.ts). One profile per thread is written (hash workers included).
 *
 *   node --import tsx bench/profile.ts [--size-mb 1024] [--keep DIR]
 *
 * Needs what ./scripts/install-deps installs; starts its own dockerd and s3rver and stops them.
 */
import { spawn } from 'node:child_process';
import { cp, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { buildHostImage, docker, startDockerd, startS3 } from '../test/setup/services.js';
import { startMariaDb } from '../test/helpers/mariadb.js';
import { generate } from './lib/mariadb-data.js';
import { summariseFiles } from './profile-summary.js';

const { values } = parseArgs({ options: { 'size-mb': { type: 'string', default: '1024' }, keep: { type: 'string' } } });
const SIZE_MB = Number(values['size-mb']);
const KEY = 'bench-key-not-secret';

async function run(args: string[], env: Record<string, string>): Promise<number> {
  const start = process.hrtime.bigint();
  const child = spawn(process.execPath, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'inherit', 'inherit'] });
  const code = await new Promise<number>((resolve) => child.on('close', (c) => resolve(c ?? -1)));
  if (code !== 0) throw new Error(`run-once exited ${code}`);
  return Number(process.hrtime.bigint() - start) / 1e9;
}

const dir = await mkdtemp(join(tmpdir(), 'bk-profile-'));
const dockerd = await startDockerd();
const s3 = await startS3();
try {
  await buildHostImage(dockerd.host);
  const client = new S3Client({ endpoint: s3.endpoint, region: s3.region, forcePathStyle: true, credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey } });
  await client.send(new CreateBucketCommand({ Bucket: 'bench' }));
  client.destroy();
  const configPath = join(dir, 'backer.yml');
  await writeFile(
    configPath,
    `data_dir: ${dir}/data
log: { level: warn }
docker: { socket_path: ${dockerd.socketPath} }
targets:
  - { name: s3, type: s3, bucket: bench, endpoint: "${s3.endpoint}", force_path_style: true, access_key_id: ${s3.accessKeyId}, secret_access_key: ${s3.secretAccessKey} }
middleware:
  - { name: compression, type: gzip, level: 6 }
  - { name: encryption, type: ccrypt, key: "\${BENCH_KEY}" }
`,
  );
  const name = `profile-${SIZE_MB}`;
  await startMariaDb(dockerd.host, {
    name,
    labels: { 'backer.enabled': 'true', 'backer.type': 'mysql', 'backer.middleware': 'compression,encryption', 'backer.mysql.password': 'Env:MYSQL_ROOT_PASSWORD', 'backer.mysql.database': 'bench' },
  });
  process.stderr.write(`generating ~${SIZE_MB} MiB of dump in ${name}…\n`);
  await generate(dockerd.host, name, SIZE_MB);
  const profDir = join(dir, 'prof');
  const load = loadavg().map((l) => l.toFixed(2)).join(' ');
  const seconds = await run(['--cpu-prof', '--cpu-prof-dir', profDir, '--import', 'tsx', join(import.meta.dirname, 'run-once.ts'), configPath, name], { BENCH_KEY: KEY });
  const files = (await readdir(profDir)).filter((f) => f.endsWith('.cpuprofile')).map((f) => join(profDir, f));
  process.stdout.write(`\n${SIZE_MB} MiB MariaDB dump → gzip → ccrypt → S3 (defaults): ${seconds.toFixed(1)} s, load average before: ${load}\n\n`);
  process.stdout.write(`${await summariseFiles(files)}\n`);
  if (values.keep) await cp(profDir, values.keep, { recursive: true });
  await docker(dockerd.host, ['rm', '-f', name]);
} finally {
  await dockerd.stop();
  await s3.stop();
  await rm(dir, { recursive: true, force: true });
}
