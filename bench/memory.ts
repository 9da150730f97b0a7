/**
 * Benchmark 7: peak RSS (VmHWM) of a real `backer daemon` process backing up 100 MiB, 1 GiB and
 * 10 GiB of dump with default settings, through gzip + ccrypt to S3 (s3rver), next to the idle
 * daemon's RSS (the baseline, measured in the same run before each backup).
 *
 * The dump is a `files` mandate of one generated file of dump-like text (no Docker needed: the
 * memory under test is Backer's, not the database's), or with `--source mariadb` a `mysql` mandate
 * over a MariaDB container of a private dockerd (Docker exec and its multiplexed stream, as users
 * run it; the rows are generated once per size, about the asked dump size). The daemon runs from the compiled
 * `dist/cli/main.js` (built first into a temp dir, bench/lib/backer.ts; `--tsx` runs the sources
 * instead), so tsx's compiler is not in the figures. A fresh daemon per size: VmHWM is the
 * process's peak.
 *
 *   node --import tsx bench/memory.ts [--size-mb 100 --size-mb 1024 --size-mb 10240]
 *        [--source files|mariadb] (what is dumped; default files)
 *        [--part-size-mb N --queue-size N] (override the S3 defaults)
 *        [--hash-thread off] (the daemon hashes on its main thread, as before)
 *        [--node-options=--max-semi-space-size=1] (NODE_OPTIONS of the daemon; with "=": it starts with a dash)
 *        [--daemon-env MALLOC_ARENA_MAX=2] (more environment of the daemon)
 *        [--uploader ours --uploader lib-storage --uploader local] (upload paths, interleaved: ours
 *          is s3-multipart.ts, lib-storage the previous one, via BACKER_INTERNAL_S3_UPLOADER;
 *          local: a local target instead of S3, the same pipeline without an upload; both: the S3
 *          and the local backup at once, as queue.concurrency 2 runs them; not with --once)
 *          An uploader may carry more environment for Backer after a colon, a variant to interleave
 *          with the plain one: `--uploader ours --uploader ours:BACKER_INTERNAL_GC_PACER=off`.
 *        [--rounds N] (each size × uploader N times, interleaved A B A B; median and spread)
 *        [--once] (`backup --once` processes instead of a daemon, as cron runs Backer: peak RSS
 *          from GNU time, no idle figure; --sample does not apply)
 *        [--sample] (reads the daemon's /metrics every 250 ms during each backup and prints, at the
 *          sample of highest RSS, V8's heap in use and Node's external memory: Buffers and
 *          ArrayBuffers, most of them garbage not yet collected)
 *
 * The dump file of a size is generated once per size and reused by every round and uploader.
 */
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { get } from 'node:http';
import { parseArgs } from 'node:util';
import { CreateBucketCommand, DeleteObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { callApi } from '../src/cli/client.js';
import { TERMINAL_STATES, type AnyJob } from '../src/queue/types.js';
import { startS3, type S3Service } from '../test/setup/services.js';
import { prepareBacker, startDaemon, type BackerBuild } from './lib/backer.js';
import { filesSource, mariadbSource, type MemorySource } from './lib/memory-source.js';
import { timed } from './lib/proc.js';

const { values } = parseArgs({
  options: {
    'size-mb': { type: 'string', multiple: true, default: ['100', '1024'] },
    'part-size-mb': { type: 'string' },
    'queue-size': { type: 'string' },
    'hash-thread': { type: 'string', default: 'on' },
    tsx: { type: 'boolean', default: false },
    'node-options': { type: 'string' },
    'daemon-env': { type: 'string', multiple: true, default: [] },
    uploader: { type: 'string', multiple: true, default: ['ours'] },
    rounds: { type: 'string', default: '1' },
    sample: { type: 'boolean', default: false },
    once: { type: 'boolean', default: false },
    source: { type: 'string', default: 'files' },
  },
});
const MIB = 1024 * 1024;

/**
 * `sizeMb` MiB of dump-like text (INSERT lines of hex; gzip takes it to about 45 %): one 32 MiB
 * block written again and again (gzip's 32 KiB window never sees the repetition).
 */
async function generate(file: string, sizeMb: number): Promise<void> {
  const lines: string[] = [];
  for (let line = 0, length = 0; length < 32 * MIB; line++) {
    const h = createHash('md5').update(String(line)).digest('hex');
    const text = `INSERT INTO t VALUES (${line},'${h}${h.slice(7)}${h.slice(3, 19)}${createHash('md5').update(String(line * 7)).digest('hex')}');\n`;
    lines.push(text);
    length += text.length;
  }
  const block = Buffer.from(lines.join(''));
  const out = createWriteStream(file);
  for (let written = 0; written < sizeMb * MIB; ) {
    const part = block.subarray(0, Math.min(block.length, sizeMb * MIB - written));
    written += part.length;
    if (!out.write(part)) await once(out, 'drain');
  }
  out.end();
  await once(out, 'finish');
}

async function kib(pid: number, field: 'VmRSS' | 'VmHWM'): Promise<number> {
  const text = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? NaN);
}

