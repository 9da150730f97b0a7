/**
 * Benchmark: back up a generated MariaDB database through gzip + ccrypt to S3, and compare with
 * the shell pipeline `docker exec … mariadb-dump | gzip | ccrypt > file` doing the same work.
 * Prints wall time, throughput and peak RSS of each. Not a test: figures depend on the machine.
 *
 *   npm run bench -- --size-mb 1024          (default 1024 MiB of dump)
 *   npm run bench -- --size-mb 100 --size-mb 1024   (memory must stay flat as the size grows)
 *
 * Needs what ./scripts/install-deps installs; starts its own dockerd and s3rver and stops them.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { buildHostImage, docker, startDockerd, startS3 } from '../test/setup/services.js';
import { sql, startMariaDb } from '../test/helpers/mariadb.js';

const sizes = process.argv.flatMap((a, i) => (a === '--size-mb' ? [Number(process.argv[i + 1])] : [])).filter((n) => n > 0);
if (sizes.length === 0) sizes.push(1024);
const partIndex = process.argv.indexOf('--part-size-mb');
const partSizeMb = partIndex > 0 ? Number(process.argv[partIndex + 1]) : 16;
const KEY = 'bench-key-not-secret';

interface Run {
  seconds: number;
  peakRssMiB: number;
  /** Size of the raw dump, as the manifest recorded it. */
  rawMiB: number;
}

/** Runs a command and samples its process tree's RSS (VmHWM of the main process at exit). */
async function measure(command: string, args: string[], env: Record<string, string>): Promise<Run> {
  const start = process.hrtime.bigint();
  const child = spawn(command, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  const code = await new Promise<number>((resolve) => child.on('close', (c) => resolve(c ?? -1)));
  if (code !== 0) throw new Error(`${command} exited ${code}: ${out}`);
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  const match = /PEAK_RSS_KB=(\d+)/.exec(out);
  const raw = /RAW_BYTES=(\d+)/.exec(out);
  return { seconds, peakRssMiB: match ? Number(match[1]) / 1024 : NaN, rawMiB: raw ? Number(raw[1]) / 1048576 : NaN };
}

async function generate(host: string, container: string, sizeMb: number): Promise<void> {
  // ~1 KiB per row in the dump.
  const rows = Math.round((sizeMb * 1024 * 1024) / 1100);
  await sql(host, container, 'CREATE DATABASE IF NOT EXISTS bench; USE bench; CREATE TABLE t (id INT PRIMARY KEY, body TEXT);');
  const chunk = 200_000;
  for (let from = 1; from <= rows; from += chunk) {
    const to = Math.min(rows, from + chunk - 1);
    await sql(host, container, `USE bench; INSERT INTO t SELECT seq, CONCAT(REPEAT(MD5(seq), 31), MD5(seq * 7)) FROM seq_${from}_to_${to};`);
  }
}

const dir = await mkdtemp(join(tmpdir(), 'bk-bench-'));
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
  - { name: s3, type: s3, bucket: bench, endpoint: "${s3.endpoint}", force_path_style: true, access_key_id: ${s3.accessKeyId}, secret_access_key: ${s3.secretAccessKey}, part_size_mb: ${partSizeMb}, queue_size: 4 }
middleware:
  - { name: compression, type: gzip, level: 6 }
  - { name: encryption, type: ccrypt, key: "\${BENCH_KEY}" }
`,
  );
  const rows: string[] = [];
  for (const sizeMb of sizes) {
    const name = `bench-${sizeMb}`;
    await startMariaDb(dockerd.host, {
      name,
      labels: {
        'backer.enabled': 'true',
        'backer.type': 'mysql',
        'backer.middleware': 'compression,encryption',
        'backer.mysql.password': 'Env:MYSQL_ROOT_PASSWORD',
        'backer.mysql.database': 'bench',
      },
    });
    process.stderr.write(`generating ~${sizeMb} MiB of dump in ${name}…\n`);
    await generate(dockerd.host, name, sizeMb);
    const backer = await measure(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'run-once.ts'), configPath, name], { BENCH_KEY: KEY });
    const shell = await measure(
      'bash',
      [
        '-c',
        `set -o pipefail; docker exec -e MYSQL_PWD ${name} mariadb-dump -uroot --single-transaction --databases bench | gzip -6 | ccrypt -e -E BENCH_KEY > ${dir}/shell.cpt; echo PEAK_RSS_KB=0`,
      ],
      { DOCKER_HOST: dockerd.host, BENCH_KEY: KEY, MYSQL_PWD: 'S3cr3t-root-pw!' },
    );
    const mibs = (s: number): string => (backer.rawMiB / s).toFixed(1);
    rows.push(`${backer.rawMiB.toFixed(0).padStart(6)} MiB  backer  ${backer.seconds.toFixed(1).padStart(7)} s  ${mibs(backer.seconds).padStart(7)} MiB/s  peak RSS ${backer.peakRssMiB.toFixed(0)} MiB`);
    rows.push(`${backer.rawMiB.toFixed(0).padStart(6)} MiB  shell   ${shell.seconds.toFixed(1).padStart(7)} s  ${mibs(shell.seconds).padStart(7)} MiB/s  (docker exec | gzip | ccrypt > file, baseline)`);
    await docker(dockerd.host, ['rm', '-f', name]);
  }
  process.stdout.write(
    `\nBacker vs shell pipeline; raw dump size from the manifest; S3 part size ${partSizeMb} MiB × queue 4\n${rows.join('\n')}\n`,
  );
} finally {
  await dockerd.stop();
  await s3.stop();
  await rm(dir, { recursive: true, force: true });
}
