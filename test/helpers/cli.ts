import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { testProcessEnv } from './env.js';

const MAIN = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the CLI from source (tsx), so tests never run a stale build. */
export function cliArgs(args: string[]): string[] {
  return ['--import', 'tsx', MAIN, ...args];
}

export async function cli(args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  return capture(process.execPath, cliArgs(args), { ...testProcessEnv(), ...env });
}

/** Runs a program to its end: its exit code (-1 when killed) and both outputs. */
export async function capture(command: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { env });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

/** `wrapper` runs before node, e.g. `['setpriv', '--bounding-set', '-dac_override', '--']`. */
export function spawnCli(args: string[], env: Record<string, string> = {}, wrapper: string[] = []): { child: ChildProcess; output: () => string } {
  const [command = process.execPath, ...rest] = [...wrapper, process.execPath, ...cliArgs(args)];
  const child = spawn(command, rest, { env: { ...testProcessEnv(), ...env } });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  return { child, output: () => out };
}
