import { randomUUID } from 'node:crypto';
import type { Duplex, Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type Docker from 'dockerode';
import type { MandateSpec } from '../config/mandate-types.js';
import { renderName } from '../config/name-pattern.js';
import { BackerError, describeError, errorCode, type ErrorCode } from '../errors.js';
import type { Logger } from '../logging/logger.js';
import type { Middleware } from '../middleware/types.js';
import { manifestKey, MANIFEST_VERSION, type Manifest, type Step } from '../manifests/schema.js';
import { applyRetention } from '../retention/apply.js';
import type { SourceRegistry } from '../sources/registry.js';
import type { SourceSettings } from '../sources/types.js';
import type { Target } from '../targets/types.js';
import { BACKER_VERSION } from '../util/version.js';
import { createFanout } from './fanout.js';
import { HashingStream } from './hash.js';

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
}

export interface BackupResult {
  uuid: string;
  name: string;
  status: 'succeeded' | 'failed';
  error: { code: ErrorCode; message: string } | null;
  /** Bytes of the raw dump, before middleware; null when the stream failed. */
  raw_size: number | null;
  targets: TargetResult[];
}

const COMPONENT = 'pipeline';

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
 */
export async function runBackup(mandate: MandateSpec, services: BackupServices, signal: AbortSignal): Promise<BackupResult> {
  const logger = services.logger.child({ mandate: mandate.name });
  const uuid = randomUUID();
  const createdAt = new Date();
  const targets = mandate.targets.map((t) => lookup(services.targets, t, 'target', mandate.name));
  const name = await uniqueName(
    renderName(mandate.name_pattern, { date: createdAt, container: mandate.source.container, mandate: mandate.name, uuid }),
    mandate.name,
    targets,
    uuid,
  );
  const middleware = mandate.middleware.map((m) => lookup(services.middleware, m, 'middleware', mandate.name));
  const definition = services.sources.get(mandate.source.type);
  if (!definition) {
    throw new BackerError('LABEL_INVALID', `unknown source type ${mandate.source.type}`, { component: COMPONENT, permanent: true });
  }

  logger.info({ backup: name, targets: mandate.targets }, 'backup started');
  const dump = await definition.dump(mandate.source.options, { container: mandate.source.container }, {
    mandate: mandate.name,
    signal,
    logger,
    docker: services.docker,
    registerSecret: (value) => services.registerSecret(value),
    settings: services.settings,
  });

  const stages: (Duplex | Readable | Writable)[] = [dump.stream];
  const hashes: { hash: HashingStream; processor: string; mime: string }[] = [];
  const rawHash = new HashingStream();
  stages.push(rawHash);
  hashes.push({ hash: rawHash, processor: `source:${mandate.source.type}`, mime: dump.mime });
  for (const m of middleware) {
    const hash = new HashingStream();
    stages.push(m.encode(signal), hash);
    hashes.push({ hash, processor: `middleware:${m.type}:${m.name}`, mime: m.mime });
  }
  const extension = dump.extension + middleware.map((m) => m.extension).join('');
  const artifactKey = `${mandate.name}/${name}${extension}`;
  const artifactMime = hashes[hashes.length - 1]?.mime ?? dump.mime;

  const fanout = createFanout(targets.length);
  const completedAt: (Date | undefined)[] = [];
  const writes = targets.map((target, i) =>
    target
      .write(artifactKey, fanout.branches[i] as Readable, { signal, contentType: artifactMime })
      .then(() => {
        completedAt[i] = new Date();
      })
      .catch((err: unknown) => {
        fanout.detach(i, err instanceof Error ? err : new Error(String(err)));
        throw err;
      }),
  );
  stages.push(fanout.writable);

  let streamError: unknown;
  try {
    await pipeline(stages as [Readable, ...Duplex[], Writable], { signal });
  } catch (err) {
    streamError = err;
  }
  const settled = await Promise.allSettled(writes);
  // On failure or abort the pipeline settles before the source's own cleanup has run (removing a
  // helper container, starting a stopped container again): the job ends only after it.
  if (!dump.stream.closed) await new Promise((resolve) => dump.stream.once('close', resolve));
  if (streamError !== undefined) {
    // Prefer the source's or a middleware's own error over the generic abort it caused downstream.
    const firstTargetError = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected')?.reason as unknown;
    const allTargetsFailed = settled.every((s) => s.status === 'rejected');
    const error = signal.aborted
      ? new BackerError('JOB_CANCELLED', 'the backup was cancelled', { component: COMPONENT, cause: signal.reason })
      : allTargetsFailed && firstTargetError !== undefined && !(streamError instanceof BackerError)
        ? firstTargetError
        : streamError;
    logger.error({ backup: name, code: errorCode(error), err: describeError(error) }, 'backup failed');
    return {
      uuid,
      name,
      status: 'failed',
      error: { code: errorCode(error), message: describeError(error) },
      raw_size: null,
      targets: targets.map((t, i) => failedTarget(t, artifactKey, settled[i]?.status === 'rejected' ? settled[i].reason : error)),
    };
  }

  const steps: Step[] = hashes.map(({ hash, processor, mime }) => ({ processor, mime, ...hash.digest() }));
  const last = steps[steps.length - 1] as Step;
  const results: TargetResult[] = [];
  for (const [i, target] of targets.entries()) {
    const outcome = settled[i];
    if (!outcome || outcome.status === 'rejected') {
      results.push(failedTarget(target, artifactKey, outcome?.reason));
      continue;
    }
    const manifest: Manifest = {
      manifest_version: MANIFEST_VERSION,
      uuid,
      name,
      mandate: mandate.name,
      backer_version: BACKER_VERSION,
      created_at: createdAt.toISOString(),
      completed_at: (completedAt[i] ?? new Date()).toISOString(),
      source: dump.info(),
      target: { name: target.name, type: target.type },
      steps,
      artifact: { key: artifactKey, size: last.size, md5: last.md5, sha256: last.sha256, mime: last.mime },
    };
    const mKey = manifestKey(mandate.name, name);
    try {
      await target.writeOnce(mKey, Buffer.from(`${JSON.stringify(manifest, null, 2)}\n`), { contentType: 'application/json' });
    } catch (err) {
      // Without its manifest the artifact is not a backup: remove it rather than leave a look-alike.
      await target.remove(artifactKey).catch(() => undefined);
      results.push(failedTarget(target, artifactKey, err));
      continue;
    }
    const result: TargetResult = {
      target: target.name,
      status: 'succeeded',
      artifact_key: artifactKey,
      manifest_key: mKey,
      size: last.size,
      error: null,
      retention_deleted: [],
      retention_error: null,
    };
    try {
      result.retention_deleted = await applyRetention(target, mandate.name, { keep: mandate.retention }, logger);
    } catch (err) {
      result.retention_error = describeError(err);
      logger.warn({ target: target.name, err: result.retention_error }, 'retention failed');
    }
    logger.info({ backup: name, target: target.name, size: last.size }, 'backup stored');
    results.push(result);
  }
  const failed = results.find((r) => r.status === 'failed');
  const status = failed ? 'failed' : 'succeeded';
  logger[failed ? 'error' : 'info']({ backup: name, status }, failed ? 'backup failed on some targets' : 'backup succeeded');
  return { uuid, name, status, error: failed?.error ?? null, raw_size: steps[0]?.size ?? null, targets: results };
}

/**
 * Two runs of one mandate within the same second render the same name: the second would replace
 * the first's artifact. A name already used on any target gets a suffix instead. (The queue never
 * runs one mandate twice at once, so checking first is enough.)
 */
async function uniqueName(base: string, mandate: string, targets: readonly Target[], uuid: string): Promise<string> {
  for (let i = 1; i <= 20; i++) {
    const candidate = i === 1 ? base : `${base}-${i}`;
    // A target that cannot list now will fail its write anyway; it does not block the name.
    const taken = await Promise.all(targets.map((t) => t.list(`${mandate}/${candidate}.`).then((l) => l.length > 0, () => false)));
    if (!taken.includes(true)) return candidate;
  }
  return `${base}-${uuid.slice(0, 8)}`;
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
  };
}
