/**
 * Names of the temp files a local target writes before it publishes an object:
 * `.<basename>.partial-<pid>.<owner tag>-<random hex>`. The owner tag is a short hash of the
 * writing process's host and start (ProcessOwner), so the start-up sweep can tell a temp file of
 * a process that still runs (a `backer backup --once` beside the daemon) from one a killed
 * process left, and a reused pid never passes for the old writer. Versions before the sweep
 * wrote `.<basename>.partial-<random hex>` (no owner): such files always count as abandoned.
 */
import { createHash, randomBytes } from 'node:crypto';
import { currentOwner, pidExists, processStart } from '../state/owner.js';

/** Either form; `list` never reports such a file and no key segment may take such a name. */
export const TEMP_PATTERN = /^\..*\.partial-(?:\d+\.[0-9a-f]{8}-)?[0-9a-f]+$/;

const OWNED_PATTERN = /\.partial-(\d+)\.([0-9a-f]{8})-[0-9a-f]+$/;

function ownerTag(host: string, start: string | null): string {
  return createHash('sha256').update(`${host}\n${start ?? ''}`).digest('hex').slice(0, 8);
}

/** A fresh temp file name for `base` (a file name, not a path), owned by this process. */
export function tempName(base: string): string {
  const me = currentOwner();
  return `.${base}.partial-${me.pid}.${ownerTag(me.host, me.start)}-${randomBytes(6).toString('hex')}`;
}

/**
 * Whether the process that wrote the temp file `name` may still be writing it. False for the
 * old form, for another host's process (its tag cannot match) and for a pid now held by another
 * process (another start). Without /proc only the pid can be checked.
 */
export function tempOwnerAlive(name: string): boolean {
  const match = OWNED_PATTERN.exec(name);
  if (match === null) return false;
  const pid = Number(match[1]);
  const tag = match[2];
  const me = currentOwner();
  if (me.start === null) return ownerTag(me.host, null) === tag && pidExists(pid);
  const start = processStart(pid);
  return start !== null && ownerTag(me.host, start) === tag;
}
