/**
 * Benchmark 5: `backer restore` of the local scenario's newest artifact into a second MariaDB
 * container, next to the reverse shell pipeline `ccrypt -d | gunzip | mariadb` on the same
 * artifact. Users restore through a daemon that is already running: each round starts one daemon
 * before the timed CLI calls, and its CPU is read (/proc utime + stime, with its reaped children:
 * ccrypt) before and after each restore. An extra line keeps the old figure: a fresh daemon per
 * restore, its start-up timed too. Another shell line does Backer's hash-first pass in the shell
 * first (md5 and sha256 of every step), the same work as Backer's default. Each run starts from a dropped database and ends with the
 * restored table compared with the source (rows and CHECKSUM TABLE).
 *
 * `BENCH_DAEMON_CPU_PROF=<dir>` runs the round's daemon with `--cpu-prof` into that directory.
 */
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { BackerBuild, RunningDaemon } from './backer.js';
import { startDaemon } from './backer.js';
import { KEY } from './backup-runs.js';
import { localTargetDir, writeConfig, type Env } from './configs.js';
import { dropBench, fingerprint, ROOT_PASSWORD } from './mariadb-data.js';
import { cpuSecondsOf, shell, timed, vmHwmMiB } from './proc.js';
import { load1, Samples } from './stats.js';

export interface RestoreSetup {
  dockerHost: string;
  dir: string;
  source: string;
  destination: string;
  config: { path: string; socket: string };
  artifact: string;
}

export const RESTORE_KEYS = {
  shell: '5 shell ccrypt -d|gunzip|mariadb',
  shellVerifyFirst: '5 shell hash every step first, then the same',
  backer: '5 backer restore (hash first)',
  backerNoVerify: '5 backer restore --no-verify-first',
  backerFresh: '5 backer restore, fresh daemon (hash first)',
} as const;

function daemonEnv(): Record<string, string> {
  const dir = process.env.BENCH_DAEMON_CPU_PROF;
  return dir ? { BENCH_KEY: KEY, NODE_OPTIONS: `--cpu-prof --cpu-prof-dir=${dir}` } : { BENCH_KEY: KEY };
}

/** One timed `backer restore … --wait` through `daemon`; CPU = the daemon's during the restore + the CLI's. */
async function backerRestore(backer: BackerBuild, setup: RestoreSetup, daemon: RunningDaemon, extra: string[], samples: Samples, key: string): Promise<number> {
  const args = ['--config', setup.config.path, 'restore', 'db', 'latest', '--target', 'local', '--to', `container:${setup.destination}`, '--yes', '--wait', ...extra];
  const before = await cpuSecondsOf(daemon.pid);
  const run = await timed(backer.command(args, { BENCH_KEY: KEY }), setup.dir);
  const daemonCpu = (await cpuSecondsOf(daemon.pid)) - before;
  samples.add(key, run.seconds);
  samples.add(`${key} rss`, await vmHwmMiB(daemon.pid));
  samples.add(`${key} cpu`, daemonCpu + run.cpuSeconds);
  samples.add(`${key} daemon cpu`, daemonCpu);
  return run.seconds;
}

/** The old figure: spawning the daemon is part of the timed run (its whole CPU counted). */
async function freshDaemonRestore(backer: BackerBuild, setup: RestoreSetup, samples: Samples): Promise<void> {
  const start = performance.now();
  const daemon = await startDaemon(backer, setup.config.path, setup.config.socket, { BENCH_KEY: KEY });
  try {
    const startup = (performance.now() - start) / 1000;
    const key = RESTORE_KEYS.backerFresh;
    const args = ['--config', setup.config.path, 'restore', 'db', 'latest', '--target', 'local', '--to', `container:${setup.destination}`, '--yes', '--wait'];
    const run = await timed(backer.command(args, { BENCH_KEY: KEY }), setup.dir);
    samples.add(key, startup + run.seconds);
    samples.add(`${key} cpu`, (await cpuSecondsOf(daemon.pid)) + run.cpuSeconds);
  } finally {
    await daemon.stop();
  }
}

/**
 * For `--only restore`: one `backup --once` of the local scenario (gzip + ccrypt), untimed, for
 * the artifact to restore.
 */
