import { spawn, type ChildProcess } from 'node:child_process';
import { callApi } from '../../src/cli/client.js';
import type { Job } from '../../src/queue/types.js';
import { cliArgs } from './cli.js';
import { testProcessEnv } from './env.js';

export interface DaemonProcess {
  child: ChildProcess;
  /** stdout and stderr so far (the JSON log lines). */
  output(): string;
  /** SIGTERM, then the exit code (or the signal that killed it). */
  stop(): Promise<number | NodeJS.Signals | null>;
}

export interface DaemonProcessOptions {
  /** Added to the test environment of the process. */
  env?: Record<string, string>;
  /** Octal umask the process starts with, e.g. `000`. Default: the test runner's. */
  umask?: string;
  /** Node `--import` modules (TypeScript, loaded after tsx) run before Backer: test probes. */
  imports?: string[];
  /** A command that runs node (`[wrapper, ...args, node, …]`), e.g. a sandbox. Not with `umask`. */
  wrapper?: string[];
}

/** A real `backer daemon` process (tsx, from source), started through sh when a umask is asked for. */
export function spawnDaemon(configPath: string, options: DaemonProcessOptions = {}): DaemonProcess {
  // cliArgs starts with `--import tsx`: the probes come right after it, so they may be TypeScript.
  const [importFlag = '--import', tsx = 'tsx', ...rest] = cliArgs(['daemon', '--config', configPath]);
  const nodeArgs = [importFlag, tsx, ...(options.imports ?? []).flatMap((m) => ['--import', m]), ...rest];
  const env = { ...testProcessEnv(), ...options.env };
  const [wrapper, ...wrapperArgs] = options.wrapper ?? [];
  const child =
    wrapper !== undefined
      ? spawn(wrapper, [...wrapperArgs, process.execPath, ...nodeArgs], { env })
      : options.umask === undefined
        ? spawn(process.execPath, nodeArgs, { env })
        : spawn('sh', ['-c', `umask ${options.umask} && exec "$0" "$@"`, process.execPath, ...nodeArgs], { env });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const closed = new Promise<number | NodeJS.Signals | null>((resolve) => child.on('close', (code, signal) => resolve(code ?? signal)));
  return {
    child,
    output: () => out,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      return closed;
    },
  };
}

/** Waits until the daemon answers GET /v1/health on its socket; fails with its output otherwise. */
export async function waitForHealth(daemon: DaemonProcess, socket: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (daemon.child.exitCode !== null) throw new Error(`daemon exited with ${daemon.child.exitCode}:\n${daemon.output()}`);
    const ok = await callApi<{ status: string }>(socket, 'GET', '/v1/health').then((h) => h.status === 'ok', () => false);
    if (ok) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`daemon did not answer on ${socket}:\n${daemon.output()}`);
}

/** Waits for job `id` to end (long polls of GET /v1/jobs/ID?wait=30) and returns it. */
export async function jobEnded(socket: string, id: string): Promise<Job> {
  let { job } = await callApi<{ job: Job }>(socket, 'GET', `/v1/jobs/${id}?wait=30`);
  while (job.state === 'queued' || job.state === 'running') ({ job } = await callApi<{ job: Job }>(socket, 'GET', `/v1/jobs/${id}?wait=30`));
  return job;
}

/** Queues a backup of `mandate` through the daemon's API and returns the job once it ended. */
export async function backupThroughApi(socket: string, mandate: string): Promise<Job> {
  const { job } = await callApi<{ job: Job }>(socket, 'POST', `/v1/mandates/${mandate}/backups`);
  return jobEnded(socket, job.id);
}
