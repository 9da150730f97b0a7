import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { Duplex } from 'node:stream';
import { BackerError } from '../errors.js';
import { cancelledError } from './abort.js';
import { childEnv } from './child-env.js';
import { lowerChildPriority } from './work-priority.js';

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
 *
 * The steps, in the order below: create the stream (`FilterRun`, `filterDuplex`), start the child
 * (`startChild`), watch its exit and stdin (`watchChild`), forward its stdout (`forwardStdout`),
 * keep the tail of its stderr (`collectStderr`); every event then asks `settle` whether the run
 * is over, and how.
 */
export function spawnDuplex(options: SpawnDuplexOptions): Duplex {
  const run = new FilterRun(options);
  if (options.signal.aborted) {
    // Next tick: a pipeline built in this tick must see the error (Node 22+ refuses to pipe into
    // a stream that is already destroyed, and the error would escape uncaught).
    process.nextTick(run.onAbort);
    return run.duplex;
  }
  options.signal.addEventListener('abort', run.onAbort, { once: true });
  const child = startChild(run);
  if (child === undefined) return run.duplex;
  run.child = child;
  watchChild(run, child);
  forwardStdout(run, child);
  collectStderr(run, child);
  return run.duplex;
}

/** What the steps share: the stream, the child once started, and what has happened to it so far. */
class FilterRun {
  /** How messages name the program. */
  readonly command: string;
  readonly duplex: Duplex;
  child: ChildProcessWithoutNullStreams | undefined;
  exit: ExitStatus | undefined;
  stdoutEnded = false;
  /** The readable side was ended (push(null)): exactly once. */
  outputEnded = false;
  stdinBroken = false;
  stderrClosed = false;
  stderrTail = Buffer.alloc(0);
  stderrTimer: NodeJS.Timeout | undefined;

  constructor(readonly options: SpawnDuplexOptions) {
    this.command = options.name ?? options.command;
    this.duplex = filterDuplex(this);
  }

  readonly onAbort = (): void => {
    this.fail(cancelledError(this.options.component, this.options.signal.reason));
  };

  fail(err: BackerError): void {
    this.duplex.destroy(err);
  }

  failure(message: string, details: Record<string, unknown> = {}, cause?: unknown): BackerError {
    return new BackerError('MIDDLEWARE_FAILED', message, { component: this.options.component, details: { command: this.command, ...details }, cause });
  }
}

/** The stream itself: writes feed the child's stdin, reads resume its stdout, destroy stops it. */
function filterDuplex(run: FilterRun): Duplex {
  return new Duplex({
    write(chunk: Buffer, _encoding, callback) {
      // A broken stdin means the child stopped reading; holding the callback stops the writer
      // until the child's exit status destroys this stream with the real reason.
      const child = run.child;
      if (child === undefined || run.stdinBroken) return;
      if (child.stdin.write(chunk)) callback();
      else child.stdin.once('drain', () => callback());
    },
    final(callback) {
      const child = run.child;
      if (child === undefined || run.stdinBroken) return;
      child.stdin.once('finish', () => callback());
      child.stdin.end();
    },
    read() {
      run.child?.stdout.resume();
    },
    destroy(err, callback) {
      run.options.signal.removeEventListener('abort', run.onAbort);
      if (run.stderrTimer !== undefined) clearTimeout(run.stderrTimer);
      stopChild(run.child, () => callback(err));
    },
  });
}

/** Kills a running child (SIGTERM, SIGKILL after a grace) and calls `done` once it was reaped. */
function stopChild(child: ChildProcessWithoutNullStreams | undefined, done: () => void): void {
  if (child === undefined || !isRunning(child)) {
    if (child !== undefined) closeStdio(child);
    done();
    return;
  }
  const killer = setTimeout(() => child.kill('SIGKILL'), KILL_GRACE_MS);
  // 'exit' comes after Node reaped the child, so no zombie outlives this stream.
  child.once('exit', () => {
    clearTimeout(killer);
    closeStdio(child);
    done();
  });
  child.kill('SIGTERM');
}

/** Spawns the program with PATH and its own variables only, at the added work's priority; a synchronous failure fails the stream. */
function startChild(run: FilterRun): ChildProcessWithoutNullStreams | undefined {
  const { options } = run;
  try {
    const child = spawn(options.command, options.args, {
      // Only PATH and the tool's own variables: Backer's environment holds credentials (see childEnv).
      env: childEnv(options.env),
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    // Work Backer adds to the dump runs below the database's priority (queue.nice).
    lowerChildPriority(child.pid, run.command);
    return child;
  } catch (err) {
    run.fail(run.failure(`cannot start ${run.command}: ${messageOf(err)}`, {}, err));
    return undefined;
  }
}

/** Spawn errors (a missing program), the exit status, and a stdin the child stopped reading. */
function watchChild(run: FilterRun, child: ChildProcessWithoutNullStreams): void {
  const { command } = run;
  child.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') {
      const options = { component: run.options.component, details: { command }, cause: err, permanent: true };
      run.fail(new BackerError('TOOL_MISSING', `${command} is not installed (not found in PATH)`, options));
    } else {
      run.fail(run.failure(`cannot run ${command}: ${err.message}`, {}, err));
    }
  });
  child.on('exit', (code, signal) => {
    run.exit = { code, signal };
    settle(run);
  });
  // EPIPE/ECONNRESET land here when the child quits early; its exit status tells why.
  child.stdin.on('error', () => {
    run.stdinBroken = true;
    settle(run);
  });
}

/** The child's stdout becomes the stream's readable side, paused while the reader is full. */
function forwardStdout(run: FilterRun, child: ChildProcessWithoutNullStreams): void {
  child.stdout.on('data', (chunk: Buffer) => {
    if (!run.duplex.push(chunk)) child.stdout.pause();
  });
  child.stdout.on('end', () => {
    run.stdoutEnded = true;
    settle(run);
  });
  child.stdout.on('error', (err) => {
    run.fail(run.failure(`cannot read the output of ${run.command}: ${err.message}`, {}, err));
  });
}

/** Keeps the last STDERR_LIMIT bytes of stderr for the error message of a failed exit. */
function collectStderr(run: FilterRun, child: ChildProcessWithoutNullStreams): void {
  child.stderr.on('data', (chunk: Buffer) => {
    run.stderrTail = Buffer.concat([run.stderrTail, chunk]);
    if (run.stderrTail.length > STDERR_LIMIT) run.stderrTail = run.stderrTail.subarray(run.stderrTail.length - STDERR_LIMIT);
  });
  child.stderr.on('error', () => undefined);
  child.stderr.on('close', () => {
    run.stderrClosed = true;
    settle(run);
  });
}

/**
 * Decides the end once the child exited: a failed exit fails the stream (with stderr, waiting a
 * little for its end); exit 0 with unread input fails it too; exit 0 with stdout at its end ends it.
 */
function settle(run: FilterRun): void {
  const status = run.exit;
  if (run.duplex.destroyed || status === undefined) return;
  if (status.code !== 0) {
    const failExit = (): void => run.fail(exitError(run.command, status, run.stderrTail, run.options.component));
    if (run.stderrClosed) failExit();
    else run.stderrTimer ??= setTimeout(failExit, STDERR_WAIT_MS);
    return;
  }
  if (run.stdinBroken) {
    run.fail(run.failure(`${run.command} exited before reading all of its input`, { exit_code: 0 }));
    return;
  }
  if (run.stdoutEnded && !run.outputEnded) {
    run.outputEnded = true;
    run.duplex.push(null);
  }
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
