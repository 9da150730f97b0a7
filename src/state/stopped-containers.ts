import { randomBytes } from 'node:crypto';
import { mkdir, open, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { BackerError, describeError } from '../errors.js';
import { currentOwner, type ProcessOwner } from './owner.js';

/**
 * Durable record of a container stopped for a copy, written before the stop and removed once
 * the container runs again: after a crash (kill -9, power loss) the next daemon start finds it and
 * starts the container. One file per stop (`<data_dir>/stopped-containers/<id>-<pid>-<rand>.json`),
 * written to a temp file, fsynced, renamed and the directory fsynced: a daemon and a
 * `backup --once` beside it never share or half-write a record.
 */
export interface StoppedRecord {
  container_id: string;
  container: string;
  mandate: string;
  stopped_at: string;
  owner: ProcessOwner;
}

export interface StoppedEntry {
  file: string;
  record: StoppedRecord;
}

const COMPONENT = 'state';

/** Where the records live. */
export function stoppedContainersDir(dataDir: string): string {
  return join(dataDir, 'stopped-containers');
}
const TEMP_PREFIX = '.tmp-';
/** A temp file this old was left by a writer that died before the rename (and before its stop). */
const STALE_TEMP_MS = 10 * 60_000;

async function fsyncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

function stateError(message: string, dir: string, cause: unknown): BackerError {
  return new BackerError('INTERNAL', `${message}: ${describeError(cause)}`, { component: COMPONENT, details: { dir }, cause });
}

/** Writes the record durably; resolves with its file, to pass to clearStopped. */
export async function recordStopped(dir: string, entry: Omit<StoppedRecord, 'owner' | 'stopped_at'>): Promise<string> {
  const owner = currentOwner();
  const record: StoppedRecord = { ...entry, stopped_at: new Date().toISOString(), owner };
  const name = `${entry.container_id.replace(/[^A-Za-z0-9_.-]/g, '_').slice(0, 64)}-${owner.pid}-${randomBytes(4).toString('hex')}.json`;
  const file = join(dir, name);
  const temp = join(dir, `${TEMP_PREFIX}${name}`);
  let created = false;
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const handle = await open(temp, 'wx', 0o600);
    created = true;
    try {
      await handle.writeFile(`${JSON.stringify(record)}\n`);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, file);
    await fsyncDir(dir);
  } catch (err) {
    if (created) await rm(temp, { force: true });
    throw stateError(`cannot record that container ${entry.container} is stopped for the copy (in ${dir}); it was not stopped`, dir, err);
  }
  return file;
}

/** Removes a record once its container runs again (or is gone). */
export async function clearStopped(file: string): Promise<void> {
  const dir = join(file, '..');
  try {
    await rm(file, { force: true });
    await fsyncDir(dir);
  } catch (err) {
    throw stateError(`cannot remove the stopped-container record ${file}`, dir, err);
  }
}

function isRecord(value: unknown): value is StoppedRecord {
  const r = value as Partial<StoppedRecord> | null;
  return (
    typeof r?.container_id === 'string' &&
    typeof r.container === 'string' &&
    typeof r.mandate === 'string' &&
    typeof r.owner?.pid === 'number' &&
    typeof r.owner.host === 'string'
  );
}

/**
 * Every record in the directory (none when it does not exist). Unreadable records are returned
 * in `invalid`, never dropped silently; stale temp files are removed.
 */
export async function listStopped(dir: string): Promise<{ entries: StoppedEntry[]; invalid: { file: string; reason: string }[] }> {
  const names = await readdir(dir).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return [];
    throw stateError(`cannot read the stopped-container records in ${dir}`, dir, err);
  });
  const entries: StoppedEntry[] = [];
  const invalid: { file: string; reason: string }[] = [];
  for (const name of names.sort()) {
    const file = join(dir, name);
    if (name.startsWith(TEMP_PREFIX)) {
      const age = Date.now() - ((await stat(file).catch(() => undefined))?.mtimeMs ?? Date.now());
      if (age > STALE_TEMP_MS) await rm(file, { force: true });
      continue;
    }
    if (!name.endsWith('.json')) continue;
    try {
      const parsed: unknown = JSON.parse(await readFile(file, 'utf8'));
      if (isRecord(parsed)) entries.push({ file, record: parsed });
      else invalid.push({ file, reason: 'not a stopped-container record' });
    } catch (err) {
      invalid.push({ file, reason: (err as Error).message });
    }
  }
  return { entries, invalid };
}
