import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { BackerError } from '../errors.js';
import type { MandateSpec } from '../mandates/types.js';
import type { VerificationCheck } from '../manifests/verification.js';
import type { DumpContext, RestoreDestination, RestoreRequest } from '../sources/types.js';
import { openDecoded } from './decode.js';
import type { LocatedBackup } from './find-backup.js';
import type { BackupServices } from './run-backup.js';
import { createScratch, removeScratch, waitUntilReady } from './scratch.js';

const SCRATCH_READY_MS = 120_000;

export interface DrillServices extends BackupServices {
  /** Where a host source (files) is restored for its drill: a temp dir under it, always removed. */
  scratchDir: string;
}

function drillContext(mandate: MandateSpec, services: DrillServices, signal: AbortSignal): DumpContext {
  return {
    mandate: mandate.name,
    signal,
    logger: services.logger.child({ mandate: mandate.name, component: 'drill' }),
    docker: services.docker,
    registerSecret: (v) => services.registerSecret(v),
    settings: services.settings,
    describe: mandate.describe,
  };
}

/**
 * A full restore into a scratch container made from the source's image (or a temp directory for
 * host sources), then the engine's own checks against what the dump recorded; the scratch is
 * always removed. The decode's hash comparisons are part of the checks.
 */
export async function runDrill(
  mandate: MandateSpec,
  backup: LocatedBackup,
  services: DrillServices,
  jobId: string,
  signal: AbortSignal,
  onBytes?: (n: number) => void,
): Promise<VerificationCheck[]> {
  const source = services.sources.get(mandate.source.type);
  if (!source?.restore || !source.check) {
    throw new BackerError('RESTORE_REFUSED', `${mandate.source.type} backups have no drill yet`, { component: 'drill', permanent: true });
  }
  const context = drillContext(mandate, services, signal);
  const container = mandate.source.container;
  const scratch = container === null ? null : `backer-drill-${jobId.slice(0, 8)}`;
  if (container === null) await mkdir(services.scratchDir, { recursive: true, mode: 0o700 });
  const dir = container === null ? await mkdtemp(join(services.scratchDir, 'drill-')) : null;
  const destination: RestoreDestination =
    scratch !== null ? { kind: 'container', container: scratch, original: false, scratch: true } : { kind: 'file', path: join(dir ?? '', 'restore') };
  const request: RestoreRequest = { source: { container }, destination, databases: new Map(), manifest: backup.manifest.source, confirmed: true };
  try {
    if (scratch !== null) {
      await createScratch(services.docker, { source: container ?? '', name: scratch, job: jobId }, services.logger);
      if (source.planRestore) await waitUntilReady(() => source.planRestore?.(mandate.source.options, request, context) ?? Promise.resolve(null), SCRATCH_READY_MS, signal);
    }
    // Progress while the scratch copy loads: the job's bytes move (the stall watchdog watches them).
    const decoded = await openDecoded(backup.manifest, backup.target, services.middleware, { signal, onBytes });
    await source.restore(mandate.source.options, request, decoded.stream, context);
    return [...decoded.checks, ...(await source.check(mandate.source.options, request, context))];
  } finally {
    if (scratch !== null) await removeScratch(services.docker, scratch, services.logger);
    if (dir !== null) await rm(dir, { recursive: true, force: true });
  }
}
