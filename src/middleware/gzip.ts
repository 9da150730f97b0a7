import { Duplex } from 'node:stream';
import { createGunzip, createGzip, type Gunzip, type Gzip } from 'node:zlib';
import { BackerError } from '../errors.js';
import { cancelledError } from '../util/abort.js';
import { defineMiddleware } from '../plugins/define.js';
import { gzipMiddlewareSchema, type GzipMiddlewareConfig } from './gzip.schema.js';
import type { Middleware } from './types.js';

const COMPONENT = 'middleware gzip';
/**
 * Output chunk of compression (zlib's default is 16 KiB): each call on the thread pool is a job,
 * a wake-up of a pool thread and one of the main thread, so a larger buffer costs less per byte.
 */
const ENCODE_CHUNK = 64 * 1024;
/**
 * Output chunk of decompression (zlib's default is 16 KiB). A dump compresses ~20:1, so 16 KiB
 * chunks mean ~6,000 chunks per 100 MiB, each a thread-pool job and a trip through every stage
 * after it (hash check, SQL filter, Docker exec stdin); 256 KiB cuts the restore's CPU per byte.
 */
const DECODE_CHUNK = 256 * 1024;

/** Compresses in-process with zlib: no external program, output readable by `gzip -d`. */
export function createGzipMiddleware(config: GzipMiddlewareConfig): Middleware {
  return {
    name: config.name,
    type: 'gzip',
    extension: '.gz',
    mime: 'application/gzip',
    encode: (signal) => guard(createGzip({ level: config.level, chunkSize: ENCODE_CHUNK }), 'compress', config.name, signal),
    decode: (signal) => guard(createGunzip({ chunkSize: DECODE_CHUNK }), 'decompress', config.name, signal),
  };
}

/**
 * Wraps a zlib stream so that its failures (corrupt or truncated input) surface as
 * MIDDLEWARE_FAILED, like every other middleware, and so that aborting `signal` destroys it.
 * zlib reports errors by destroying itself with a plain Error, which cannot be rewritten in place.
 */
function guard(inner: Gzip | Gunzip, action: string, name: string, signal: AbortSignal): Duplex {
  const onAbort = (): void => {
    outer.destroy(cancelledError(COMPONENT, signal.reason));
  };
  const outer = new Duplex({
    write(chunk: Buffer, _encoding, callback) {
      if (inner.write(chunk)) callback();
      else inner.once('drain', () => callback());
    },
    final(callback) {
      // 'end' of the readable side carries the verdict; finishing the input only means zlib took it.
      inner.once('finish', () => callback());
      inner.end();
    },
    read() {
      inner.resume();
    },
    destroy(err, callback) {
      signal.removeEventListener('abort', onAbort);
      inner.destroy();
      callback(err);
    },
  });
  inner.on('data', (chunk: Buffer) => {
    if (!outer.push(chunk)) inner.pause();
  });
  inner.on('end', () => outer.push(null));
  inner.on('error', (err: NodeJS.ErrnoException) => {
    outer.destroy(
      new BackerError('MIDDLEWARE_FAILED', `gzip cannot ${action} the stream: ${err.message}`, {
        component: COMPONENT,
        details: { middleware: name, zlib_code: err.code },
        cause: err,
      }),
    );
  });
  if (signal.aborted) onAbort();
  else signal.addEventListener('abort', onAbort, { once: true });
  return outer;
}

/** The `gzip` middleware plugin: its options schema (gzip.schema.ts), the programs it needs, its driver. */
export const gzipPlugin = defineMiddleware({
  type: 'gzip',
  options: gzipMiddlewareSchema,
  tools: [],
  create: createGzipMiddleware,
});
