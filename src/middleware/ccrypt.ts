import { spawnDuplex } from '../util/spawn-duplex.js';
import { defineMiddleware } from '../plugins/define.js';
import { ccryptMiddlewareSchema, type CcryptMiddlewareConfig } from './ccrypt.schema.js';
import type { Middleware } from './types.js';

const COMPONENT = 'middleware ccrypt';
/** ccrypt reads the keyword from this variable (`-E`): argv would show it to every user through ps. */
const KEY_VARIABLE = 'BACKER_CCRYPT_KEY';

/**
 * Encrypts with the real `ccrypt` program in filter mode (stdin → stdout), so the artifact
 * decrypts with a plain `ccrypt -d`. A wrong key makes ccrypt exit non-zero, which errors the stream.
 */
export function createCcryptMiddleware(config: CcryptMiddlewareConfig): Middleware {
  const run = (mode: '-e' | '-d', signal: AbortSignal) =>
    spawnDuplex({
      command: 'ccrypt',
      // -q: no interactive questions or warnings; there is no terminal to answer them.
      args: [mode, '-q', '-E', KEY_VARIABLE],
      env: { [KEY_VARIABLE]: config.key },
      signal,
      component: COMPONENT,
    });
  return {
    name: config.name,
    type: 'ccrypt',
    extension: '.cpt',
    mime: 'application/x-ccrypt',
    encode: (signal) => run('-e', signal),
    decode: (signal) => run('-d', signal),
  };
}

/** The `ccrypt` middleware plugin: its options schema (ccrypt.schema.ts), the programs it needs, its driver. */
export const ccryptPlugin = defineMiddleware({
  type: 'ccrypt',
  options: ccryptMiddlewareSchema,
  tools: ['ccrypt'],
  create: createCcryptMiddleware,
});
