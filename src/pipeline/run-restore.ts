import type { Readable } from 'node:stream';
import type { MandateSpec } from '../mandates/types.js';
import { BackerError, describeError, errorCode, type ErrorCode } from '../errors.js';
import type { JobProgress } from '../events/bus.js';
import type { DumpContext, RestoreRequest, SourceDefinition } from '../sources/types.js';
import { drain, middlewareForStep, openDecoded } from './decode.js';
import { findBackup, type LocatedBackup } from './find-backup.js';
import { parseDatabaseMap, parseDestination, type ParsedDestination, type RestoreParams } from './restore-params.js';
import type { BackupOptions, BackupResult, BackupServices } from './run-backup.js';
import { failpoint } from '../util/failpoint.js';
import { createScratch, planScratch, removeScratch, waitUntilReady } from './scratch.js';

/** What a backup needs (plugins, Docker, logging, settings), and a backup to call for the safety backup. */
export interface RestoreServices extends BackupServices {
  /** A normal backup of the mandate (the safety backup), inside this job: no second lock. */
  backup(mandate: MandateSpec, signal: AbortSignal, options: BackupOptions): Promise<BackupResult>;
}

export interface RestoreContext {
  jobId: string;
  signal: AbortSignal;
  progress(p: JobProgress): void;
  /** A line in the job's history: the safety backup is named there the moment it exists. */
  note?(message: string): void;
}

/** What a restore did, in the job's result (and what `--dry-run` prints). */
export interface RestoreResult {
  kind: 'restore';
  mandate: string;
  backup: string;
  target: string;
  to: string;
  plan: string[];
  /** Containers the restore stops while it applies (started again afterwards). */
  stops: string[];
  /** Whether a safety backup of the original is taken before anything is applied. */
  takes_safety_backup: boolean;
  /** The artifact as stored, and the raw dump it decodes to (the manifest's first step). */
  artifact_bytes: number;
  raw_bytes: number;
  dry_run: boolean;
  safety_backup: string | null;
  rolled_back: boolean;
  rollback_error: string | null;
  [key: string]: unknown;
}

export interface RestoreOutcome {
  status: 'succeeded' | 'failed';
  error: { code: ErrorCode; message: string } | null;
  result: RestoreResult;
}

const COMPONENT = 'restore';
/** How long a fresh scratch container's engine may take to answer. */
const SCRATCH_READY_MS = 120_000;

interface Prepared {
  backup: LocatedBackup;
  source: SourceDefinition<unknown>;
  request: RestoreRequest;
  parsed: ParsedDestination;
  plan: string[];
  stops: string[];
  context: DumpContext;
}

function sourceContext(mandate: MandateSpec, services: RestoreServices, signal: AbortSignal): DumpContext {
  return {
    mandate: mandate.name,
    signal,
    logger: services.logger.child({ mandate: mandate.name, component: COMPONENT }),
    docker: services.docker,
    registerSecret: (v) => services.registerSecret(v),
    settings: services.settings,
    describe: mandate.describe,
  };
}

/**
 * Step 1, before anything is written: the backup and its manifest, the middleware to decode it,
 * the destination and the source's own preflight (tools, versions, running container).
 */
