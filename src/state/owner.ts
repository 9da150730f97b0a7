import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';

/**
 * Who did something that must be undone after a crash (a stopped container, a helper container):
 * a process, named so that a reused pid is never mistaken for it.
 */
export interface ProcessOwner {
  pid: number;
  /**
   * `<boot id>:<field 22 of /proc/<pid>/stat>` (clock ticks after boot): unique per process, also
   * across reboots (a container's pid 1 may start at the same tick); null without /proc.
   */
  start: string | null;
  /** os.hostname(): pids of another host (or container) cannot be checked from here. */
  host: string;
}

function readProc(path: string): string | null {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch {
    return null;
  }
}

/** The start of a process as ProcessOwner.start, or null when it does not exist (or no /proc). */
export function processStart(pid: number): string | null {
  const stat = readProc(`/proc/${pid}/stat`);
  if (stat === null) return null;
  // The command name (field 2) may hold spaces and parentheses: count from its closing one.
  const ticks = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  if (ticks === undefined) return null;
  return `${readProc('/proc/sys/kernel/random/boot_id') ?? 'unknown-boot'}:${ticks}`;
}

let self: ProcessOwner | undefined;

export function currentOwner(): ProcessOwner {
  self ??= { pid: process.pid, start: processStart(process.pid), host: hostname() };
  return self;
}

/** Whether a process with this pid exists (EPERM: it does, owned by another user). */
export function pidExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Whether the owner may still be running. An owner on another host cannot be checked and counts
 * as gone: a daemon recreated in a new container must still undo what its predecessor left.
 */
export function ownerAlive(owner: ProcessOwner): boolean {
  const me = currentOwner();
  if (owner.host !== me.host) return false;
  if (owner.start === null || me.start === null) return pidExists(owner.pid);
  // Our own pid with another start: a predecessor with the same pid (a container's pid 1).
  if (owner.pid === me.pid) return owner.start === me.start;
  return processStart(owner.pid) === owner.start;
}

/** Docker labels naming the owner of a helper container. */
export const OWNER_LABELS = { pid: 'backer.owner.pid', start: 'backer.owner.start', host: 'backer.owner.host' } as const;

export function ownerLabels(owner: ProcessOwner = currentOwner()): Record<string, string> {
  return { [OWNER_LABELS.pid]: String(owner.pid), [OWNER_LABELS.start]: owner.start ?? '', [OWNER_LABELS.host]: owner.host };
}

/** The owner named by a container's labels, or null when they are missing (older helpers). */
export function ownerFromLabels(labels: Record<string, string>): ProcessOwner | null {
  const pid = Number(labels[OWNER_LABELS.pid]);
  const host = labels[OWNER_LABELS.host];
  if (!Number.isInteger(pid) || pid <= 0 || host === undefined) return null;
  const start = labels[OWNER_LABELS.start];
  return { pid, start: start === undefined || start === '' ? null : start, host };
}
