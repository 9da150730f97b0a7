import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { Duplex } from 'node:stream';
import { BackerError } from '../errors.js';
import { cancelledError } from './abort.js';
import { childEnv } from './child-env.js';

export interface SpawnDuplexOptions {
  /** Program name, looked up in PATH, or a path. */
  command: string;
  /** Never put a secret here: argv is readable by every user through `ps` and /proc. */
  args: string[];
  /** Added to the child's environment, which otherwise holds only PATH. The place for secrets. Default: none. */
  env?: Record<string, string>;
  /** Aborting kills the child and errors the stream with JOB_CANCELLED. */
  signal: AbortSignal;
  /** Named in errors, e.g. `middleware ccrypt`. */
  component: string;
  /** How errors name the program when `command` only wraps it (`sh -c 'exec age …'`). Default: command. */
  name?: string;
}

/** Enough of stderr to explain a failure without letting a chatty tool grow memory. */
const STDERR_LIMIT = 8 * 1024;
/** A child that ignores SIGTERM this long gets SIGKILL. */
const KILL_GRACE_MS = 5_000;
/** After a failed exit, how long to wait for the rest of stderr (a grandchild may hold it open). */
const STDERR_WAIT_MS = 1_000;

interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/**
 * Runs a filter program as a Duplex: writes go to its stdin, reads come from its stdout, both with
 * backpressure. The readable side ends only once the child exited with code 0, so a truncated
 * output can never pass for a complete one; any failure destroys the stream with a BackerError.
 * Destroying the stream (or aborting `signal`) kills the child, and the stream reports 'close'
 * only after the child has been reaped.
 */
export function spawnDuplex(options: SpawnDuplexOptions): Duplex {
  const { args, signal, component } = options;
  const command = options.name ?? options.command;
  let child: ChildProcessWithoutNullStreams | undefined = undefined;
  let exit: ExitStatus | undefined;
  let stdoutEnded = false;
  let outputEnded = false;
  let stdinBroken = false;
  let stderrClosed = false;
  let stderrTail = Buffer.alloc(0);
  let stderrTimer: NodeJS.Timeout | undefined;

  const fail = (err: BackerError): void => {
    duplex.destroy(err);
  };
  const onAbort = (): void => {
    duplex.destroy(cancelledError(component, signal.reason));
  };

  const duplex = new Duplex({
    write(chunk: Buffer, _encoding, callback) {
      // A broken stdin means the child stopped reading; holding the callback stops the writer
      // until the child's exit status destroys this stream with the real reason.
      if (child === undefined || stdinBroken) return;
      if (child.stdin.write(chunk)) callback();
      else child.stdin.once('drain', () => callback());
    },
    final(callback) {
      if (child === undefined || stdinBroken) return;
      child.stdin.once('finish', () => callback());
      child.stdin.end();
    },
    read() {
      child?.stdout.resume();
    },
    destroy(err, callback) {
      signal.removeEventListener('abort', onAbort);
      if (stderrTimer !== undefined) clearTimeout(stderrTimer);
      const running = child;
      if (running === undefined || !isRunning(running)) {
        if (running !== undefined) closeStdio(running);
        callback(err);
        return;
      }
      const killer = setTimeout(() => running.kill('SIGKILL'), KILL_GRACE_MS);
      // 'exit' comes after Node reaped the child, so no zombie outlives this stream.
      running.once('exit', () => {
        clearTimeout(killer);
        closeStdio(running);
        callback(err);
      });
      running.kill('SIGTERM');
    },
  });

  if (signal.aborted) {
    // Next tick: a pipeline built in this tick must see the error (Node 22+ refuses to pipe into
    // a stream that is already destroyed, and the error would escape uncaught).
    process.nextTick(onAbort);
    return duplex;
  }
  signal.addEventListener('abort', onAbort, { once: true });

  const settle = (): void => {
    if (duplex.destroyed || exit === undefined) return;
    const status = exit;
    if (status.code !== 0) {
      if (stderrClosed) fail(exitError(command, status, stderrTail, component));
      else stderrTimer ??= setTimeout(() => fail(exitError(command, status, stderrTail, component)), STDERR_WAIT_MS);
      return;
    }
    if (stdinBroken) {
      fail(
        new BackerError('MIDDLEWARE_FAILED', `${command} exited before reading all of its input`, {
          component,
          details: { command, exit_code: 0 },
        }),
      );
      return;
    }
    if (stdoutEnded && !outputEnded) {
      outputEnded = true;
      duplex.push(null);
    }
  };

  let proc: ChildProcessWithoutNullStreams;
  try {
    proc = spawn(options.command, args, {
      // Only PATH and the tool's own variables: Backer's environment holds credentials (see childEnv).
      env: childEnv(options.env),
      stdio: ['pipe', 'pipe', 'pipe'],
    });
  } catch (err) {
    fail(new BackerError('MIDDLEWARE_FAILED', `cannot start ${command}: ${messageOf(err)}`, { component, details: { command }, cause: err }));
    return duplex;
  }
  child = proc;

  proc.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') {
      fail(
        new BackerError('TOOL_MISSING', `${command} is not installed (not found in PATH)`, {
          component,
          details: { command },
          cause: err,
          permanent: true,
        }),
      );
    } else {
      fail(new BackerError('MIDDLEWARE_FAILED', `cannot run ${command}: ${err.message}`, { component, details: { command }, cause: err }));
    }
  });
  proc.on('exit', (code, exitSignal) => {
    exit = { code, signal: exitSignal };
    settle();
  });

  // EPIPE/ECONNRESET land here when the child quits early; its exit status tells why.
  proc.stdin.on('error', () => {
    stdinBroken = true;
    settle();
  });

  proc.stdout.on('data', (chunk: Buffer) => {
    if (!duplex.push(chunk)) proc.stdout.pause();
  });
  proc.stdout.on('end', () => {
    stdoutEnded = true;
    settle();
  });
  proc.stdout.on('error', (err) => {
    fail(new BackerError('MIDDLEWARE_FAILED', `cannot read the output of ${command}: ${err.message}`, { component, details: { command }, cause: err }));
  });

  proc.stderr.on('data', (chunk: Buffer) => {
    stderrTail = Buffer.concat([stderrTail, chunk]);
    if (stderrTail.length > STDERR_LIMIT) stderrTail = stderrTail.subarray(stderrTail.length - STDERR_LIMIT);
  });
  proc.stderr.on('error', () => undefined);
  proc.stderr.on('close', () => {
    stderrClosed = true;
    settle();
  });

  return duplex;
}

function isRunning(child: ChildProcessWithoutNullStreams): boolean {
  // A failed spawn has no pid and emits 'error' instead of 'exit'.
  return child.pid !== undefined && child.exitCode === null && child.signalCode === null;
}

/** Frees the pipes even when a grandchild still holds their other ends. */
function closeStdio(child: ChildProcessWithoutNullStreams): void {
  child.stdin.destroy();
  child.stdout.destroy();
  child.stderr.destroy();
}

function exitError(command: string, exit: ExitStatus, stderrTail: Buffer, component: string): BackerError {
  const stderr = stderrTail.toString('utf8').trim();
  const how = exit.signal !== null ? `was killed by ${exit.signal}` : `exited with code ${String(exit.code)}`;
  return new BackerError('MIDDLEWARE_FAILED', `${command} ${how}${stderr === '' ? '' : `: ${stderr}`}`, {
    component,
    details: { command, exit_code: exit.code, signal: exit.signal, stderr },
  });
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
