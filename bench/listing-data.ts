/**
 * Shared by bench/api-listing.ts and bench/containers.ts: stored backups written straight to a
 * local target's directory (manifest + tiny artifact each), and latency percentiles of API calls.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { callApi } from '../src/cli/client.js';
import { manifestBytes, storedFixture } from '../test/helpers/stored-backups.js';

/** `count` backups spread over `mandates` (named by `mandateName(i)`), one minute apart, on the local target `target`. */
export async function writeBackups(root: string, count: number, mandates: readonly string[], target = 'local'): Promise<void> {
  for (const m of mandates) await mkdir(join(root, m), { recursive: true });
  const start = Date.UTC(2025, 0, 1);
  const batch: Promise<void>[] = [];
  for (let i = 0; i < count; i++) {
    const mandate = mandates[i % mandates.length] ?? 'm';
    const f = storedFixture(mandate, `${mandate}-b${i}`, Buffer.from(`artifact ${i}\n`), new Date(start + i * 60_000), { name: target, type: 'local' });
    batch.push(writeFile(join(root, f.artifactKey), f.artifact), writeFile(join(root, f.manifestKey), manifestBytes(f)));
    if (batch.length >= 512) await Promise.all(batch.splice(0));
  }
  await Promise.all(batch);
}

export const percentile = (sorted: readonly number[], p: number): number => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? NaN;

export async function timedCall(socket: string, path: string): Promise<number> {
  const t0 = performance.now();
  await callApi(socket, 'GET', path);
  return performance.now() - t0;
}

/**
 * p50 and p99 of `n` sequential GETs of `path`, in ms. A failed request is printed and left out of
 * the figures (never retried): on this shared machine a reset connection happens, and hides nothing.
 */
export async function latencies(socket: string, path: string, n: number): Promise<{ p50: number; p99: number; failed: number }> {
  const out: number[] = [];
  let failed = 0;
  for (let i = 0; i < n; i++) {
    try {
      out.push(await timedCall(socket, path));
    } catch (err) {
      failed++;
      console.error(`GET ${path} failed: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  if (failed > 0) console.error(`GET ${path}: ${failed} of ${n} requests failed`);
  out.sort((a, b) => a - b);
  return { p50: percentile(out, 50), p99: percentile(out, 99), failed };
}

/** The process's peak RSS (VmHWM), MiB. */
export async function vmHwmMiB(pid: number): Promise<number> {
  const text = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/^VmHWM:\s+(\d+) kB/m.exec(text)?.[1] ?? NaN) / 1024;
}

/** CPU time (user + system) the process used so far, in seconds (/proc/PID/stat fields 14 and 15). */
export async function cpuSeconds(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  // The command name (field 2) may hold spaces: count from the closing parenthesis.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]);
  return ticks / CLOCK_TICKS;
}

/** USER_HZ: 100 on every Linux this runs on (getconf CLK_TCK). */
const CLOCK_TICKS = 100;
