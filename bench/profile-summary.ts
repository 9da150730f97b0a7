/**
 * Summarises V8 CPU profiles (`node --cpu-prof`): self time per function, grouped into the parts
 * of a backup (hashing, gzip, S3 SDK, stream plumbing …), for bench/README.md "Profile".
 *
 *   node --import tsx bench/profile-summary.ts FILE.cpuprofile [FILE2.cpuprofile …] [--top 25]
 */
import { readFile } from 'node:fs/promises';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
}
interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

export interface ProfileSummary {
  totalMs: number;
  byFunction: Map<string, number>;
  byGroup: Map<string, number>;
}

const GROUPS: [string, RegExp][] = [
  ['idle (waiting on I/O, other processes)', /^\(idle\)/],
  ['garbage collector', /^\(garbage collector\)/],
  ['hashing (md5 + sha256: Hash.update/digest)', /crypto\/hash|hash-worker|hash\.(ts|js)|HashingStream|CheckingStream/],
  ['S3 SDK checksums (CRC32 of each part)', /crc32|crc-32|Crc32|checksum/i],
  ['gzip (zlib)', /zlib/],
  ['S3 SDK + HTTP (@aws-sdk, @smithy, node:http)', /@aws-sdk|@smithy|_http_|node:http|node:https|node:net|node:tls|internal\/http/],
  ['tsx / module loading (start-up)', /tsx|esbuild|internal\/modules|node:module/],
  ['stream plumbing (node:stream, pipeline, fan-out)', /internal\/streams|node:stream|fanout|stream\/promises/],
  ['child processes, pipes (docker exec, ccrypt)', /child_process|internal\/child|net\.js|stream_base|pipe/],
  ['native / program (V8, libuv, memcpy)', /^\(program\)/],
];

function label(frame: CallFrame): string {
  const url = frame.url.replace(/^file:\/\/.*?\/(node_modules|src|bench)\//, '$1/');
  return `${frame.functionName || '(anonymous)'} ${url}${url ? `:${frame.lineNumber + 1}` : ''}`;
}

function groupOf(key: string): string {
  for (const [name, re] of GROUPS) if (re.test(key)) return name;
  return 'other JavaScript';
}

export function summarise(profile: CpuProfile, into?: ProfileSummary): ProfileSummary {
  const out = into ?? { totalMs: 0, byFunction: new Map(), byGroup: new Map() };
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  for (let i = 0; i < profile.samples.length; i++) {
    const node = byId.get(profile.samples[i] ?? -1);
    const ms = (profile.timeDeltas[i] ?? 0) / 1000;
    if (!node) continue;
    const key = label(node.callFrame);
    out.totalMs += ms;
    out.byFunction.set(key, (out.byFunction.get(key) ?? 0) + ms);
    const group = groupOf(key);
    out.byGroup.set(group, (out.byGroup.get(group) ?? 0) + ms);
  }
  return out;
}

export function format(summary: ProfileSummary, top: number): string {
  const pct = (ms: number): string => `${((100 * ms) / summary.totalMs).toFixed(1).padStart(5)} %`;
  const lines = [`wall time sampled: ${(summary.totalMs / 1000).toFixed(1)} s`, '', 'by part (self time):'];
  for (const [g, ms] of [...summary.byGroup].sort((a, b) => b[1] - a[1])) lines.push(`  ${pct(ms)}  ${(ms / 1000).toFixed(2).padStart(6)} s  ${g}`);
  lines.push('', `top ${top} functions (self time):`);
  for (const [f, ms] of [...summary.byFunction].sort((a, b) => b[1] - a[1]).slice(0, top)) lines.push(`  ${pct(ms)}  ${(ms / 1000).toFixed(2).padStart(6)} s  ${f}`);
  return lines.join('\n');
}

export async function summariseFiles(files: string[], top = 25): Promise<string> {
  const parts: string[] = [];
  for (const file of files) {
    const profile = JSON.parse(await readFile(file, 'utf8')) as CpuProfile;
    parts.push(`== ${file.replace(/^.*\//, '')}\n${format(summarise(profile), top)}`);
  }
  return parts.join('\n\n');
}

if (import.meta.url === `file://${process.argv[1] ?? ''}`) {
  const args = process.argv.slice(2);
  const topIndex = args.indexOf('--top');
  const top = topIndex >= 0 ? Number(args.splice(topIndex, 2)[1]) : 25;
  process.stdout.write(`${await summariseFiles(args, top)}\n`);
}
