/**
 * Start-up sweep of a local target: temp files (`.<base>.partial-*`, see temp-names.ts) anywhere
 * under the root whose writer no longer runs are removed. A temp file of a live process (this
 * daemon, or a `backer backup --once` beside it) is left alone. Complete objects are never touched.
 */
import { lstat, readdir, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { describeError } from '../errors.js';
import type { Logger } from '../logging/logger.js';
import { TEMP_PATTERN, tempOwnerAlive } from './temp-names.js';
import type { SweepReport } from './types.js';

function errnoCode(err: unknown): string | undefined {
  return err instanceof Error && 'code' in err && typeof err.code === 'string' ? err.code : undefined;
}

const GONE = new Set(['ENOENT', 'ENOTDIR']);

/** Removes one abandoned temp file; a file that vanished meanwhile (its writer finished) is skipped. */
async function removeTemp(path: string, key: string, report: SweepReport, logger: Logger): Promise<void> {
  try {
    const info = await lstat(path);
    await unlink(path);
    report.removed.push({ key, bytes: info.size, kind: 'partial' });
    logger.debug({ object: key, bytes: info.size }, 'removed an abandoned temp file');
  } catch (err) {
    if (GONE.has(errnoCode(err) ?? '')) return;
    report.failed.push({ key, error: describeError(err) });
  }
}

async function sweepDir(dir: string, rel: string, report: SweepReport, logger: Logger): Promise<void> {
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (err) {
    if (GONE.has(errnoCode(err) ?? '')) return;
    // The root itself must be readable; a subdirectory that is not is reported and skipped.
    if (rel === '') throw err;
    report.failed.push({ key: `${rel}/`, error: describeError(err) });
    return;
  }
  for (const entry of entries) {
    const key = rel === '' ? entry.name : `${rel}/${entry.name}`;
    // Symlinks are never followed: they could lead outside the root.
    if (entry.isDirectory()) await sweepDir(join(dir, entry.name), key, report, logger);
    else if (entry.isFile() && TEMP_PATTERN.test(entry.name) && !tempOwnerAlive(entry.name)) {
      await removeTemp(join(dir, entry.name), key, report, logger);
    }
  }
}

/** Sweeps every directory under `root`; a missing root has nothing to sweep. */
export async function sweepTempFiles(root: string, logger: Logger): Promise<SweepReport> {
  const report: SweepReport = { removed: [], failed: [] };
  await sweepDir(root, '', report, logger);
  return report;
}
