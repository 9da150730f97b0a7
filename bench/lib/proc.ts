/** Runs one timed command of a benchmark under GNU time, for its wall time and peak RSS. */
import { spawn } from 'node:child_process';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';

export interface Timed {
  seconds: number;
  /** Peak RSS (GNU time's %M: the largest of the process and its waited-for children), MiB. */
  peakRssMiB: number;
  /** User + system CPU seconds of the process and its children (GNU time's %U + %S): far less sensitive to a loaded machine than wall time. */
  cpuSeconds: number;
  stdout: string;
}

export interface Command {
  file: string;
  args: string[];
  env?: Record<string, string>;
}

/** A bash pipeline with pipefail: any failing stage fails the run. */
export function shell(script: string, env: Record<string, string> = {}): Command {
  return { file: 'bash', args: ['-c', `set -euo pipefail; ${script}`], env };
}

let counter = 0;

/**
 * Runs `command` to its end and times it from spawn to exit. A non-zero exit throws with its
 * stderr: a failed run is never a figure.
 */
export async function timed(command: Command, scratchDir: string): Promise<Timed> {
  const rssFile = join(scratchDir, `time-${process.pid}-${counter++}.txt`);
  const start = performance.now();
  const child = spawn('/usr/bin/time', ['-f', 'MAXRSS_KB=%M CPU=%U+%S', '-o', rssFile, command.file, ...command.args], {
    env: { ...process.env, ...command.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const code = await new Promise<number>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (c) => resolve(c ?? -1));
  });
  const seconds = (performance.now() - start) / 1000;
  const rss = await readFile(rssFile, 'utf8').catch(() => '');
  await rm(rssFile, { force: true });
  if (code !== 0) throw new Error(`${command.file} ${command.args.join(' ')} exited ${code}: ${stderr.trim().slice(-2000)}`);
  const kb = Number(/MAXRSS_KB=(\d+)/.exec(rss)?.[1] ?? NaN);
  const cpu = /CPU=([\d.]+)\+([\d.]+)/.exec(rss);
  return { seconds, peakRssMiB: kb / 1024, cpuSeconds: Number(cpu?.[1] ?? NaN) + Number(cpu?.[2] ?? NaN), stdout };
}

/** VmHWM (peak RSS) of a live process, MiB. */
export async function vmHwmMiB(pid: number): Promise<number> {
  const text = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/^VmHWM:\s+(\d+) kB/m.exec(text)?.[1] ?? NaN) / 1024;
}

/** CPU seconds a live process used so far, with its waited-for children (/proc/PID/stat utime, stime, cutime, cstime; 100 ticks a second). */
export async function cpuSecondsOf(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // fields[0] is field 3 (state): utime..cstime are fields 14..17.
  return [11, 12, 13, 14].reduce((sum, i) => sum + Number(fields[i] ?? NaN), 0) / 100;
}
