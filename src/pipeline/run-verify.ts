import { createHash } from 'node:crypto';
import type { MandateSpec } from '../mandates/types.js';
import { BackerError, describeError, errorCode } from '../errors.js';
import type { JobProgress } from '../events/bus.js';
import type { Logger } from '../logging/logger.js';
import type { Middleware } from '../middleware/types.js';
import { verificationKey, type Verification, type VerificationCheck, type VerifyLevel } from '../manifests/verification.js';
import type { Target } from '../targets/types.js';
import { BACKER_VERSION } from '../util/version.js';
import { drain, openDecoded } from './decode.js';
import { allBackups, findBackup, type LocatedBackup } from './find-backup.js';

export interface VerifyParams {
  /** A backup name or uuid, `latest`, or undefined: every backup of the mandate. */
  backup?: string;
  target?: string;
  level: VerifyLevel;
  /** `n/t`: only the n-th of t slices of the backups (by a stable hash of their names). */
  subset?: string;
}

export interface VerifyServices {
  targets: ReadonlyMap<string, Target>;
  middleware: ReadonlyMap<string, Middleware>;
  logger: Logger;
  /** Level `drill`: restores the backup into a scratch container and runs the engine's checks. */
  drill(mandate: MandateSpec, backup: LocatedBackup, signal: AbortSignal, onBytes?: (n: number) => void): Promise<VerificationCheck[]>;
}

export interface VerifyResult {
  kind: 'verify';
  level: VerifyLevel;
  verifications: (Verification & { record_key: string | null; record_error: string | null })[];
  [key: string]: unknown;
}

const COMPONENT = 'verify';

export function parseSubset(subset: string): { n: number; t: number } {
  const m = /^(\d+)\/(\d+)$/.exec(subset.trim());
  const n = Number(m?.[1]);
  const t = Number(m?.[2]);
  if (!m || t < 1 || n < 1 || n > t) {
    throw new BackerError('USAGE_INVALID', `subset must be n/t with 1 <= n <= t (e.g. 3/7), received ${JSON.stringify(subset)}`, { component: COMPONENT, permanent: true });
  }
  return { n, t };
}

function inSubset(name: string, subset: { n: number; t: number }): boolean {
  const bucket = createHash('sha256').update(name).digest().readUInt32BE(0) % subset.t;
  return bucket === subset.n - 1;
}

/** A named backup: every copy of it (on each target, or on `target`); otherwise every backup, or a subset. */
async function selectBackups(mandate: MandateSpec, params: VerifyParams, targets: ReadonlyMap<string, Target>): Promise<LocatedBackup[]> {
  if (params.backup !== undefined) {
    const found = await findBackup(mandate, targets, params.backup, params.target);
    const copies = await allBackups(mandate, targets, params.target);
    return copies.filter((b) => b.manifest.uuid === found.manifest.uuid);
  }
  const all = await allBackups(mandate, targets, params.target);
  const subset = params.subset === undefined ? null : parseSubset(params.subset);
  return subset === null ? all : all.filter((b) => inSubset(b.manifest.name, subset));
}

/** Checks one backup at one level; never throws: a failure is a failed verification with its reason. */
async function verifyOne(mandate: MandateSpec, backup: LocatedBackup, level: VerifyLevel, services: VerifyServices, signal: AbortSignal, onBytes: (n: number) => void): Promise<Verification> {
  const started = new Date();
  const { manifest, target } = backup;
  let checks: VerificationCheck[] = [];
  let error: unknown;
  try {
    if (level === 'size') {
      const stat = await target.stat(manifest.artifact.key);
      checks = [{ check: `artifact ${manifest.artifact.key} size`, ok: stat?.size === manifest.artifact.size, expected: manifest.artifact.size, actual: stat?.size ?? null }];
    } else if (level === 'drill') {
      checks = await services.drill(mandate, backup, signal, onBytes);
    } else {
      const decoded = await openDecoded(manifest, target, services.middleware, { signal, artifactOnly: level === 'hash', onBytes });
      checks = decoded.checks;
      await drain(decoded.stream);
    }
    const failed = checks.filter((c) => !c.ok);
    if (failed.length > 0) error = new BackerError('VERIFY_FAILED', `${failed.length} check(s) failed: ${failed.map((c) => describeCheck(c)).join('; ')}`, { component: COMPONENT });
  } catch (err) {
    error = err;
  }
  return {
    verification_version: 1,
    backup: manifest.name,
    uuid: manifest.uuid,
    mandate: manifest.mandate,
    target: target.name,
    level,
    outcome: error === undefined ? 'passed' : 'failed',
    checks,
    error: error === undefined ? null : { code: errorCode(error), message: describeError(error) },
    started_at: started.toISOString(),
    duration_ms: Date.now() - started.getTime(),
    backer_version: BACKER_VERSION,
  };
}

export function describeCheck(c: VerificationCheck): string {
  const values = c.expected === undefined && c.actual === undefined ? '' : ` (expected ${String(c.expected)}, found ${String(c.actual)})`;
  return `${c.check}${values}`;
}

/** Writes the immutable result object next to the backup; a failure to write is reported, not fatal to the check. */
async function record(backup: LocatedBackup, verification: Verification): Promise<{ record_key: string | null; record_error: string | null }> {
  const key = verificationKey(backup.manifestKey, new Date(verification.started_at));
  try {
    await backup.target.writeOnce(key, Buffer.from(`${JSON.stringify(verification, null, 2)}\n`), { contentType: 'application/json' });
    return { record_key: key, record_error: null };
  } catch (err) {
    return { record_key: null, record_error: describeError(err) };
  }
}

/**
 * Verifies backups of one mandate at one level and records each outcome next to its backup.
 * The job fails (loudly) when any backup fails or none is found.
 */
export async function runVerify(
  mandate: MandateSpec,
  params: VerifyParams,
  services: VerifyServices,
  context: { signal: AbortSignal; progress(p: JobProgress): void },
): Promise<{ status: 'succeeded' | 'failed'; error: { code: ReturnType<typeof errorCode>; message: string } | null; result: VerifyResult }> {
  const backups = await selectBackups(mandate, params, services.targets);
  const total = backups.reduce((sum, b) => sum + b.manifest.artifact.size, 0);
  let done = 0;
  const verifications: VerifyResult['verifications'] = [];
  for (const backup of backups) {
    context.signal.throwIfAborted();
    const v = await verifyOne(mandate, backup, params.level, services, context.signal, (n) => context.progress({ bytes: done + n, total }));
    done += backup.manifest.artifact.size;
    verifications.push({ ...v, ...(await record(backup, v)) });
    const log = v.outcome === 'passed' ? services.logger.info.bind(services.logger) : services.logger.error.bind(services.logger);
    log({ mandate: mandate.name, backup: v.backup, target: v.target, verify_level: v.level, outcome: v.outcome, err: v.error?.message }, `verification ${v.outcome}`);
  }
  const failed = verifications.filter((v) => v.outcome === 'failed');
  const result: VerifyResult = { kind: 'verify', level: params.level, verifications };
  if (backups.length === 0) {
    return { status: 'failed', error: { code: 'BACKUP_NOT_FOUND', message: `mandate ${mandate.name} has no backups to verify${params.subset ? ` in subset ${params.subset}` : ''}` }, result };
  }
  if (failed.length === 0) return { status: 'succeeded', error: null, result };
  const message = failed.map((v) => `${v.backup} on ${v.target}: ${v.error?.message ?? 'failed'}`).join('; ');
  return { status: 'failed', error: { code: 'VERIFY_FAILED', message: `verification (${params.level}) failed: ${message}` }, result };
}
