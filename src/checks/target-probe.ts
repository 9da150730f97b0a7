import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import { BackerError, describeError } from '../errors.js';
import type { Target } from '../targets/types.js';

const COMPONENT = 'mandate-test';

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

function failed(target: Target, message: string, cause?: unknown): BackerError {
  return new BackerError('CHECK_FAILED', message, { component: COMPONENT, details: { target: target.name }, cause });
}

/** Write, read back, list: the steps of the probe; the caller removes the object whatever happens. */
async function exercise(target: Target, key: string, body: Buffer, signal: AbortSignal): Promise<void> {
  await target.write(key, Readable.from([body]), { signal, contentType: 'text/plain' }).catch((err: unknown) => {
    throw failed(target, `cannot write to target ${target.name}: ${describeError(err)}`, err);
  });
  const back = await target.read(key).then(readAll, (err: unknown) => {
    throw failed(target, `cannot read back from target ${target.name}: ${describeError(err)}`, err);
  });
  if (!back.equals(body)) throw failed(target, `target ${target.name} returned ${back.length} bytes instead of the ${body.length} written`);
  const listed = await target.list(key).catch((err: unknown) => {
    throw failed(target, `cannot list target ${target.name}: ${describeError(err)}`, err);
  });
  if (!listed.some((o) => o.key === key)) throw failed(target, `target ${target.name} does not list the object it just stored`);
}

/**
 * Stores a small probe object at the target's root (`.backer-probe-<uuid>`: never a backup's or
 * manifest's name), reads it back, finds it in a listing, and deletes it again, also when a step
 * failed. A probe that cannot be deleted is a failed check naming the key.
 */
export async function targetWritable(target: Target, mandate: string, signal: AbortSignal): Promise<string> {
  const key = `.backer-probe-${randomUUID()}`;
  const body = Buffer.from(`backer mandates test ${mandate} ${new Date().toISOString()}\n`);
  let failure: unknown;
  try {
    await exercise(target, key, body, signal);
  } catch (err) {
    failure = err;
  }
  try {
    await target.remove(key);
    if ((await target.stat(key)) !== undefined) throw new Error('it is still there');
  } catch (err) {
    // Only worth saying when the write itself went through.
    if (failure === undefined) throw failed(target, `target ${target.name} did not delete the probe object ${key}: ${describeError(err)}`, err);
  }
  if (failure !== undefined) throw failure instanceof Error ? failure : new Error(describeError(failure));
  return `${target.type} target ${target.name}: wrote, read back, listed and deleted a ${body.length}-byte probe`;
}
