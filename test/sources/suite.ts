import { Readable } from 'node:stream';
import Docker from 'dockerode';
import { expect, inject, it } from 'vitest';
import { BackerError } from '../../src/errors.js';
import { createLogger, SecretRegistry } from '../../src/logging/logger.js';
import type { DumpContext, RestoreDestination, RestoreRequest, SourceDefinition, SourceInfo } from '../../src/sources/types.js';

/**
 * The one dump-and-restore suite every source passes (architecture rule 2): each source's test
 * file builds its containers and calls `restoreSuite` with what is specific to its engine.
 * It calls the plugin directly (no daemon, no middleware): the pipeline's own tests cover those.
 */

export const engine = (): Docker => new Docker({ socketPath: inject('dockerHost').replace(/^unix:\/\//, '') });

export function sourceContext(mandate: string, signal: AbortSignal = new AbortController().signal): DumpContext {
  const secrets = new SecretRegistry();
  return {
    mandate,
    signal,
    logger: createLogger({ level: 'warn', format: 'json', secrets }),
    docker: engine(),
    registerSecret: (v) => secrets.add(v),
  };
}

/** Runs the source's dump to its end and returns every raw byte and the manifest's source record. */
export async function dumpAll<O>(
  source: SourceDefinition<O>,
  options: O,
  container: string | null,
  mandate = 'suite',
  context: (mandate: string) => DumpContext = sourceContext,
): Promise<{ bytes: Buffer; info: SourceInfo }> {
  const dump = await source.dump(options, { container }, context(mandate));
  const chunks: Buffer[] = [];
  for await (const chunk of dump.stream) chunks.push(chunk as Buffer);
  return { bytes: Buffer.concat(chunks), info: dump.info() };
}

export function restoreRequest(container: string | null, destination: RestoreDestination, info: SourceInfo, extra: Partial<RestoreRequest> = {}): RestoreRequest {
  return { source: { container }, destination, databases: new Map(), manifest: info, confirmed: true, ...extra };
}

export const original = (container: string): RestoreDestination => ({ kind: 'container', container, original: true, scratch: false });

/** A stream that yields `bytes` up to `failAt` and then errors, like a decode that failed half-way. */
export function failingInput(bytes: Buffer, failAt: number): Readable {
  let sent = false;
  return new Readable({
    read() {
      if (!sent) {
        sent = true;
        this.push(bytes.subarray(0, failAt));
        return;
      }
      this.destroy(new BackerError('VERIFY_FAILED', 'input broke off half-way (test)', { component: 'test' }));
    },
  });
}

export interface RestoreCase<O> {
  source: SourceDefinition<O>;
  options: O;
  /** The container backed up (null for host sources). */
  container: string | null;
  /** Where `restore` writes in the round-trip test. Default: the original container. */
  destination?: RestoreDestination;
  /** Changes the data after the backup: rows added and changed, a new table, keys deleted … */
  change(): Promise<void>;
  /** The data as the test compares it (checksums, row counts, values, file hashes), at `destination`. */
  fingerprint(): Promise<string>;
  /** The context the plugin gets (e.g. with `settings` for a helper image). Default: sourceContext. */
  context?: (mandate: string) => DumpContext;
}

/** Registers the shared tests; `setup` runs inside each test after the file's beforeAll. */
export function restoreSuite<O>(name: string, setup: () => RestoreCase<O>): void {
  it(`${name}: restore brings the destination back to the backed-up state`, async () => {
    const c = setup();
    const destination = c.destination ?? original(c.container ?? '');
    const context = c.context ?? sourceContext;
    const before = await c.fingerprint();
    const { bytes, info } = await dumpAll(c.source, c.options, c.container, 'suite', context);
    await c.change();
    expect(await c.fingerprint()).not.toBe(before);
    const request = restoreRequest(c.container, destination, info);
    const plan = await c.source.planRestore?.(c.options, request, context('suite'));
    expect(plan?.steps.length ?? 0).toBeGreaterThan(0);
    await c.source.restore?.(c.options, request, Readable.from([bytes]), context('suite'));
    expect(await c.fingerprint()).toBe(before);
  });

  it(`${name}: an input that breaks off half-way fails the restore loudly`, async () => {
    const c = setup();
    const context = c.context ?? sourceContext;
    const destination = c.destination ?? original(c.container ?? '');
    const { bytes, info } = await dumpAll(c.source, c.options, c.container, 'suite', context);
    const request = restoreRequest(c.container, destination, info);
    const restore = c.source.restore?.(c.options, request, failingInput(bytes, Math.floor(bytes.length / 2)), context('suite'));
    await expect(restore).rejects.toBeInstanceOf(BackerError);
  });
}
