/**
 * Hashing on the main thread (before: `BACKER_INTERNAL_HASH_THREAD=off`) vs on a hash thread
 * (now), in one process, interleaved A B A B …: the backup's own stream chain with the real
 * middleware, source → hash → gzip → hash → ccrypt → hash → sink, over a generated dump-like text
 * (and `--chain none`: source → hash → sink, the hash alone). Prints wall time, throughput, the
 * seconds the event loop was busy (what the chain took from the main thread, hashing included or
 * not) and the process's CPU time (all threads), each as median (min–max), with the load average.
 *
 *   node --import tsx bench/hash.ts [--size-mb 512] [--rounds 3] [--chain gzip,ccrypt|none]
 */
import { createHash } from 'node:crypto';
import { loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import { Readable, Writable, type Duplex } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { parseArgs } from 'node:util';
import { createCcryptMiddleware } from '../src/middleware/ccrypt.js';
import { createGzipMiddleware } from '../src/middleware/gzip.js';
import { HashingStream } from '../src/pipeline/hash.js';

const { values } = parseArgs({ options: { 'size-mb': { type: 'string', default: '512' }, rounds: { type: 'string', default: '3' }, chain: { type: 'string', default: 'gzip,ccrypt' } } });
const SIZE = Number(values['size-mb']) * 1024 * 1024;
const ROUNDS = Number(values.rounds);
const CHAIN = values.chain === 'none' ? [] : (values.chain ?? '').split(',');
const CHUNK = 64 * 1024;

/** 8 MiB of dump-like lines (compresses about like the MariaDB bench's rows), sent as fresh 64 KiB buffers. */
function dumpLike(): Readable {
  const lines: string[] = [];
  for (let i = 0, length = 0; length < 8 * 1024 * 1024; i++) {
    const h = createHash('md5').update(String(i)).digest('hex');
    const line = `INSERT INTO t VALUES (${i},'${h.repeat(3)}${createHash('md5').update(String(i * 7)).digest('hex')}');\n`;
    lines.push(line);
    length += line.length;
  }
  const block = Buffer.from(lines.join(''));
  let sent = 0;
  return new Readable({
    read() {
      if (sent >= SIZE) return void this.push(null);
      const at = sent % (block.length - CHUNK);
      const n = Math.min(CHUNK, SIZE - sent);
      sent += n;
      this.push(Buffer.from(block.subarray(at, at + n)));
    },
  });
}

interface Sample {
  seconds: number;
  /** Seconds the event loop was busy (not waiting for I/O): what the main thread spent. */
  elu: number;
  cpu: number;
}

async function once(mode: 'main' | 'thread'): Promise<Sample> {
  process.env.BACKER_INTERNAL_HASH_THREAD = mode === 'main' ? 'off' : 'on';
  const signal = new AbortController().signal;
  const stages: Duplex[] = [new HashingStream()];
  for (const m of CHAIN) {
    const mw = m === 'gzip' ? createGzipMiddleware({ name: 'gz', type: 'gzip', level: 6 }) : createCcryptMiddleware({ name: 'cc', type: 'ccrypt', key: 'bench-key-not-secret' });
    stages.push(mw.encode(signal), new HashingStream());
  }
  const sink = new Writable({ write: (_c, _e, cb) => cb() });
  const elu0 = performance.eventLoopUtilization();
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await pipeline([dumpLike(), ...stages, sink]);
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  return { seconds, elu: performance.eventLoopUtilization(elu0).active / 1000, cpu: (cpu.user + cpu.system) / 1e6 };
}

function stat(xs: number[], digits: number): string {
  const s = [...xs].sort((a, b) => a - b);
  const med = s.length % 2 ? (s[(s.length - 1) / 2] ?? NaN) : ((s[s.length / 2 - 1] ?? NaN) + (s[s.length / 2] ?? NaN)) / 2;
  return `${med.toFixed(digits)} (${(s[0] ?? NaN).toFixed(digits)}–${(s.at(-1) ?? NaN).toFixed(digits)})`;
}

const results: Record<'main' | 'thread', Sample[]> = { main: [], thread: [] };
const loads: string[] = [];
for (let r = 0; r < ROUNDS; r++) {
  for (const mode of r % 2 === 0 ? (['main', 'thread'] as const) : (['thread', 'main'] as const)) {
    loads.push(loadavg()[0]?.toFixed(2) ?? '?');
    results[mode].push(await once(mode));
  }
}
const mib = SIZE / 1024 / 1024;
console.log(`\n${mib} MiB of dump-like text, chain: hash${CHAIN.map((c) => ` → ${c} → hash`).join('')}; ${ROUNDS} rounds interleaved; load average (1 min) at each run: ${loads.join(' ')}`);
console.log('                      wall s               MiB/s              event loop busy s    CPU s (all threads)');
for (const mode of ['main', 'thread'] as const) {
  const xs = results[mode];
  const label = mode === 'main' ? 'main thread (before)' : 'hash thread (now)   ';
  console.log(`${label}  ${stat(xs.map((x) => x.seconds), 2).padEnd(20)} ${stat(xs.map((x) => mib / x.seconds), 0).padEnd(18)} ${stat(xs.map((x) => x.elu), 2).padEnd(20)} ${stat(xs.map((x) => x.cpu), 2)}`);
}
