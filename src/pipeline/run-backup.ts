import { randomUUID } from 'node:crypto';
import type { Duplex, Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type Docker from 'dockerode';
import type { MandateSpec } from '../mandates/types.js';
import { renderName } from '../config/name-pattern.js';
import { BackerError, describeError, errorCode, retryable, type ErrorCode } from '../errors.js';
import type { Logger } from '../logging/logger.js';
import type { Middleware } from '../middleware/types.js';
import { manifestKey, MANIFEST_VERSION, type Manifest, type Step } from '../manifests/schema.js';
import { applyRetention, retentionPolicyOf } from '../retention/apply.js';
import type { SourceRegistry } from '../sources/registry.js';
import type { Dump, SourceDefinition, SourceSettings } from '../sources/types.js';
import type { Target, WriteOptions } from '../targets/types.js';
import { failpoint } from '../util/failpoint.js';
import { BACKER_VERSION } from '../util/version.js';
import { createFanout } from './fanout.js';
import { Coalescer } from './coalesce.js';
import { HashingStream } from './hash.js';
import { runInJobScope, type JobScope } from './job-scope.js';

export interface BackupServices {
  sources: SourceRegistry;
  targets: ReadonlyMap<string, Target>;
  middleware: ReadonlyMap<string, Middleware>;
  docker: Docker;
  logger: Logger;
  registerSecret(value: string): void;
  /** Config settings handed to sources (volume helper image …). Default: the sources' defaults. */
  settings?: SourceSettings;
}

export interface TargetResult {
  target: string;
  status: 'succeeded' | 'failed';
  artifact_key: string;
  manifest_key: string | null;
  size: number | null;
  error: { code: ErrorCode; message: string } | null;
  retention_deleted: string[];
  retention_error: string | null;
  /** A failure worth another attempt (network, S3 5xx, throttling); false when it succeeded. */
  retryable: boolean;
}

export interface BackupResult {
  uuid: string;
  name: string;
  status: 'succeeded' | 'failed';
  error: { code: ErrorCode; message: string } | null;
  /** Bytes of the raw dump, before middleware; null when the stream failed. */
  raw_size: number | null;
  targets: TargetResult[];
  /** The queue tries a failed backup again only when this is true (see retryable() in errors.ts). */
  retryable: boolean;
}

const COMPONENT = 'pipeline';
/** Where the `backup.mid-stream` crash point of the recovery tests lies. */
const MID_STREAM_BYTES = 1024 * 1024;

function lookup<T>(map: ReadonlyMap<string, T>, name: string, kind: string, mandate: string): T {
  const value = map.get(name);
  if (value === undefined) {
    throw new BackerError('TARGET_NOT_FOUND', `mandate ${mandate} names ${kind} "${name}", which is not configured`, {
      component: COMPONENT,
      details: { mandate, [kind]: name },
      permanent: true,
    });
  }
  return value;
}

/**
 * Runs one backup as a single streaming pipeline:
 * source → hash → (middleware → hash)* → fan-out → every target.
 * A backup exists on a target exactly when its manifest was written there, which happens only
 * after the whole artifact is stored and the source confirmed the dump complete.
 *
 * The run has its own job scope: an error that escapes every handler inside it (see
 * src/daemon/crash-guard.ts) fails this backup, through `crashed`, and nothing else.
 */
export interface BackupOptions {
  /** Manifest tags: `safety` for the backup a restore takes first. Default none. */
  tags?: string[];
  /** Raw bytes dumped so far (progress), and the expected total when known. */
  onBytes?: (bytes: number) => void;
  /** Called once the backup's name and artifact key are known, before anything is written. */
  onArtifact?: (name: string, artifactKey: string) => void;
  /** Expected artifact bytes (the mandate's previous artifact): S3 targets size their parts from it. */
  sizeHint?: number;
}

export async function runBackup(mandate: MandateSpec, services: BackupServices, signal: AbortSignal, options: BackupOptions = {}): Promise<BackupResult> {
  const crash = new AbortController();
  const scope: JobScope = {
    mandate: mandate.name,
    fail: (err) => {
      if (crash.signal.aborted) return;
      crash.abort(new BackerError('INTERNAL', 'an unexpected error ended this backup', { component: COMPONENT, cause: err }));
    },
  };
  return runInJobScope(scope, () => runScoped(mandate, services, { cancel: signal, crash: crash.signal, scope }, options));
}

interface RunSignals {
  /** Aborted when the job is cancelled (on request, or at shutdown). */
  cancel: AbortSignal;
  /** Aborted when an escaped error was charged to this backup. */
  crash: AbortSignal;
  scope: JobScope;
}

/** What a run is about to write: its name, targets, middleware and source, resolved before any byte moves. */
interface RunPlan {
  uuid: string;
  name: string;
  createdAt: Date;
  targets: Target[];
  middleware: Middleware[];
  definition: SourceDefinition<unknown>;
}

async function planRun(mandate: MandateSpec, services: BackupServices): Promise<RunPlan> {
  const uuid = randomUUID();
  const createdAt = new Date();
  const targets = mandate.targets.map((t) => lookup(services.targets, t, 'target', mandate.name));
  const rendered = renderName(mandate.name_pattern, { date: createdAt, container: mandate.source.container, mandate: mandate.name, uuid });
  const name = await uniqueName(rendered, mandate.name, targets, uuid);
  const middleware = mandate.middleware.map((m) => lookup(services.middleware, m, 'middleware', mandate.name));
  const definition = services.sources.get(mandate.source.type);
  if (!definition) {
    throw new BackerError('LABEL_INVALID', `unknown source type ${mandate.source.type}`, { component: COMPONENT, permanent: true });
  }
  return { uuid, name, createdAt, targets, middleware, definition };
}

function startDump(mandate: MandateSpec, plan: RunPlan, services: BackupServices, signal: AbortSignal, logger: Logger): Promise<Dump> {
  return plan.definition.dump(mandate.source.options, { container: mandate.source.container }, {
    mandate: mandate.name,
    signal,
    logger,
    docker: services.docker,
    registerSecret: (value) => services.registerSecret(value),
    settings: services.settings,
    describe: mandate.describe,
  });
}

/**
 * Reads top to bottom: plan (name, targets), dump, stream through every step to every target,
 * then either undo what a failed run stored, or commit a manifest on each target that has the artifact.
 */
async function runScoped(mandate: MandateSpec, services: BackupServices, signals: RunSignals, options: BackupOptions): Promise<BackupResult> {
  const logger = services.logger.child({ mandate: mandate.name });
  const signal = AbortSignal.any([signals.cancel, signals.crash]);
  const plan = await planRun(mandate, services);
  signals.scope.backup = plan.name;
  logger.info({ backup: plan.name, targets: mandate.targets }, 'backup started');
  failpoint('backup.before-dump');
  const dump = await startDump(mandate, plan, services, signal, logger);

  const onBytes = (bytes: number): void => {
    if (bytes >= MID_STREAM_BYTES) failpoint('backup.mid-stream');
    options.onBytes?.(bytes);
  };
  const { stages, hashes, extension, mime } = buildStages(dump, mandate.source.type, plan.middleware, signal, onBytes);
  const artifactKey = `${mandate.name}/${plan.name}${extension}`;
  options.onArtifact?.(plan.name, artifactKey);
  const { streamError, settled, completedAt } = await streamToTargets(stages, plan.targets, artifactKey, {
    signal,
    contentType: mime,
    ...(options.sizeHint === undefined ? {} : { sizeHint: options.sizeHint }),
  });
  // On failure or abort the pipeline settles before the source's own cleanup has run (removing a
  // helper container, starting a stopped container again): the job ends only after it.
  if (!dump.stream.closed) await new Promise((resolve) => dump.stream.once('close', resolve));
  if (streamError !== undefined || signals.crash.aborted) {
    return failedRun(runError(streamError, settled, signals), plan, artifactKey, settled, logger);
  }

  failpoint('backup.stored');
  const steps: Step[] = hashes.map(({ hash, processor, mime }) => ({ processor, mime, ...hash.digest() }));
  const base = { uuid: plan.uuid, name: plan.name, mandate: mandate.name, createdAt: plan.createdAt, source: dump.info(), steps, artifactKey, tags: options.tags ?? [] };
  const results: TargetResult[] = [];
  for (const [i, target] of plan.targets.entries()) {
    const outcome = settled[i];
    if (!outcome || outcome.status === 'rejected') {
      results.push(failedTarget(target, artifactKey, outcome?.reason));
      continue;
    }
    results.push(await commitTarget(target, { ...base, completedAt: completedAt[i] ?? new Date() }, mandate, logger, signals.crash));
  }
  const failed = results.find((r) => r.status === 'failed');
  const status = failed ? 'failed' : 'succeeded';
  logger[failed ? 'error' : 'info']({ backup: plan.name, status }, failed ? 'backup failed on some targets' : 'backup succeeded');
  const failures = results.filter((r) => r.status === 'failed');
  const again = failures.length > 0 && failures.every((r) => r.retryable);
  return { uuid: plan.uuid, name: plan.name, status, error: failed?.error ?? null, raw_size: steps[0]?.size ?? null, targets: results, retryable: again };
}

/**
 * A write that completed before the run failed stored an artifact of this run that no manifest
 * will make a backup: it is removed (only it; writes never replace, so it is this run's own).
 */
async function failedRun(error: unknown, plan: RunPlan, artifactKey: string, settled: PromiseSettledResult<void>[], logger: Logger): Promise<BackupResult> {
  for (const [i, target] of plan.targets.entries()) {
    if (settled[i]?.status === 'fulfilled') await target.remove(artifactKey).catch(() => undefined);
  }
  logger.error({ backup: plan.name, code: errorCode(error), err: describeError(error) }, 'backup failed');
  const targetResults = plan.targets.map((t, i) => failedTarget(t, artifactKey, settled[i]?.status === 'rejected' ? settled[i].reason : error));
  const error_ = { code: errorCode(error), message: describeError(error) };
  return { uuid: plan.uuid, name: plan.name, status: 'failed', error: error_, raw_size: null, targets: targetResults, retryable: retryable(error) };
}

interface StepHash {
  hash: HashingStream;
  processor: string;
  mime: string;
}

/**
 * source → hash → (middleware → hash)*: every step hashed on the fly. The source's and each
 * middleware's output is first joined into large chunks (Coalescer): every stage after it costs
 * per chunk.
 */
function buildStages(
  dump: Dump,
  sourceType: string,
  middleware: readonly Middleware[],
  signal: AbortSignal,
  onBytes?: (bytes: number) => void,
): { stages: (Duplex | Readable | Writable)[]; hashes: StepHash[]; extension: string; mime: string } {
  const rawHash = new HashingStream(onBytes);
  const stages: (Duplex | Readable | Writable)[] = [dump.stream, new Coalescer(), rawHash];
  const hashes: StepHash[] = [{ hash: rawHash, processor: `source:${sourceType}`, mime: dump.mime }];
  for (const m of middleware) {
    const hash = new HashingStream();
    stages.push(m.encode(signal), new Coalescer(), hash);
    hashes.push({ hash, processor: `middleware:${m.type}:${m.name}`, mime: m.mime });
  }
  const extension = dump.extension + middleware.map((m) => m.extension).join('');
  return { stages, hashes, extension, mime: hashes[hashes.length - 1]?.mime ?? dump.mime };
}

/**
 * Streams the stages into every target at once. Each target's write is observed from the moment
 * it starts (a write may fail while the pipeline is still running: a promise rejected with
 * nothing attached would be an unhandled rejection, which ends a Node process).
 */
async function streamToTargets(
  stages: (Duplex | Readable | Writable)[],
  targets: readonly Target[],
  artifactKey: string,
  writeOptions: WriteOptions,
): Promise<{ streamError: unknown; settled: PromiseSettledResult<void>[]; completedAt: (Date | undefined)[] }> {
  const fanout = createFanout(targets.length);
  const completedAt: (Date | undefined)[] = [];
  const writes = targets.map(async (target, i) => {
    try {
      await target.write(artifactKey, fanout.branches[i] as Readable, writeOptions);
      completedAt[i] = new Date();
    } catch (err) {
      fanout.detach(i, err instanceof Error ? err : new Error(String(err)));
      throw err;
    }
  });
  const allSettled = Promise.allSettled(writes);
  let streamError: unknown;
  try {
    await pipeline([...stages, fanout.writable] as [Readable, ...Duplex[], Writable], { signal: writeOptions.signal });
  } catch (err) {
    streamError = err;
  }
  return { streamError, settled: await allSettled, completedAt };
}

/** The error a failed run reports: prefer the source's or a middleware's own error over the generic abort it caused downstream. */
function runError(streamError: unknown, settled: PromiseSettledResult<void>[], signals: RunSignals): unknown {
  if (signals.cancel.aborted) return new BackerError('JOB_CANCELLED', 'the backup was cancelled', { component: COMPONENT, cause: signals.cancel.reason });
  if (signals.crash.aborted) return signals.crash.reason;
  const firstTargetError = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected')?.reason as unknown;
  const allTargetsFailed = settled.every((s) => s.status === 'rejected');
  return allTargetsFailed && firstTargetError !== undefined && !(streamError instanceof BackerError) ? firstTargetError : streamError;
}

interface StoredArtifact {
  uuid: string;
  name: string;
  mandate: string;
  createdAt: Date;
  completedAt: Date;
  source: Manifest['source'];
  steps: Step[];
  artifactKey: string;
  tags: string[];
}

/** Writes the manifest that turns the stored artifact into a backup, then applies retention. */
async function commitTarget(target: Target, stored: StoredArtifact, mandate: MandateSpec, logger: Logger, crashed: AbortSignal): Promise<TargetResult> {
  const last = stored.steps[stored.steps.length - 1] as Step;
  const manifest: Manifest = {
    manifest_version: MANIFEST_VERSION,
    uuid: stored.uuid,
    name: stored.name,
    mandate: stored.mandate,
    backer_version: BACKER_VERSION,
    created_at: stored.createdAt.toISOString(),
    completed_at: stored.completedAt.toISOString(),
    source: stored.source,
    ...(stored.tags.length > 0 ? { tags: stored.tags } : {}),
    target: { name: target.name, type: target.type },
    steps: stored.steps,
    artifact: { key: stored.artifactKey, size: last.size, md5: last.md5, sha256: last.sha256, mime: last.mime },
  };
  const mKey = manifestKey(stored.mandate, stored.name);
  try {
    crashed.throwIfAborted();
    failpoint('backup.before-manifest');
    await target.writeOnce(mKey, Buffer.from(`${JSON.stringify(manifest, null, 2)}\n`), { contentType: 'application/json' });
  } catch (err) {
    // Without its manifest the artifact is not a backup: remove it rather than leave a look-alike.
    // Artifact writes never replace an existing object, so the artifact under this key is the
    // one this run wrote: nothing of an earlier backup is touched.
    await target.remove(stored.artifactKey).catch(() => undefined);
    return failedTarget(target, stored.artifactKey, err);
  }
  const result: TargetResult = {
    target: target.name,
    status: 'succeeded',
    artifact_key: stored.artifactKey,
    manifest_key: mKey,
    size: last.size,
    error: null,
    retention_deleted: [],
    retention_error: null,
    retryable: false,
  };
  failpoint('backup.before-retention');
  try {
    // Deleted names go into the result as they go: a later failed deletion keeps the list.
    await applyRetention(target, mandate.name, retentionPolicyOf(mandate), logger, result.retention_deleted);
  } catch (err) {
    result.retention_error = describeError(err);
    logger.warn({ target: target.name, err: result.retention_error }, 'retention failed');
  }
  logger.info({ backup: stored.name, target: target.name, size: last.size }, 'backup stored');
  return result;
}

/**
 * Two runs of one mandate within the same second render the same name. A name already used on any
 * target gets a suffix (`-2`, `-3`, …) instead. A target that cannot be listed (write-only
 * credentials, a passing fault) cannot tell whether the name is free: the run then takes a name
 * no other run can have (`-<first 8 of its uuid>`). Writes never replace an object either, so even
 * a race (`backup --once` beside the daemon) can only fail a write, never touch a stored backup.
 */
async function uniqueName(base: string, mandate: string, targets: readonly Target[], uuid: string): Promise<string> {
  const unique = `${base}-${uuid.slice(0, 8)}`;
  for (let i = 1; i <= 20; i++) {
    const candidate = i === 1 ? base : `${base}-${i}`;
    const taken = await Promise.all(targets.map((t) => t.list(`${mandate}/${candidate}.`).then((l) => l.length > 0, () => null)));
    if (taken.includes(null)) return unique;
    if (!taken.includes(true)) return candidate;
  }
  return unique;
}

function failedTarget(target: Target, artifactKey: string, err: unknown): TargetResult {
  return {
    target: target.name,
    status: 'failed',
    artifact_key: artifactKey,
    manifest_key: null,
    size: null,
    error: { code: errorCode(err), message: describeError(err) },
    retention_deleted: [],
    retention_error: null,
    retryable: retryable(err),
  };
}