function config(dir: string, s3: S3Service, source: MemorySource): string {
  const overrides = `${values['part-size-mb'] ? `, part_size_mb: ${values['part-size-mb']}` : ''}${values['queue-size'] ? `, queue_size: ${values['queue-size']}` : ''}`;
  return `data_dir: ${dir}/data
log: { level: warn }
${source.dockerLine}
targets:
  - { name: local, type: local, path: ${dir}/local }
  - { name: s3, type: s3, bucket: bench, endpoint: "${s3.endpoint}", force_path_style: true, access_key_id: ${s3.accessKeyId}, secret_access_key: ${s3.secretAccessKey}${overrides} }
middleware:
  - { name: compression, type: gzip }
  - { name: encryption, type: ccrypt, key: "\${BENCH_KEY}" }
mandates:
  dump:
${source.mandateBody}    interval: "0 0 29 2 *"
    target: s3
    middleware: compression,encryption
  dump-local:
${source.mandateBody}    interval: "0 0 29 2 *"
    target: local
    middleware: compression,encryption
`;
}

/** What /metrics said at the sample of highest RSS during a backup (MiB), and the highest external memory. */
interface Sampled {
  rss: number;
  heapUsed: number;
  external: number;
  maxExternal: number;
}

interface Result {
  sampled?: Sampled;
  sizeMb: number;
  uploader: string;
  cpuSeconds: number;
  idleMiB: number;
  peakMiB: number;
  seconds: number;
  load: string;
}

async function writeDump(dir: string, sizeMb: number): Promise<void> {
  await rm(join(dir, 'files'), { recursive: true, force: true });
  await mkdir(join(dir, 'files'));
  process.stderr.write(`generating ${sizeMb} MiB…\n`);
  await generate(join(dir, 'files', 'dump.sql'), sizeMb);
}

