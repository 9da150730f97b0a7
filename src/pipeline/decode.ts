import { pipeline, Transform, type Duplex, type Readable, type TransformCallback } from 'node:stream';
import { BackerError } from '../errors.js';
import type { Middleware } from '../middleware/types.js';
import type { Digest, Manifest, Step } from '../manifests/schema.js';
import type { VerificationCheck } from '../manifests/verification.js';
import type { Target } from '../targets/types.js';
import { StreamDigest } from './hash-digest.js';

const COMPONENT = 'decode';

/**
 * A pass-through that hashes what flows and, at its end, compares size, md5 and sha256 with
 * what the manifest recorded for that step. A stream that grows past the recorded size fails at
 * once; any difference fails at the end, so that nothing downstream takes the last bytes as good.
 */
export class CheckingStream extends Transform {
  /** md5 + sha256 on a hash thread, off the event loop (hash-digest.ts). */
  private readonly hash = new StreamDigest((err) => this.destroy(err));
  private size = 0;

  constructor(
    private readonly expected: Digest,
    private readonly label: string,
    private readonly record: (check: VerificationCheck) => void,
    private readonly onBytes?: (bytes: number) => void,
  ) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, callback: TransformCallback): void {
    this.size += chunk.length;
    if (this.size > this.expected.size) {
      this.record({ check: `${this.label} size`, ok: false, expected: this.expected.size, actual: `more than ${this.expected.size}` });
      callback(mismatch(`${this.label} is longer than the manifest's ${this.expected.size} bytes`));
      return;
    }
    this.onBytes?.(this.size);
    const ready = this.hash.update(chunk);
    this.push(chunk);
    if (ready) callback();
    else this.hash.whenReady(callback);
  }

  override _flush(callback: TransformCallback): void {
    this.hash.finish().then(
      (actual) => callback(this.compare(actual)),
      (err: unknown) => callback(err instanceof Error ? err : new Error(String(err))),
    );
  }

  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    this.hash.drop();
    callback(err);
  }

  private compare(actual: Digest): BackerError | null {
    const differs: string[] = [];
    for (const field of ['size', 'md5', 'sha256'] as const) {
      const ok = actual[field] === this.expected[field];
      this.record({ check: `${this.label} ${field}`, ok, expected: this.expected[field], actual: actual[field] });
      if (!ok) differs.push(field);
    }
    return differs.length === 0 ? null : mismatch(`${this.label}: ${differs.join(', ')} differ${differs.length === 1 ? 's' : ''} from the manifest (the stored backup was changed or damaged)`);
  }
}

function mismatch(message: string): BackerError {
  return new BackerError('VERIFY_FAILED', message, { component: COMPONENT, permanent: true });
}

/** `middleware:<type>:<name>` → the configured middleware of that name and type, else RESTORE_REFUSED naming it. */
export function middlewareForStep(step: Step, middleware: ReadonlyMap<string, Middleware>, backup: string): Middleware {
  const [, type = '', name = ''] = step.processor.split(':');
  const found = middleware.get(name);
  if (!found || found.type !== type) {
    throw new BackerError(
      'RESTORE_REFUSED',
      `backup ${backup} was encoded with middleware "${name}" (${type}), and no middleware of that name and type is configured: add it (with its decryption key) to the config`,
      { component: COMPONENT, details: { backup, middleware: name, type }, permanent: true },
    );
  }
  const reason = found.cannotDecode?.() ?? null;
  if (reason !== null) {
    throw new BackerError('RESTORE_REFUSED', `backup ${backup} cannot be decoded: ${reason}; add the private key to the config`, {
      component: COMPONENT,
      details: { backup, middleware: name, type },
      permanent: true,
    });
  }
  return found;
}

export interface DecodeOptions {
  signal: AbortSignal;
  /** Stop after checking the stored bytes (level `hash`), without decoding. Default false. */
  artifactOnly?: boolean;
  /** Bytes of the artifact read so far. */
  onBytes?: (bytes: number) => void;
}

export interface Decoded {
  /** The raw dump (or the artifact itself with artifactOnly); errors with VERIFY_FAILED on any mismatch. */
  stream: Readable;
  /** Every comparison made so far (complete once the stream ended). */
  checks: VerificationCheck[];
}

/**
 * target → check(artifact) → (decode → check(step))*: the backup pipeline run in reverse, every
 * step's size, md5 and sha256 compared with the manifest on the way.
 */
export async function openDecoded(manifest: Manifest, target: Target, middleware: ReadonlyMap<string, Middleware>, options: DecodeOptions): Promise<Decoded> {
  const encoders = options.artifactOnly ? [] : manifest.steps.slice(1).map((s) => middlewareForStep(s, middleware, manifest.name));
  const checks: VerificationCheck[] = [];
  const record = (c: VerificationCheck): void => void checks.push(c);
  const last = manifest.steps.length - 1;
  const stages: (Readable | Duplex)[] = [
    await target.read(manifest.artifact.key),
    new CheckingStream(manifest.artifact, `artifact ${manifest.artifact.key}`, record, options.onBytes),
  ];
  for (let i = last; i >= 1 && !options.artifactOnly; i--) {
    const step = manifest.steps[i - 1] as Step;
    const decoder = encoders[i - 1] as Middleware;
    stages.push(decoder.decode(options.signal), new CheckingStream(step, `step ${step.processor}`, record));
  }
  const stream = pipeline(stages as [Readable, ...Duplex[]], () => undefined) as unknown as Readable;
  options.signal.addEventListener('abort', () => stream.destroy(options.signal.reason as Error), { once: true });
  return { stream, checks };
}

/** Reads a decoded stream to its end, for the checks only; rejects with the first error. */
export async function drain(stream: Readable): Promise<void> {
  for await (const chunk of stream) void chunk;
}
