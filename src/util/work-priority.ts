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

/** How many steps below Backer's own priority the added work runs (0: the same). */
export function setWorkNice(steps: number): void {
  increment = steps;
}

/** The nice value for added work: Backer's own plus the increment, at most 19; null when there is nothing to lower. */
export function workNice(): number | null {
  if (increment === 0) return null;
  const own = getPriority();
  return own >= LOWEST ? null : Math.min(LOWEST, own + increment);
}

/**
 * Lowers a just-started child's priority to workNice(). A child that already exited (ESRCH) has
 * nothing to lower; any other failure is thrown (raising a nice value needs no privilege).
 */
export function lowerChildPriority(pid: number | undefined): void {
  const nice = workNice();
  if (nice === null || pid === undefined) return;
  try {
    setPriority(pid, nice);
  } catch (err) {
    if ((err as { info?: { code?: string } }).info?.code !== 'ESRCH') throw err;
  }
}
