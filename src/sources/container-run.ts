import { Transform, type Readable, type TransformCallback } from 'node:stream';
import type Docker from 'dockerode';
import type { Ref } from '../config/refs.js';
import { BackerError, type ErrorCode } from '../errors.js';
import { execCapture, execStream, lastLines, runningContainer, TailBuffer, type ContainerInfo, type ExecHandle, type ExecOptions } from './docker-exec.js';
import { resolveInContainer, type ResolveOptions } from './resolve.js';
import { streamTempFile } from './temp-copy.js';
import type { DumpContext } from './types.js';

/** How one command runs inside the container: never argv for secrets (use `env`). */
export type RunOptions = Omit<ExecOptions, 'cmd' | 'signal'>;

export interface CapturedRun {
  exitCode: number;
  stdout: string;
  stderr: string;
}

/**
 * What a container source needs to act inside its container, bound to one job: the container's
 * inspect data, commands with stdout and stdin, a tool probe, `Env:`/`File:` resolution, temp
 * files that are always removed, and completeness checks on a dump stream. Each source file then
 * holds only what is specific to its engine.
 */
export interface ContainerRun {
  readonly info: ContainerInfo;
  readonly name: string;
  readonly docker: Docker;
  readonly context: DumpContext;
  readonly component: string;
  /** Starts a command; its stdout streams (and `stdin`, when given, is fed to it). */
  exec(cmd: string[], options?: RunOptions): Promise<ExecHandle>;
  /** Runs a short command to its end (probes, queries), whatever its exit code. */
  capture(cmd: string[], options?: RunOptions): Promise<CapturedRun>;
  /**
   * Runs a command to its end and returns its stdout; a non-zero exit rejects with `code`
   * (default DUMP_FAILED) naming the command and the last lines of its output.
   */
  run(cmd: string[], options?: RunOptions & { code?: ErrorCode; what?: string }): Promise<string>;
  /** The first of `tools` that answers `--version` (exit 0): its name and first output line. TOOL_MISSING otherwise. */
  probe(tools: readonly string[], options?: { user?: string; wrap?: (cmd: string[]) => string[] }): Promise<{ tool: string; version: string }>;
  /** Resolves a label reference (`Env:`, `File:`, literal) against this container. */
  resolve(ref: Ref, options?: ResolveOptions): Promise<string>;
  /**
   * Wraps a dump command's stdout: the result ends only if the command exited 0 and `complete`
   * accepts the stream's last bytes (returns null); otherwise it errors (DUMP_FAILED /
   * DUMP_TRUNCATED with the returned reason), so that no target keeps a partial dump.
   */
  verified(handle: ExecHandle, tool: string, complete?: CompletenessCheck): Readable;
  /** Streams `file` out of the container (with `verifier`) and always removes it and `extra` afterwards. */
  streamTempFile(file: string, extra: string[], verifier: (result: () => Promise<{ exitCode: number; stderr: string }>) => Transform): Promise<Readable>;
  /**
   * Feeds `input` to a command's stdin and resolves with its stdout once it exited 0. An error of
   * `input` or a non-zero exit rejects with RESTORE_FAILED naming the command's last output lines.
   */
  feed(cmd: string[], input: Readable, options?: RunOptions): Promise<string>;
}

export interface CompletenessCheck {
  /** Bytes kept from the end of the stream for the check. Default 256. */
  tailBytes?: number;
  /** Called once with the first bytes (at most 2 KiB) of the stream, e.g. to read a header. */
  onHead?: (head: string) => void;
  /** null: complete; otherwise why the dump is incomplete. */
  check(tail: Buffer, size: number): string | null;
}

/** Inspects `container` (it must run) and binds a run context to it and the job. */
export async function openContainerRun(context: DumpContext, container: string | null, component: string): Promise<ContainerRun> {
  if (container === null) {
    throw new BackerError('LABEL_INVALID', `${component.replace(/^source /, '')} mandates need a container`, { component, permanent: true });
  }
  const info = await runningContainer(context.docker, container, component);
  return bindContainerRun(context, info, component);
}

/** A run context for a container already inspected (or just created, for a scratch restore). */
export function bindContainerRun(context: DumpContext, info: ContainerInfo, component: string): ContainerRun {
  const { docker, signal } = context;
  const name = info.name;
  const exec = (cmd: string[], options: RunOptions = {}): Promise<ExecHandle> => execStream(docker, name, { ...options, cmd, signal }, component);
  const capture = (cmd: string[], options: RunOptions = {}): Promise<CapturedRun> => execCapture(docker, name, { ...options, cmd, signal }, component);

  return {
    info,
    name,
    docker,
    context,
    component,
    exec,
    capture,
    async run(cmd, options = {}) {
      const { code, what, ...rest } = options;
      const result = await capture(cmd, rest);
      if (result.exitCode !== 0) {
        const reason = lastLines(result.stderr || result.stdout);
        throw new BackerError(code ?? 'DUMP_FAILED', `${what ?? cmd[0] ?? ''} in container ${name} exited with code ${result.exitCode}${reason ? `: ${reason}` : ''}`, {
          component,
          details: { container: name, exit_code: result.exitCode },
        });
      }
      return result.stdout;
    },
    probe: (tools, options = {}) => probeTools(capture, name, component, tools, options),
    async resolve(ref, options = {}) {
      const value = await resolveInContainer(ref, info, context, component, options);
      return value;
    },
    verified: (handle, tool, complete) => verifiedStream(handle, name, tool, component, complete),
    streamTempFile: (file, extra, verifier) =>
      streamTempFile({ docker, container: name, file, extra, signal, logger: context.logger, component, verifier }),
    feed: (cmd, input, options = {}) => feedCommand(exec, name, component, cmd, input, options),
  };
}

