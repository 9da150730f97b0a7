import { getPriority, setPriority } from 'node:os';

/**
 * The CPU priority of the work Backer adds to a job: the middleware programs (compressors,
 * encryptors) and the checksum thread run `queue.nice` steps below Backer's own priority, as
 * `nice -n` would start them. The dump (in its container), the database and Backer's main thread
 * keep theirs, so that on a busy host the database and its dump get the CPU first and the added
 * work fills what they leave; with cores to spare, nothing changes.
 *
 * Process-wide, like the hash threads it applies to: set once from the config (createServices).
 */

/** queue.nice's default. */
export const DEFAULT_WORK_NICE = 10;
/** Linux's lowest priority. */
const LOWEST = 19;

let increment = DEFAULT_WORK_NICE;
/** Where a priority that could not be lowered is reported (the daemon's log); default: a process warning. */
let report = (message: string): void => process.emitWarning(message);

/**
 * How many steps below Backer's own priority the added work runs (0: the same), and where a
 * failure to lower it is reported. Such a failure (a sandbox that refuses setpriority) never fails
 * a job: the work then runs at Backer's priority, and the report says so.
 */
export function setWorkNice(steps: number, onFailure?: (message: string) => void): void {
  increment = steps;
  if (onFailure) report = onFailure;
}

const reported = new Set<string>();

/** Reports, once per program and reason, that the priority of `what` could not be lowered (the job goes on at Backer's). */
export function reportPriorityFailure(what: string, reason: string): void {
  const message = `queue.nice: could not lower the priority of ${what}, it runs at Backer's: ${reason}`;
  if (reported.has(message)) return;
  reported.add(message);
  report(message);
}

/** The nice value for added work: Backer's own plus the increment, at most 19; null when there is nothing to lower. */
export function workNice(): number | null {
  if (increment === 0) return null;
  const own = getPriority();
  return own >= LOWEST ? null : Math.min(LOWEST, own + increment);
}

/**
 * Lowers a just-started child's priority to workNice(). A child that already exited (ESRCH) has
 * nothing to lower; any other failure is reported (reportPriorityFailure) and the child runs on.
 */
export function lowerChildPriority(pid: number | undefined, command: string): void {
  const nice = workNice();
  if (nice === null || pid === undefined) return;
  try {
    setPriority(pid, nice);
  } catch (err) {
    if ((err as { info?: { code?: string } }).info?.code === 'ESRCH') return;
    reportPriorityFailure(command, err instanceof Error ? err.message : String(err));
  }
}
