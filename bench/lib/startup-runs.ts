/**
 * Benchmark 6: start-up. `backer backup --once` of a tiny `files` mandate next to `tar | gzip >
 * file` of the same directory, Node's own start (`node -e 0`, the floor of any Node CLI), and the
 * time from spawning `backer daemon` to GET /v1/health answering over its socket (first answer,
 * and status `ok`). Interleaved, order flipped every round.
 */
import { rm } from 'node:fs/promises';
import type { BackerBuild } from './backer.js';
import { startDaemon } from './backer.js';
import { writeTinyConfig } from './configs.js';
import { shell, timed } from './proc.js';
import { load1, Samples } from './stats.js';

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
  const runs = [
    async () => {
      const r = await timed(backer.command(['--config', tiny.path, 'backup', 'tiny', '--once']), dir);
      samples.add(STARTUP_KEYS.once, r.seconds);
      samples.add(`${STARTUP_KEYS.once} rss`, r.peakRssMiB);
    },
    async () => samples.add(STARTUP_KEYS.shell, (await timed(shell(`tar -C ${tiny.files} -c . | gzip -6 > ${tiny.out}`), dir)).seconds),
    async () => samples.add(STARTUP_KEYS.node, (await timed({ file: process.execPath, args: ['-e', '0'] }, dir)).seconds),
    async () => {
      const daemon = await startDaemon(backer, tiny.path, tiny.socket);
      samples.add(STARTUP_KEYS.daemonAnswer, daemon.firstAnswer);
      samples.add(STARTUP_KEYS.daemonReady, daemon.ready);
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
