import { BackerError } from '../errors.js';
import { failedStream } from '../util/failed-stream.js';
import { spawnDuplex } from '../util/spawn-duplex.js';
import { defineMiddleware } from '../plugins/define.js';
import { ageMiddlewareSchema, type AgeMiddlewareConfig } from './age.schema.js';
import type { Middleware } from './types.js';

const COMPONENT = 'middleware age';
/** The shell below takes the identity from this variable and drops it before age starts. */
const IDENTITY_VARIABLE = 'BACKER_AGE_IDENTITY';

/**
 * age reads an identity only from a path, and Node's stdio pipes are socketpairs, which
 * `/dev/fd/N` cannot reopen. So a shell makes a real pipe: a here-document, which dash writes
 * into a pipe(2) (never a file), becomes fd 3. The identity reaches the shell through its
 * environment (argv is public); the shell unsets it, then execs age, which keeps the pid, so
 * signals and the exit status are age's own and age's environment holds no key.
 */
const DECRYPT_WITH_INLINE_IDENTITY = `identity=$${IDENTITY_VARIABLE}
unset ${IDENTITY_VARIABLE}
exec age --decrypt -i /dev/fd/3 3<<BACKER_AGE_IDENTITY_END
$identity
BACKER_AGE_IDENTITY_END
`;

/**
 * Encrypts with the real `age` program in filter mode (stdin → stdout) to public-key recipients,
 * so the artifact decrypts with a plain `age -d -i key.txt`. Decoding needs `identity` or
 * `identity_file`; without one, decode fails at once. Passphrases are refused by the config
 * schema: age reads them only from a terminal.
 */
export function createAgeMiddleware(config: AgeMiddlewareConfig): Middleware {
  const recipients = [...config.recipients.flatMap((r) => ['-r', r.trim()]), ...(config.recipients_file === undefined ? [] : ['-R', config.recipients_file])];
  return {
    name: config.name,
    type: 'age',
    extension: '.age',
    mime: 'application/age-encryption',
    // Recipients are public keys: argv is fine for them.
    encode: (signal) => spawnDuplex({ command: 'age', args: ['--encrypt', ...recipients], signal, component: COMPONENT }),
    cannotDecode: () =>
      config.identity === undefined && config.identity_file === undefined ? `age middleware ${config.name} has no identity or identity_file (it can only encrypt)` : null,
    decode: (signal) => {
      if (config.identity !== undefined) {
        return spawnDuplex({
          command: 'sh',
          args: ['-c', DECRYPT_WITH_INLINE_IDENTITY],
          env: { [IDENTITY_VARIABLE]: config.identity },
          name: 'age',
          signal,
          component: COMPONENT,
        });
      }
      if (config.identity_file !== undefined) {
        return spawnDuplex({ command: 'age', args: ['--decrypt', '-i', config.identity_file], signal, component: COMPONENT });
      }
      return failedStream(
        new BackerError('MIDDLEWARE_FAILED', `age middleware ${config.name} cannot decode: it has no identity or identity_file (it can only encrypt)`, {
          component: COMPONENT,
          details: { middleware: config.name },
          permanent: true,
        }),
      );
    },
  };
}

/** The `age` middleware plugin: its options schema (age.schema.ts), the programs it needs, its driver. */
export const agePlugin = defineMiddleware({
  type: 'age',
  options: ageMiddlewareSchema,
  tools: ['age'],
  create: createAgeMiddleware,
});
