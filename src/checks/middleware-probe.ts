import { Readable, type Duplex } from 'node:stream';
import { BackerError } from '../errors.js';
import { middlewarePlugins } from '../middleware/index.js';
import type { Middleware } from '../middleware/types.js';
import { findProgram } from '../plugins/tools.js';

const COMPONENT = 'mandate-test';

/** Pushes `input` through `transform` and collects what comes out; rejects with the transform's error. */
async function through(transform: Duplex, input: Buffer): Promise<Buffer> {
  const chunks: Buffer[] = [];
  const source = Readable.from([input]);
  source.on('error', (err) => transform.destroy(err));
  source.pipe(transform);
  for await (const chunk of transform) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/**
 * The middleware's programs are on the host's PATH, and it encodes a few bytes with the
 * configured keys (recipients that do not parse fail here); when it can decode, the bytes must
 * come back unchanged. Nothing is written anywhere.
 */
export async function middlewareUsable(middleware: Middleware, signal: AbortSignal): Promise<string> {
  const tools = middlewarePlugins.find((p) => p.type === middleware.type)?.tools ?? [];
  const missing: string[] = [];
  for (const tool of tools) if ((await findProgram(tool)) === undefined) missing.push(tool);
  if (missing.length > 0) {
    throw new BackerError('TOOL_MISSING', `the program ${missing.join(', ')} of middleware ${middleware.name} is not installed (not found on PATH)`, {
      component: COMPONENT,
      details: { middleware: middleware.name, missing },
      permanent: true,
    });
  }
  const sample = Buffer.from('backer mandates test: a few bytes through the middleware\n');
  const encoded = await through(middleware.encode(signal), sample);
  if (encoded.length === 0) throw new BackerError('CHECK_FAILED', `middleware ${middleware.name} produced no output`, { component: COMPONENT });
  const programs = tools.length > 0 ? ` (${tools.join(', ')} found)` : '';
  const cannot = middleware.cannotDecode?.() ?? null;
  if (cannot !== null) return `${middleware.type}: encodes${programs}; ${cannot}`;
  const decoded = await through(middleware.decode(signal), encoded);
  if (!decoded.equals(sample)) {
    throw new BackerError('CHECK_FAILED', `middleware ${middleware.name} did not decode its own output back to the input`, { component: COMPONENT });
  }
  return `${middleware.type}: encodes and decodes${programs}`;
}