async function prepare(mandate: MandateSpec, params: RestoreParams, services: RestoreServices, jobId: string, signal: AbortSignal): Promise<Prepared> {
  const source = services.sources.get(mandate.source.type);
  if (!source?.restore) {
    throw new BackerError('RESTORE_REFUSED', `${mandate.source.type} backups cannot be restored by Backer yet`, { component: COMPONENT, permanent: true });
  }
  const backup = await findBackup(mandate, services.targets, params.backup, params.target);
  for (const step of backup.manifest.steps.slice(1)) middlewareForStep(step, services.middleware, backup.manifest.name);
  const parsed = parseDestination(params.to, mandate.source.type, mandate.source.container);
  const request: RestoreRequest = {
    source: { container: mandate.source.container },
    destination: parsed.destination,
    databases: parseDatabaseMap(params.databases, mandate.source.type, source.databases === true),
    manifest: backup.manifest.source,
    confirmed: params.yes,
  };
  const context = sourceContext(mandate, services, signal);
  const head = [`read ${backup.manifest.name} (${backup.manifest.artifact.size} bytes) from target ${backup.target.name}`];
  if (params.verify_first) head.push('check every step of it against the manifest (size, md5, sha256) before anything is applied');
  if (parsed.destination.kind === 'container' && parsed.destination.original && params.safety_backup) head.push(`back up the current state of ${parsed.destination.container} first (tagged safety)`);
  if (parsed.scratch !== null) {
    const scratch = await planScratch(services.docker, { source: mandate.source.container ?? '', name: parsed.scratch, job: jobId });
    return { backup, source, request, parsed, context, plan: [...head, ...scratch, `restore the ${mandate.source.type} backup into it`], stops: [] };
  }
  const own = await (source.planRestore?.(mandate.source.options, request, context) ?? Promise.resolve({ steps: [], stops: [] }));
  return { backup, source, request, parsed, context, plan: [...head, ...own.steps], stops: own.stops };
}

/** The second half of a source's restore (SourceDefinition.prepareRestore): applies its input. */
type Applier = (input: Readable) => Promise<void>;

/**
 * Applies one backup through the reverse chain into the destination (hashes checked on the way),
 * through `applier` when the source was prepared already, else through its `restore`.
 */
async function apply(
  prepared: Pick<Prepared, 'source' | 'request' | 'context'>,
  backup: LocatedBackup,
  options: unknown,
  services: RestoreServices,
  onBytes?: (n: number) => void,
  applier?: Applier,
): Promise<void> {
  const decoded = await openDecoded(backup.manifest, backup.target, services.middleware, { signal: prepared.context.signal, onBytes });
  const { source } = prepared;
  if (!source.restore) throw new BackerError('RESTORE_REFUSED', `${source.type} backups cannot be restored`, { component: COMPONENT });
  try {
    if (applier) await applier(decoded.stream);
    else await source.restore(options, { ...prepared.request, manifest: backup.manifest.source }, decoded.stream, prepared.context);
  } finally {
    if (!decoded.stream.destroyed) decoded.stream.destroy();
  }
}

/** `sizeHint`: the restored backup's artifact, the best guess of the safety backup's size (S3 part sizes). */
async function safetyBackup(mandate: MandateSpec, services: RestoreServices, signal: AbortSignal, sizeHint: number): Promise<LocatedBackup> {
  const result = await services.backup(mandate, signal, { tags: ['safety'], sizeHint });
  const stored = result.targets.find((t) => t.status === 'succeeded');
  if (result.status !== 'succeeded' || !stored) {
    throw new BackerError('RESTORE_FAILED', `the safety backup of ${mandate.name} failed, so nothing was restored: ${result.error?.message ?? 'no target stored it'}`, {
      component: COMPONENT,
      permanent: true,
    });
  }
  return findBackup(mandate, services.targets, result.name, stored.target);
}

function baseResult(mandate: MandateSpec, params: RestoreParams, prepared: Prepared): RestoreResult {
  return {
    kind: 'restore',
    mandate: mandate.name,
    backup: prepared.backup.manifest.name,
    target: prepared.backup.target.name,
    to: params.to,
    plan: prepared.plan,
    stops: prepared.stops,
    takes_safety_backup: prepared.parsed.destination.kind === 'container' && prepared.parsed.destination.original && params.safety_backup,
    artifact_bytes: prepared.backup.manifest.artifact.size,
    raw_bytes: prepared.backup.manifest.steps[0]?.size ?? prepared.backup.manifest.artifact.size,
    dry_run: params.dry_run,
    safety_backup: null,
    rolled_back: false,
    rollback_error: null,
  };
}

