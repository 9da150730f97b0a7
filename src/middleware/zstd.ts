import { spawnDuplex } from '../util/spawn-duplex.js';
import { defineMiddleware } from '../plugins/define.js';
import { zstdMiddlewareSchema, type ZstdMiddlewareConfig } from './zstd.schema.js';
import type { Middleware } from './types.js';

const COMPONENT = 'middleware zstd';

/**
 * Compresses with the real `zstd` program in filter mode (stdin → stdout), so the artifact
 * decompresses with a plain `zstd -d`. Corrupt or truncated input makes zstd exit non-zero,
 * which errors the stream.
 */
export function createZstdMiddleware(config: ZstdMiddlewareConfig): Middleware {
  const run = (args: string[], signal: AbortSignal) => spawnDuplex({ command: 'zstd', args, signal, component: COMPONENT });
  return {
    name: config.name,
    type: 'zstd',
    extension: '.zst',
    mime: 'application/zstd',
    // -q: no progress display; -c: to stdout even though it is not a terminal.
    encode: (signal) => run(['-q', '-c', `-${config.level}`, `-T${config.threads}`], signal),
    decode: (signal) => run(['-d', '-q', '-c'], signal),
  };
}

/** The `zstd` middleware plugin: its options schema (zstd.schema.ts), the programs it needs, its driver. */
export const zstdPlugin = defineMiddleware({
  type: 'zstd',
  options: zstdMiddlewareSchema,
  tools: ['zstd'],
  create: createZstdMiddleware,
});
