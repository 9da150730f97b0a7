/** Prints the figures of bench/compare.ts: median (min–max), ratio of medians, target, peak RSS. */
import type { Samples } from './stats.js';
import { figure, formatFigure } from './stats.js';
import { RESTORE_KEYS } from './restore-runs.js';
import { STARTUP_KEYS } from './startup-runs.js';

interface Row {
  key: string;
  /** What the line says instead of the key (the same figure against another baseline). */
  label?: string;
  /** The baseline's key: the row prints the ratio of medians key / base. */
  base?: string;
  target?: string;
  /** For restore: print the speed ratio (base / key) instead. */
  speed?: boolean;
}

const BACKUP_ROWS: Row[] = [
  { key: '1 backer local gzip+ccrypt', base: '1 shell dump|gzip|ccrypt > file', target: 'time ratio ≤ 1.05 at 1 GiB' },
  { key: '1 backer … queue.nice 0', base: '1 shell dump|gzip|ccrypt > file', target: '(the added work at Backer\'s priority)' },
  { key: '1 shell dump|gzip|ccrypt > file' },
  { key: '2 backer s3 gzip+ccrypt', base: '2 shell dump|gzip|ccrypt|aws s3 cp -', target: 'time ratio ≤ 1.05 at 1 GiB' },
  { key: '2 shell dump|gzip|ccrypt|aws s3 cp -' },
  { key: '3 backer s3 zstd(T0)+age', base: '3 dump > /dev/null', target: 'time ratio ≤ 1.15' },
  { key: '3 backer … queue.nice 0', base: '3 dump > /dev/null', target: '(the added work at Backer\'s priority)' },
  { key: '3 dump > /dev/null' },
  { key: '3 shell dump|zstd -T0|age > /dev/null', base: '3 dump > /dev/null', target: '(the added work alone: no checksums, no upload)' },
  { key: '4 backer fan-out local+s3', base: '2 backer s3 gzip+ccrypt', target: 'time ratio ≤ 1.10 (vs 2 backer s3)' },
];

const RESTORE_ROWS: Row[] = [
  { key: RESTORE_KEYS.backer, base: RESTORE_KEYS.shell, target: 'speed ≥ 0.90× shell', speed: true },
  { key: RESTORE_KEYS.backer, label: '  the same, vs the shell hashing first', base: RESTORE_KEYS.shellVerifyFirst, target: '(the same work on both sides)', speed: true },
  { key: RESTORE_KEYS.backerNoVerify, base: RESTORE_KEYS.shell, target: 'speed ≥ 0.90× shell', speed: true },
  { key: RESTORE_KEYS.shell },
  { key: RESTORE_KEYS.shellVerifyFirst, base: RESTORE_KEYS.shell, target: '(the shell doing the hash-first pass too)', speed: true },
  { key: RESTORE_KEYS.backerFresh, base: RESTORE_KEYS.shell, target: '(daemon start-up timed too)', speed: true },
];

function line(samples: Samples, row: Row, rawMiB: number): string {
  const f = samples.figure(row.key);
  if (Number.isNaN(f.median)) return `${row.key}: not run`;
  const cells = [(row.label ?? row.key).padEnd(40), formatFigure(f).padEnd(24)];
  cells.push(Number.isNaN(rawMiB) ? ''.padEnd(12) : `${(rawMiB / f.median).toFixed(1).padStart(6)} MiB/s`);
  if (row.base !== undefined) {
    const base = samples.figure(row.base).median;
    const ratio = row.speed ? base / f.median : f.median / base;
    cells.push(`${row.speed ? 'speed' : 'ratio'} ${ratio.toFixed(2)}`.padEnd(12), row.target ?? '');
  } else cells.push('(baseline)'.padEnd(12));
  const cpu = samples.figure(`${row.key} cpu`);
  if (!Number.isNaN(cpu.median)) {
    const baseCpu = row.base === undefined ? NaN : samples.figure(`${row.base} cpu`).median;
    cells.push(`  cpu ${formatFigure(cpu, cpu.median < 1 ? 2 : 1)}${Number.isNaN(baseCpu) ? '' : ` ×${(cpu.median / baseCpu).toFixed(2)}`}`);
  }
  const rss = samples.get(`${row.key} rss`);
  if (rss.length > 0) cells.push(`  peak RSS ${formatFigure(figure(rss), 0, ' MiB')}`);
  return cells.join(' ').trimEnd();
}

function loadRange(samples: Samples): string {
  return formatFigure(samples.figure('load'), 2, '');
}

export function printBackups(title: string, samples: Samples, rawMiB: number, rounds: number): void {
  console.log(`\n${title}: raw dump ${rawMiB.toFixed(0)} MiB, ${rounds} rounds interleaved; load average (1 min) median (min–max) ${loadRange(samples)}`);
  for (const row of BACKUP_ROWS) console.log(line(samples, row, rawMiB));
}

export function printRestores(title: string, samples: Samples, rawMiB: number, rounds: number): void {
  console.log(`${title}: restore of the same artifact, ${rounds} rounds interleaved; load ${loadRange(samples)}; peak RSS = the daemon's VmHWM; cpu = the running daemon's during the restore (with ccrypt) + the CLI's`);
  for (const row of RESTORE_ROWS) console.log(line(samples, row, rawMiB));
}

export function printStartup(samples: Samples, rounds: number): void {
  console.log(`\nstart-up, ${rounds} rounds interleaved; load ${loadRange(samples)}`);
  const once = samples.figure(STARTUP_KEYS.once).median;
  const tar = samples.figure(STARTUP_KEYS.shell).median;
  console.log(line(samples, { key: STARTUP_KEYS.once }, NaN).replace('(baseline)', `overhead ${(once - tar).toFixed(2)} s over tar|gzip (target ≤ 0.30 s)`));
  console.log(line(samples, { key: STARTUP_KEYS.shell }, NaN));
  console.log(line(samples, { key: STARTUP_KEYS.node }, NaN).replace('(baseline)', '(Node alone)'));
  console.log(line(samples, { key: STARTUP_KEYS.daemonAnswer }, NaN).replace('(baseline)', ''));
  console.log(line(samples, { key: STARTUP_KEYS.daemonReady }, NaN).replace('(baseline)', 'target ≤ 1 s'));
}