/** Only the plan: nothing is read beyond manifests, nothing written. */
export async function planRestoreJob(mandate: MandateSpec, params: RestoreParams, services: RestoreServices, jobId: string): Promise<RestoreResult> {
  const prepared = await prepare(mandate, params, services, jobId, new AbortController().signal);
  return baseResult(mandate, { ...params, dry_run: true }, prepared);
}

/**
 * Restores a backup: plan and preflight, hash-check the whole artifact, take a safety backup of
 * the original, apply through the reverse chain; when that fails, restore the safety backup
 * (unless `rollback` is off) and report both outcomes.
 */
export async function runRestore(mandate: MandateSpec, params: RestoreParams, services: RestoreServices, context: RestoreContext): Promise<RestoreOutcome> {
  const dest = parseDestination(params.to, mandate.source.type, mandate.source.container).destination;
  const prepared = await prepare(mandate, params, services, context.jobId, context.signal);
  const result = baseResult(mandate, params, prepared);
  if (params.dry_run) return { status: 'succeeded', error: null, result };
  if (dest.kind === 'container' && dest.original && !params.yes) {
    const how = params.safety_backup ? 'a safety backup is taken first' : 'without a safety backup there is no way back';
    throw new BackerError('RESTORE_REFUSED', `a restore into the original replaces the data of container ${dest.container} (${how}): add --yes to confirm`, {
      component: COMPONENT,
      permanent: true,
    });
  }
  const size = prepared.backup.manifest.artifact.size;
  const total = params.verify_first ? 2 * size : size;
  const applier = params.verify_first ? await hashFirstAndPrepare(mandate, prepared, services, context, total) : undefined;
  if (prepared.parsed.scratch !== null && !params.verify_first) await startScratch(mandate, prepared, services, context);
  const safety = dest.kind === 'container' && dest.original && params.safety_backup ? await safetyBackup(mandate, services, context.signal, size) : null;
  result.safety_backup = safety?.manifest.name ?? null;
  if (safety) context.note?.(`safety backup ${safety.manifest.name} taken`);
  services.logger.info({ mandate: mandate.name, backup: result.backup, to: params.to, safety_backup: result.safety_backup }, 'restore applying');
  try {
    await apply(prepared, prepared.backup, mandate.source.options, services, (n) => {
      if (n > 0) failpoint('restore.mid-apply');
      context.progress({ bytes: total - size + n, total });
    }, applier);
  } catch (err) {
    return failedRestore(err, mandate, params, prepared, services, safety, result);
  }
  services.logger.info({ mandate: mandate.name, backup: result.backup, to: params.to }, 'restore succeeded');
  return { status: 'succeeded', error: null, result };
}

/**
 * The hash-first pass, and meanwhile what writes nothing the user has: a scratch destination is
 * created and started (its engine initialises during the pass; removed again when the pass
 * fails), any other gets the source's first half of its restore (prepareRestore: container,
 * client, credentials), which the apply then skips. Both are awaited to their end; the pass's
 * failure is the one reported.
 */
async function hashFirstAndPrepare(mandate: MandateSpec, prepared: Prepared, services: RestoreServices, context: RestoreContext, total: number): Promise<Applier | undefined> {
  const { source } = prepared;
  const scratch = prepared.parsed.scratch;
  const request = { ...prepared.request, manifest: prepared.backup.manifest.source };
  // A failed pass stops the wait for the scratch engine at once.
  const failed = new AbortController();
  const scratchContext = { ...context, signal: AbortSignal.any([context.signal, failed.signal]) };
  const beside = scratch !== null ? startScratch(mandate, prepared, services, scratchContext) : source.prepareRestore?.(mandate.source.options, request, prepared.context);
  const pass = hashFirst(prepared.backup, services, context, total).catch((err: unknown) => {
    failed.abort();
    throw err;
  });
  const [checked, ready] = await Promise.allSettled([pass, beside]);
  if (checked.status === 'rejected') {
    // The scratch container was made for a backup that cannot be restored: it goes (startScratch removes it itself when it fails).
    if (scratch !== null && ready.status === 'fulfilled') await removeScratch(services.docker, scratch, services.logger);
    throw checked.reason as Error;
  }
  if (ready.status === 'rejected') throw ready.reason as Error;
  return ready.value ?? undefined;
}

