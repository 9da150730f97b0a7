/**
 * Benchmark 6: start-up. `backer backup --once` of a tiny `files` mandate next to `tar | gzip >
 * file` of the same directory, Node's own start (`node -e 0`, the floor of any Node CLI), and the
 * time from spawning `backer daemon` to GET /v1/health answering over its socket (first answer,
 * and status `ok`). Interleaved, order flipped every round.
 */
import { readFile, rm } from 'node:fs/promises';
import type { BackerBuild } from './backer.js';
import { startDaemon } from './backer.js';
import { writeTinyConfig } from './configs.js';
import { shell, timed, vmHwmMiB, type Timed } from './proc.js';
import { load1, Samples } from './stats.js';

/** USER_HZ of /proc/PID/stat (100 on Linux). */
const CLOCK_TICKS = 100;

export const STARTUP_KEYS = {
  once: '6 backer backup --once (tiny files)',
  shell: '6 shell tar | gzip > file',
  node: '6 node -e 0',
  daemonAnswer: '6 daemon: first answer',
  daemonReady: '6 daemon: status ok',
} as const;

export async function runStartup(backer: BackerBuild, dir: string, rounds: number, log: (line: string) => void): Promise<Samples> {
  const tiny = await writeTinyConfig(dir);
  const samples = new Samples(log);
  const add = (key: string, r: Timed): void => {
    samples.add(key, r.seconds);
    samples.add(`${key} cpu`, r.cpuSeconds);
  };
  const runs = [
    async () => {
      const r = await timed(backer.command(['--config', tiny.path, 'backup', 'tiny', '--once']), dir);
      samples.add(STARTUP_KEYS.once, r.seconds);
      samples.add(`${STARTUP_KEYS.once} cpu`, r.cpuSeconds);
      samples.add(`${STARTUP_KEYS.once} rss`, r.peakRssMiB);
    },
    async () => add(STARTUP_KEYS.shell, await timed(shell(`tar -C ${tiny.files} -c . | gzip -6 > ${tiny.out}`), dir)),
    async () => add(STARTUP_KEYS.node, await timed({ file: process.execPath, args: ['-e', '0'] }, dir)),
    async () => {
      const daemon = await startDaemon(backer, tiny.path, tiny.socket);
      samples.add(STARTUP_KEYS.daemonAnswer, daemon.firstAnswer);
      samples.add(STARTUP_KEYS.daemonReady, daemon.ready);
      // CPU and RSS of the daemon when it first answered `ok` (its start-up's cost).
      const stat = await readFile(`/proc/${daemon.pid}/stat`, 'utf8');
      const [utime = NaN, stime = NaN] = stat.slice(stat.lastIndexOf(')') + 2).split(' ').slice(11, 13).map(Number);
      samples.add(`${STARTUP_KEYS.daemonReady} cpu`, (utime + stime) / CLOCK_TICKS);
      samples.add(`${STARTUP_KEYS.daemonReady} rss`, await vmHwmMiB(daemon.pid));
      await daemon.stop();
    },
  ];
  for (let round = 0; round < rounds; round++) {
    samples.add('load', load1());
    for (const run of round % 2 === 0 ? runs : [...runs].reverse()) await run();
  }
  samples.add('load', load1());
  await rm(tiny.out, { force: true });
  log(`  start-up: ${rounds} rounds done (load ${load1().toFixed(2)})`);
  return samples;
}