/** User + system CPU seconds of a process so far (/proc/PID/stat fields 14 and 15, in clock ticks of 1/100 s). */
async function cpuSeconds(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** `ours:K=V,K2=V2`: the uploader `ours` with more environment for Backer (a variant to interleave). */
function uploaderKind(spec: string): string {
  return spec.split(':', 1)[0] ?? spec;
}

function backerEnv(spec: string): Record<string, string> {
  const uploader = uploaderKind(spec);
  const env: Record<string, string> = { BENCH_KEY: 'bench-key-not-secret', BACKER_INTERNAL_HASH_THREAD: values['hash-thread'] ?? 'on' };
  if (uploader === 'lib-storage') env.BACKER_INTERNAL_S3_UPLOADER = 'lib-storage';
  if (values['node-options']) env.NODE_OPTIONS = values['node-options'];
  const variant = spec.includes(':') ? spec.slice(spec.indexOf(':') + 1).split(',') : [];
  for (const pair of [...(values['daemon-env'] ?? []), ...variant]) env[pair.slice(0, pair.indexOf('='))] = pair.slice(pair.indexOf('=') + 1);
  return env;
}

/** Queues a backup of `mandate` and waits for it to succeed. */
async function backupJob(socket: string, mandate: string): Promise<void> {
  let { job } = await callApi<{ job: AnyJob }>(socket, 'POST', `/v1/mandates/${mandate}/backups`);
  while (!TERMINAL_STATES.has(job.state)) ({ job } = await callApi<{ job: AnyJob }>(socket, 'GET', `/v1/jobs/${job.id}?wait=300`));
  if (job.state !== 'succeeded') throw new Error(`the backup of ${mandate} ended ${job.state}: ${JSON.stringify(job)}`);
}

/** --once: one `backup --once` process; its peak RSS from GNU time, CPU with its children (ccrypt). */
async function measureOnce(backer: BackerBuild, dir: string, sizeMb: number, spec: string): Promise<Result> {
  const uploader = uploaderKind(spec);
  if (uploader === 'both') throw new Error('--uploader both needs a daemon (not --once)');
  await rm(join(dir, 'data'), { recursive: true, force: true });
  const load = loadavg().map((l) => l.toFixed(1)).join(' ');
  const mandate = uploader === 'local' ? 'dump-local' : 'dump';
  const run = await timed(backer.command(['--config', join(dir, 'backer.yml'), '--json', 'backup', mandate, '--once'], backerEnv(spec)), dir);
  const result = JSON.parse(run.stdout) as { status: string };
  if (result.status !== 'succeeded') throw new Error(`backup --once ended ${result.status}: ${run.stdout}`);
  return { sizeMb, uploader: spec, cpuSeconds: run.cpuSeconds, idleMiB: NaN, peakMiB: run.peakRssMiB, seconds: run.seconds, load };
}

async function measure(backer: BackerBuild, dir: string, sizeMb: number, spec: string): Promise<Result> {
  if (values.once) return measureOnce(backer, dir, sizeMb, spec);
  const uploader = uploaderKind(spec);
  await rm(join(dir, 'data'), { recursive: true, force: true });
  const socket = join(dir, 'data', 'backer.sock');
  const env = backerEnv(spec);
  const daemon = await startDaemon(backer, join(dir, 'backer.yml'), socket, env);
  const pid = daemon.pid;
  try {
    await new Promise((r) => setTimeout(r, 2000));
    const idle = await kib(pid, 'VmRSS');
    const load = loadavg().map((l) => l.toFixed(1)).join(' ');
    const start = Date.now();
    const cpuBefore = await cpuSeconds(pid);
    const mandates = uploader === 'both' ? ['dump', 'dump-local'] : [uploader === 'local' ? 'dump-local' : 'dump'];
    const waited = Promise.all(mandates.map((m) => backupJob(socket, m)));
    const sampled = values.sample ? await sampleWhile(socket, waited) : undefined;
    await waited;
    const seconds = (Date.now() - start) / 1000;
    const cpu = (await cpuSeconds(pid)) - cpuBefore;
    return { ...(sampled ? { sampled } : {}), sizeMb, uploader: spec, cpuSeconds: cpu, idleMiB: idle / 1024, peakMiB: (await kib(pid, 'VmHWM')) / 1024, seconds, load };
  } finally {
    await daemon.stop();
  }
}

async function metricsOf(socket: string): Promise<Record<string, number>> {
  const text = await new Promise<string>((resolve, reject) => {
    get({ socketPath: socket, path: '/metrics' }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve(body));
      res.on('error', reject);
    }).on('error', reject);
  });
  const values: Record<string, number> = {};
  for (const m of text.matchAll(/^(process_resident_memory_bytes|nodejs_heap_size_used_bytes|nodejs_external_memory_bytes) (\S+)$/gm)) values[m[1] ?? ''] = Number(m[2]) / MIB;
  return values;
}

/** Samples /metrics every 250 ms until `done` settles (see --sample). */
async function sampleWhile(socket: string, done: Promise<unknown>): Promise<Sampled> {
  let finished = false;
  void done.finally(() => (finished = true));
  const best: Sampled = { rss: 0, heapUsed: 0, external: 0, maxExternal: 0 };
  while (!finished) {
    const m: Record<string, number> = await metricsOf(socket).catch(() => ({}));
    const rss = m.process_resident_memory_bytes ?? 0;
    const external = m.nodejs_external_memory_bytes ?? 0;
    best.maxExternal = Math.max(best.maxExternal, external);
    if (rss > best.rss) Object.assign(best, { rss, heapUsed: m.nodejs_heap_size_used_bytes ?? 0, external });
    await new Promise((r) => setTimeout(r, 250));
  }
  return best;
}

async function emptyBucket(s3: S3Service): Promise<void> {
  const client = new S3Client({ endpoint: s3.endpoint, region: s3.region, forcePathStyle: true, credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey } });
  const list = await client.send(new ListObjectsV2Command({ Bucket: 'bench' }));
  for (const o of list.Contents ?? []) await client.send(new DeleteObjectCommand({ Bucket: 'bench', Key: o.Key }));
  client.destroy();
}