async function hashFirst(backup: LocatedBackup, services: RestoreServices, context: RestoreContext, total: number): Promise<void> {
  const decoded = await openDecoded(backup.manifest, backup.target, services.middleware, { signal: context.signal, onBytes: (n) => context.progress({ bytes: n, total }) });
  try {
    await drain(decoded.stream);
  } catch (err) {
    const code = errorCode(err);
    const what = code === 'VERIFY_FAILED' ? 'does not match its manifest' : 'could not be read and decoded';
    // A cancel stays a cancel; anything else says that the destination was not touched.
    if (code === 'JOB_CANCELLED') throw err;
    throw new BackerError(code === 'INTERNAL' ? 'RESTORE_FAILED' : code, `backup ${backup.manifest.name} on ${backup.target.name} ${what}, nothing was restored: ${describeError(err)}`, {
      component: COMPONENT,
      cause: err,
      permanent: true,
    });
  }
}

async function startScratch(mandate: MandateSpec, prepared: Prepared, services: RestoreServices, context: RestoreContext): Promise<void> {
  const name = prepared.parsed.scratch ?? '';
  await createScratch(services.docker, { source: mandate.source.container ?? '', name, job: context.jobId }, services.logger);
  const { source } = prepared;
  try {
    if (source.planRestore) await waitUntilReady(() => source.planRestore?.(mandate.source.options, prepared.request, prepared.context) ?? Promise.resolve(null), SCRATCH_READY_MS, context.signal);
  } catch (err) {
    // The user asked for a container with the backup's data: one without it is removed, not left half-made.
    await removeScratch(services.docker, name, services.logger);
    throw err;
  }
}

async function failedRestore(
  err: unknown,
  mandate: MandateSpec,
  params: RestoreParams,
  prepared: Prepared,
  services: RestoreServices,
  safety: LocatedBackup | null,
  result: RestoreResult,
): Promise<RestoreOutcome> {
  const reason = describeError(err);
  services.logger.error({ mandate: mandate.name, backup: result.backup, err: reason }, 'restore failed');
  if (prepared.parsed.scratch !== null) await removeScratch(services.docker, prepared.parsed.scratch, services.logger);
  if (safety === null || !params.rollback) {
    const note = safety === null ? '' : `; the data is as the failed restore left it, the safety backup ${safety.manifest.name} holds the state before (restore it with \`backer restore ${mandate.name} ${safety.manifest.name}\`)`;
    return { status: 'failed', error: { code: errorCode(err), message: `restore failed: ${reason}${note}` }, result };
  }
  try {
    // A fresh signal: a cancelled restore must still be rolled back.
    const rollbackContext = { ...prepared.context, signal: new AbortController().signal };
    await apply({ ...prepared, context: rollbackContext }, safety, mandate.source.options, services);
    result.rolled_back = true;
    services.logger.warn({ mandate: mandate.name, safety_backup: safety.manifest.name }, 'restore rolled back from the safety backup');
    return { status: 'failed', error: { code: errorCode(err), message: `restore failed: ${reason}; rolled back from the safety backup ${safety.manifest.name}: the data is as it was before the restore` }, result };
  } catch (rollbackErr) {
    result.rollback_error = describeError(rollbackErr);
    services.logger.error({ mandate: mandate.name, safety_backup: safety.manifest.name, err: result.rollback_error }, 'rollback failed');
    return {
      status: 'failed',
      error: { code: 'RESTORE_FAILED', message: `restore failed: ${reason}; the rollback from the safety backup ${safety.manifest.name} failed too: ${result.rollback_error}` },
      result,
    };
  }
}
