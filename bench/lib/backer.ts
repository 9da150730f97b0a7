/**
 * Backer as users run it: bin/backer.js over the compiled CLI (dist/cli/main.js, built by this
 * bench into a private directory so that other builds of the checkout cannot change it mid-run),
 * with the Node flags of the bin's shebang (`--max-semi-space-size=1`), or from source through
 * tsx (`--backer tsx`).
 */
import { spawn } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, readFile, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { callApi } from '../../src/cli/client.js';
import type { Command } from './proc.js';

const ROOT = join(import.meta.dirname, '..', '..');

export interface BackerBuild {
  /** How Backer runs, for the printout. */
  describe: string;
  command(args: string[], env?: Record<string, string>): Command;
  close(): Promise<void>;
}

async function run(file: string, args: string[], cwd: string): Promise<void> {
  const child = spawn(file, args, { cwd, stdio: ['ignore', 'inherit', 'inherit'] });
  const code = await new Promise<number>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (c) => resolve(c ?? -1));
  });
  if (code !== 0) throw new Error(`${file} ${args.join(' ')} exited ${code}`);
}

/** The Node flags after `node` in the first line of bin/backer.js (`#!/usr/bin/env -S node FLAGS`). */
async function shebangFlags(bin: string): Promise<string[]> {
  const first = (await readFile(bin, 'utf8')).split('\n', 1)[0] ?? '';
  const words = first.replace(/^#!/, '').trim().split(/\s+/);
  const node = words.indexOf('node');
  if (node === -1) throw new Error(`${bin}: no node in its shebang: ${first}`);
  return words.slice(node + 1);
}

/** `tsc -p tsconfig.build.json` into a temp dir beside links to the checkout's package.json and node_modules. */
export async function prepareBacker(mode: 'built' | 'tsx'): Promise<BackerBuild> {
  if (mode === 'tsx') {
    const main = join(ROOT, 'src', 'cli', 'main.ts');
    return {
      describe: `node --import tsx src/cli/main.ts (from source, tsx compiles at start)`,
      command: (args, env) => ({ file: process.execPath, args: ['--import', 'tsx', main, ...args], env }),
      close: () => Promise.resolve(),
    };
  }
  const dir = await mkdtemp(join(tmpdir(), 'bk-bench-build-'));
  process.stderr.write(`building Backer (tsc -p tsconfig.build.json) into ${dir}/dist…\n`);
  await run(process.execPath, [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.build.json', '--outDir', join(dir, 'dist')], ROOT);
  await symlink(join(ROOT, 'package.json'), join(dir, 'package.json'));
  await symlink(join(ROOT, 'node_modules'), join(dir, 'node_modules'));
  await mkdir(join(dir, 'bin'));
  const bin = join(dir, 'bin', 'backer.js');
  await copyFile(join(ROOT, 'bin', 'backer.js'), bin);
  // BACKER_BENCH_NODE_FLAGS (e.g. empty) replaces the shebang's flags: a before/after of the flags.
  const override = process.env.BACKER_BENCH_NODE_FLAGS;
  const flags = override === undefined ? await shebangFlags(bin) : override.split(/\s+/).filter((f) => f !== '');
  return {
    describe: `node ${[...flags, 'bin/backer.js'].join(' ')} (flags: ${override === undefined ? "the bin's shebang" : 'BACKER_BENCH_NODE_FLAGS'}; tsc -p tsconfig.build.json of the working tree at bench start)`,
    command: (args, env) => ({ file: process.execPath, args: [...flags, bin, ...args], env }),
    close: () => rm(dir, { recursive: true, force: true }),
  };
}

export interface RunningDaemon {
  pid: number;
  socket: string;
  /** Seconds from spawn to the first answer of GET /v1/health, and to its status `ok`. */
  firstAnswer: number;
  ready: number;
  stop(): Promise<void>;
}

async function health(socket: string): Promise<string | null> {
  return callApi<{ status: string }>(socket, 'GET', '/v1/health').then(
    (h) => h.status,
    () => null,
  );
}

/** Starts `backer daemon` and polls GET /v1/health over its socket every 10 ms until it is ok. */
export async function startDaemon(backer: BackerBuild, config: string, socket: string, env: Record<string, string> = {}): Promise<RunningDaemon> {
  const command = backer.command(['daemon', '--config', config], env);
  const start = performance.now();
  const child = spawn(command.file, command.args, { env: { ...process.env, ...command.env }, stdio: ['ignore', 'ignore', 'inherit'] });
  const closed = new Promise<void>((resolve) => child.once('close', () => resolve()));
  let exited = false;
  void closed.then(() => (exited = true));
  let firstAnswer = NaN;
  for (;;) {
    const status = await health(socket);
    const now = (performance.now() - start) / 1000;
    if (status !== null && Number.isNaN(firstAnswer)) firstAnswer = now;
    if (status === 'ok') {
      const stop = async (): Promise<void> => {
        child.kill('SIGTERM');
        await closed;
      };
      return { pid: child.pid ?? 0, socket, firstAnswer, ready: now, stop };
    }
    if (exited) throw new Error(`backer daemon --config ${config} exited before it answered`);
    if (now > 60) {
      child.kill('SIGTERM');
      throw new Error('backer daemon did not answer within 60 s');
    }
    await new Promise((r) => setTimeout(r, 10));
  }
}
