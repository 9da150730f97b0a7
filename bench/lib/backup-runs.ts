/**
 * Benchmarks 1–4 on one database: Backer's `backup --once` per scenario next to its baseline,
 * interleaved (A B, then B A in the next round, …).
 */
import { join } from 'node:path';
import type { BackerBuild } from './backer.js';
import { localTargetDir, writeConfig, type Env, type Scenario } from './configs.js';
import { ROOT_PASSWORD, dumpCommand } from './mariadb-data.js';
import { shell, timed, type Command } from './proc.js';
import { load1, Samples } from './stats.js';

export const KEY = 'bench-key-not-secret';

export interface BackupFigures {
  samples: Samples;
  /** Raw dump size (the manifest's source step), MiB. */
  rawMiB: number;
  /** The newest artifact of the local scenario, for the restore benchmark. */
  localArtifact: string;
  configs: Record<Scenario, { path: string; socket: string }>;
}

interface Pair {
  /** Sample keys: A is Backer, B its baseline (null: the baseline is another pair's A, same round). */
  a: string;
  b: string | null;
  backer: Scenario;
  baseline: ((round: number) => Command) | null;
}

function pairs(env: Env, container: string): Pair[] {
  const dump = dumpCommand(container);
  const secretEnv = { MYSQL_PWD: ROOT_PASSWORD, BENCH_KEY: KEY };
  const awsEnv = { AWS_ACCESS_KEY_ID: env.s3.accessKeyId, AWS_SECRET_ACCESS_KEY: env.s3.secretAccessKey, AWS_DEFAULT_REGION: 'us-east-1', AWS_EC2_METADATA_DISABLED: 'true' };
  const shellFile = join(env.dir, `${container}-shell.sql.gz.cpt`);
  return [
    { a: '1 backer local gzip+ccrypt', b: '1 shell dump|gzip|ccrypt > file', backer: 'local', baseline: () => shell(`${dump} | gzip -6 | ccrypt -e -E BENCH_KEY > ${shellFile}`, secretEnv) },
    { a: '1 backer … queue.nice 0', b: null, backer: 'local-nice0', baseline: null },
    {
      a: '2 backer s3 gzip+ccrypt',
      b: '2 shell dump|gzip|ccrypt|aws s3 cp -',
      backer: 's3',
      baseline: (round) =>
        shell(`${dump} | gzip -6 | ccrypt -e -E BENCH_KEY | /usr/bin/aws --endpoint-url ${env.s3.endpoint} s3 cp - s3://bench/shell-${container}/r${round}.sql.gz.cpt`, { ...secretEnv, ...awsEnv }),
    },
    { a: '3 backer s3 zstd(T0)+age', b: '3 dump > /dev/null', backer: 'zstd-age', baseline: () => shell(`${dump} > /dev/null`, secretEnv) },
    { a: '3 backer … queue.nice 0', b: '3 shell dump|zstd -T0|age > /dev/null', backer: 'zstd-age-nice0', baseline: () => shell(`${dump} | zstd -q -c -3 -T0 | age -r ${env.ageRecipient} > /dev/null`, secretEnv) },
    { a: '4 backer fan-out local+s3', b: null, backer: 'fanout', baseline: null },
  ];
}

interface OnceResult {
  raw_size?: number;
  status: string;
  targets: { target: string; status: string; artifact_key?: string }[];
}

async function backerOnce(backer: BackerBuild, config: string, dir: string): Promise<{ seconds: number; rss: number; cpu: number; result: OnceResult }> {
  const run = await timed(backer.command(['--config', config, '--json', 'backup', 'db', '--once'], { BENCH_KEY: KEY }), dir);
  const result = JSON.parse(run.stdout) as OnceResult;
  if (result.status !== 'succeeded') throw new Error(`backup --once ${config}: ${run.stdout}`);
  return { seconds: run.seconds, rss: run.peakRssMiB, cpu: run.cpuSeconds, result };
}

/** `only`: the benchmarks to run by number (`['3']`: both rows of benchmark 3), or all. */
export async function runBackups(env: Env, backer: BackerBuild, container: string, rounds: number, log: (line: string) => void, only?: string[]): Promise<BackupFigures> {
  const samples = new Samples(log);
  const configs = {} as Record<Scenario, { path: string; socket: string }>;
  for (const s of ['local', 'local-nice0', 's3', 'zstd-age', 'zstd-age-nice0', 'fanout'] as const) configs[s] = await writeConfig(env, s, container);
  let rawMiB = NaN;
  let localArtifact = '';
  for (let round = 0; round < rounds; round++) {
    samples.add('load', load1());
    const list = pairs(env, container).filter((p) => only === undefined || only.includes(p.a.split(' ')[0] ?? ''));
    // Odd rounds run the pairs backwards, and B before A: no scenario always follows the same one.
    for (const pair of round % 2 === 0 ? list : list.reverse()) {
      const runA = async (): Promise<void> => {
        const r = await backerOnce(backer, configs[pair.backer].path, env.dir);
        samples.add(pair.a, r.seconds);
        samples.add(`${pair.a} rss`, r.rss);
        samples.add(`${pair.a} cpu`, r.cpu);
        rawMiB = (r.result.raw_size ?? NaN) / 1048576;
        const key = r.result.targets.find((t) => t.target === 'local')?.artifact_key;
        if (pair.backer === 'local' && key) localArtifact = join(localTargetDir(env, 'local', container), key);
      };
      const runB = async (): Promise<void> => {
        if (pair.b === null || pair.baseline === null) return;
        const r = await timed(pair.baseline(round), env.dir);
        samples.add(pair.b, r.seconds);
        samples.add(`${pair.b} cpu`, r.cpuSeconds);
      };
      if (round % 2 === 0) {
        await runA();
        await runB();
      } else {
        await runB();
        await runA();
      }
    }
    log(`  ${container}: backup round ${round + 1}/${rounds} done (load ${load1().toFixed(2)})`);
  }
  samples.add('load', load1());
  return { samples, rawMiB, localArtifact, configs };
}