const median = (xs: number[]): number => {
  const sorted = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? (sorted[mid] ?? NaN) : ((sorted[mid - 1] ?? NaN) + (sorted[mid] ?? NaN)) / 2;
};
const spread = (xs: number[]): string => `${Math.min(...xs).toFixed(0)}–${Math.max(...xs).toFixed(0)}`;

function report(backer: BackerBuild, results: Result[]): void {
  const s3opts = `part_size_mb ${values['part-size-mb'] ?? 'default'}, queue_size ${values['queue-size'] ?? 'default'}`;
  console.log(`\n${backer.describe}: ${values.once ? '`backup --once` processes' : 'backer daemon'}: ${values.source === 'mariadb' ? 'mysql mandate (MariaDB, Docker exec)' : 'files mandate'} → gzip → ccrypt → S3 (s3rver; "local": a local target), ${s3opts}, hash thread ${values['hash-thread'] ?? 'on'}${values['node-options'] ? `, NODE_OPTIONS=${values['node-options']}` : ''}${(values['daemon-env'] ?? []).map((e) => `, ${e}`).join('')}`);
  console.log('    dump  uploader      idle RSS   peak RSS (VmHWM)   over idle   wall      daemon CPU   load average (1/5/15 min) at start');
  for (const r of results) {
    console.log(
      `${String(r.sizeMb).padStart(6)} MiB  ${r.uploader.padEnd(12)}${r.idleMiB.toFixed(0).padStart(6)} MiB  ${r.peakMiB.toFixed(0).padStart(6)} MiB         +${(r.peakMiB - r.idleMiB).toFixed(0).padStart(3)} MiB   ${r.seconds.toFixed(1).padStart(6)} s  ${r.cpuSeconds.toFixed(1).padStart(6)} s     ${r.load}`,
    );
    const m = r.sampled;
    if (m) console.log(`          at the highest sampled RSS (${m.rss.toFixed(0)} MiB): V8 heap in use ${m.heapUsed.toFixed(0)} MiB, external ${m.external.toFixed(0)} MiB; highest external ${m.maxExternal.toFixed(0)} MiB`);
  }
  console.log('\n    dump  uploader      runs   over idle: median (min–max)   peak: median (min–max)   wall median   CPU median');
  for (const size of new Set(results.map((r) => r.sizeMb))) {
    for (const uploader of values.uploader ?? []) {
      const rs = results.filter((r) => r.sizeMb === size && r.uploader === uploader);
      const over = rs.map((r) => r.peakMiB - r.idleMiB);
      const peak = rs.map((r) => r.peakMiB);
      console.log(
        `${String(size).padStart(6)} MiB  ${uploader.padEnd(12)}${String(rs.length).padStart(4)}   +${median(over).toFixed(0).padStart(3)} MiB (${spread(over)})          ${median(peak).toFixed(0).padStart(4)} MiB (${spread(peak)})        ${median(rs.map((r) => r.seconds)).toFixed(1).padStart(6)} s    ${median(rs.map((r) => r.cpuSeconds)).toFixed(1).padStart(6)} s`,
      );
    }
  }
}

async function main(): Promise<void> {
  const backer = await prepareBacker(values.tsx ? 'tsx' : 'built');
  const dir = await mkdtemp(join(tmpdir(), 'bk-mem-'));
  const s3 = await startS3();
  let source: MemorySource | undefined;
  try {
    if (values.source !== 'files' && values.source !== 'mariadb') throw new Error(`--source: expected files or mariadb, got ${values.source}`);
    source = values.source === 'mariadb' ? await mariadbSource() : filesSource(dir, writeDump);
    const client = new S3Client({ endpoint: s3.endpoint, region: s3.region, forcePathStyle: true, credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey } });
    await client.send(new CreateBucketCommand({ Bucket: 'bench' }));
    client.destroy();
    await writeFile(join(dir, 'backer.yml'), config(dir, s3, source));
    const results: Result[] = [];
    for (const size of values['size-mb'] ?? []) {
      await source.prepare(Number(size));
      for (let round = 0; round < Number(values.rounds); round++) {
        for (const uploader of values.uploader ?? []) {
          results.push(await measure(backer, dir, Number(size), uploader));
          await emptyBucket(s3);
          await rm(join(dir, 'local'), { recursive: true, force: true });
        }
      }
    }
    report(backer, results);
  } finally {
    await source?.close();
    await s3.stop();
    await backer.close();
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