async function probeTools(
  capture: (cmd: string[], options?: RunOptions) => Promise<CapturedRun>,
  container: string,
  component: string,
  tools: readonly string[],
  options: { user?: string; wrap?: (cmd: string[]) => string[] },
): Promise<{ tool: string; version: string }> {
  for (const tool of tools) {
    try {
      const cmd = [tool, '--version'];
      const { exitCode, stdout, stderr } = await capture(options.wrap ? options.wrap(cmd) : cmd, options.user === undefined ? {} : { user: options.user });
      if (exitCode === 0) return { tool, version: (stdout || stderr).trim().split('\n')[0] ?? '' };
    } catch (err) {
      // A tool that is missing makes the exec fail in some engines; anything else is real.
      if (err instanceof BackerError && err.code !== 'DOCKER_UNAVAILABLE') throw err;
    }
  }
  throw new BackerError('TOOL_MISSING', `container ${container} has ${tools.length > 1 ? `none of ${tools.join(', ')}` : `no ${tools[0] ?? ''}`} on its PATH`, {
    component,
    details: { container, tools },
    permanent: true,
  });
}

function verifiedStream(handle: ExecHandle, container: string, tool: string, component: string, complete?: CompletenessCheck): Readable {
  const tail = new TailBuffer(complete?.tailBytes ?? 256);
  let head = '';
  let headDone = complete?.onHead === undefined;
  let size = 0;
  const check = new Transform({
    transform(chunk: Buffer, _enc, callback: TransformCallback) {
      tail.push(chunk);
      size += chunk.length;
      if (!headDone) {
        head += chunk.subarray(0, 2048 - head.length).toString('utf8');
        if (head.length >= 2048 || head.includes('\n\n')) {
          headDone = true;
          complete?.onHead?.(head);
        }
      }
      callback(null, chunk);
    },
    flush(callback: TransformCallback) {
      if (!headDone) complete?.onHead?.(head);
      handle.result().then(({ exitCode, stderr }) => {
        const reason = lastLines(stderr);
        if (exitCode !== 0) {
          callback(new BackerError('DUMP_FAILED', `${tool} in container ${container} exited with code ${exitCode}${reason ? `: ${reason}` : ''}`, {
            component,
            details: { container, exit_code: exitCode },
          }));
          return;
        }
        const incomplete = complete?.check(tail.bytes(), size) ?? null;
        if (incomplete !== null) {
          callback(new BackerError('DUMP_TRUNCATED', `${tool} output from container ${container} ${incomplete}: the dump is incomplete`, { component, details: { container } }));
          return;
        }
        callback();
      }, (err: unknown) => callback(err as Error));
    },
  });
  const stream = handle.stdout.pipe(check);
  handle.stdout.on('error', (err) => stream.destroy(err));
  stream.on('close', () => {
    if (!handle.stdout.destroyed) handle.stdout.destroy();
  });
  return stream;
}

async function feedCommand(
  exec: (cmd: string[], options?: RunOptions) => Promise<ExecHandle>,
  container: string,
  component: string,
  cmd: string[],
  input: Readable,
  options: RunOptions,
): Promise<string> {
  // An input that already failed (a decode that broke before the restore began) never ends: say why now.
  if (input.errored) throw input.errored;
  if (input.destroyed) throw new BackerError('RESTORE_FAILED', `the input of ${cmd[0] ?? ''} in container ${container} was closed before it started`, { component });
  const handle = await exec(cmd, { ...options, stdin: input });
  const chunks: Buffer[] = [];
  let inputError: unknown;
  input.once('error', (err) => (inputError = err));
  let readError: unknown;
  try {
    for await (const chunk of handle.stdout) chunks.push(chunk as Buffer);
  } catch (err) {
    readError = err;
  }
  // After a failure the command may still run (say, about to create its output file): the
  // caller's clean-up must come after its end, so its exit is always awaited.
  const exit = await handle.result().catch((err: unknown) => err as Error);
  // The input's own error (a hash mismatch, a decode that failed) is the cause of anything after it,
  // also when it came before anyone listened (while the exec was starting).
  if (inputError !== undefined) throw inputError as Error;
  const failedInput = input.errored;
  if (failedInput !== null) throw failedInput as Error;
  if (exit instanceof Error) throw exit;
  const { exitCode, stderr } = exit;
  const stdout = Buffer.concat(chunks).toString('utf8');
  if (exitCode !== 0) {
    const reason = lastLines(stderr || stdout);
    throw new BackerError('RESTORE_FAILED', `${cmd[0] ?? ''} in container ${container} exited with code ${exitCode}${reason ? `: ${reason}` : ''}`, {
      component,
      details: { container, exit_code: exitCode },
    });
  }
  if (readError !== undefined) throw readError as Error;
  // Success means every byte of the input reached the command: an input that stopped short
  // without an error of its own must not pass as a complete restore.
  if (!input.readableEnded) {
    throw new BackerError('RESTORE_FAILED', `${cmd[0] ?? ''} in container ${container} ended before its input did`, { component, details: { container } });
  }
  return stdout;
}