export async function localArtifactOnce(env: Env, backer: BackerBuild, container: string): Promise<{ artifact: string; rawMiB: number; config: { path: string; socket: string } }> {
  const config = await writeConfig(env, 'local', container);
  const run = await timed(backer.command(['--config', config.path, '--json', 'backup', 'db', '--once'], { BENCH_KEY: KEY }), env.dir);
  const result = JSON.parse(run.stdout) as { status: string; raw_size?: number; targets: { target: string; artifact_key?: string }[] };
  const key = result.targets.find((t) => t.target === 'local')?.artifact_key;
  if (result.status !== 'succeeded' || !key) throw new Error(`backup --once for the restore bench: ${run.stdout}`);
  return { artifact: join(localTargetDir(env, 'local', container), key), rawMiB: (result.raw_size ?? NaN) / 1048576, config };
}

export async function runRestores(backer: BackerBuild, setup: RestoreSetup, rounds: number, log: (line: string) => void): Promise<Samples> {
  const samples = new Samples(log);
  const expected = await fingerprint(setup.dockerHost, setup.source);
  const shellRun = async (): Promise<void> => {
    const script = `ccrypt -d -E BENCH_KEY < ${setup.artifact} | gunzip | docker exec -i -e MYSQL_PWD ${setup.destination} mariadb --user=root`;
    const run = await timed(shell(script, { BENCH_KEY: KEY, MYSQL_PWD: ROOT_PASSWORD, DOCKER_HOST: setup.dockerHost }), setup.dir);
    samples.add(RESTORE_KEYS.shell, run.seconds);
    samples.add(`${RESTORE_KEYS.shell} cpu`, run.cpuSeconds);
  };
  // Backer's hash-first pass done by the shell: md5 and sha256 of the artifact and of each decoded
  // step (ccrypt's output, gunzip's), every step at once, then the restore above. No comparison
  // with a manifest: the same work, a little less.
  const shellVerifyFirstRun = async (): Promise<void> => {
    const hashes = 'tee >(md5sum > /dev/null) | sha256sum > /dev/null';
    const pass = `tee >(${hashes}) < ${setup.artifact} | ccrypt -d -E BENCH_KEY | tee >(${hashes}) | gunzip | ${hashes}`;
    const apply = `ccrypt -d -E BENCH_KEY < ${setup.artifact} | gunzip | docker exec -i -e MYSQL_PWD ${setup.destination} mariadb --user=root`;
    const run = await timed(shell(`${pass}; ${apply}`, { BENCH_KEY: KEY, MYSQL_PWD: ROOT_PASSWORD, DOCKER_HOST: setup.dockerHost }), setup.dir);
    samples.add(RESTORE_KEYS.shellVerifyFirst, run.seconds);
    samples.add(`${RESTORE_KEYS.shellVerifyFirst} cpu`, run.cpuSeconds);
  };
  for (let round = 0; round < rounds; round++) {
    samples.add('load', load1());
    const daemon = await startDaemon(backer, setup.config.path, setup.config.socket, daemonEnv());
    try {
      const runs = [
        shellRun,
        shellVerifyFirstRun,
        () => backerRestore(backer, setup, daemon, [], samples, RESTORE_KEYS.backer),
        () => backerRestore(backer, setup, daemon, ['--no-verify-first'], samples, RESTORE_KEYS.backerNoVerify),
      ];
      for (const run of round % 2 === 0 ? runs : [...runs].reverse()) await checked(setup, expected, run);
    } finally {
      await daemon.stop();
    }
    await checked(setup, expected, () => freshDaemonRestore(backer, setup, samples));
    log(`  ${setup.source}: restore round ${round + 1}/${rounds} done (load ${load1().toFixed(2)})`);
  }
  samples.add('load', load1());
  return samples;
}

/** Drops the database, runs one restore, and compares the result with the source. */
async function checked(setup: RestoreSetup, expected: string, run: () => Promise<unknown>): Promise<void> {
  await dropBench(setup.dockerHost, setup.destination);
  await run();
  const got = await fingerprint(setup.dockerHost, setup.destination);
  if (got !== expected) throw new Error(`the restored bench.t differs from the source:\n${got}\nexpected\n${expected}`);
}
