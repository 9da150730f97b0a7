/**
 * Benchmark 5: `backer restore` of the local scenario's newest artifact into a second MariaDB
 * container (through a fresh `backer daemon`, as users run it), next to the reverse shell
 * pipeline `ccrypt -d | gunzip | mariadb` on the same artifact. Each run starts from a dropped
 * database and ends with the restored table compared with the source (rows and CHECKSUM TABLE).
 */
import type { BackerBuild } from './backer.js';
import { startDaemon } from './backer.js';
import { KEY } from './backup-runs.js';
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
  backer: '5 backer restore (hash first)',
  backerNoVerify: '5 backer restore --no-verify-first',
} as const;

async function backerRestore(backer: BackerBuild, setup: RestoreSetup, extra: string[], samples: Samples, key: string): Promise<void> {
  const daemon = await startDaemon(backer, setup.config.path, setup.config.socket, { BENCH_KEY: KEY });
  try {
    const args = ['--config', setup.config.path, 'restore', 'db', 'latest', '--target', 'local', '--to', `container:${setup.destination}`, '--yes', '--wait', ...extra];
    const run = await timed(backer.command(args, { BENCH_KEY: KEY }), setup.dir);
    samples.add(key, run.seconds);
    samples.add(`${key} rss`, await vmHwmMiB(daemon.pid));
    // The daemon's CPU over its life (start-up included) plus the CLI's.
    samples.add(`${key} cpu`, (await cpuSecondsOf(daemon.pid)) + run.cpuSeconds);
  } finally {
    await daemon.stop();
  }
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
  const runs = [shellRun, () => backerRestore(backer, setup, [], samples, RESTORE_KEYS.backer), () => backerRestore(backer, setup, ['--no-verify-first'], samples, RESTORE_KEYS.backerNoVerify)];
  for (let round = 0; round < rounds; round++) {
    samples.add('load', load1());
    for (const run of round % 2 === 0 ? runs : [...runs].reverse()) {
      await dropBench(setup.dockerHost, setup.destination);
      await run();
      const got = await fingerprint(setup.dockerHost, setup.destination);
      if (got !== expected) throw new Error(`the restored bench.t differs from the source:\n${got}\nexpected\n${expected}`);
    }
    log(`  ${setup.source}: restore round ${round + 1}/${rounds} done (load ${load1().toFixed(2)})`);
  }
  samples.add('load', load1());
  return samples;
}
