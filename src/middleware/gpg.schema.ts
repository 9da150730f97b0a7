import { z } from 'zod';
import { absolutePath, nameSchema } from '../config/schema-kit.js';

const PGP_PUBLIC_KEY = '-----BEGIN PGP PUBLIC KEY BLOCK-----';
const PGP_PRIVATE_KEY = '-----BEGIN PGP PRIVATE KEY BLOCK-----';

/** Either `passphrase` (symmetric) or public keys; the rules are in checkGpgMiddleware. */
export const gpgMiddlewareSchema = z
  .object({
    name: nameSchema,
    type: z.literal('gpg'),
    /** Symmetric mode (AES256): one line, handed to gpg on a file descriptor. Use `${VAR}`. Default: none. */
    passphrase: z.string().min(1).optional(),
    /** Public-key mode: ASCII-armored public keys to encrypt to. Default: none. */
    public_keys: z.array(z.string().min(1)).default([]),
    /** Public-key mode: absolute paths of key files; every key in a file is a recipient. Default: none. */
    public_key_files: z.array(absolutePath).default([]),
    /** Public-key mode, to decode (restore, verify): the ASCII-armored private key. Default: none (encode only). */
    private_key: z.string().min(1).optional(),
    /** Like private_key, read from this absolute path at first decode. Default: none. */
    private_key_file: absolutePath.optional(),
    /** Unlocks a protected private key; one line. Default: none (key not protected). */
    private_key_passphrase: z.string().min(1).optional(),
  })
  .strict();

/** The rules that span gpg's keys (a discriminated union takes plain objects only: the config's union runs this). */
export function checkGpgMiddleware(m: z.infer<typeof gpgMiddlewareSchema>, ctx: z.RefinementCtx): void {
  const issue = (path: (string | number)[], message: string): void => ctx.addIssue({ code: z.ZodIssueCode.custom, path, message });
  const symmetric = m.passphrase !== undefined;
  const publicKey = m.public_keys.length > 0 || m.public_key_files.length > 0;
  if (!symmetric && !publicKey) issue([], 'gpg needs either passphrase or public_keys/public_key_files');
  if (symmetric && publicKey) issue(['passphrase'], 'gpg takes either passphrase or public_keys/public_key_files, not both');
  for (const key of ['passphrase', 'private_key_passphrase'] as const) {
    if (/[\r\n]/.test(m[key] ?? '')) issue([key], 'must be a single line: gpg reads only the first line');
  }
  m.public_keys.forEach((key, index) => {
    if (key.includes(PGP_PRIVATE_KEY)) issue(['public_keys', index], 'this is a private key: public_keys take public keys only (the private key goes in private_key)');
    else if (!key.includes(PGP_PUBLIC_KEY)) issue(['public_keys', index], `expected an ASCII-armored public key (${PGP_PUBLIC_KEY}…)`);
  });
  const hasPrivate = m.private_key !== undefined || m.private_key_file !== undefined;
  if (hasPrivate && symmetric) {
    issue([m.private_key !== undefined ? 'private_key' : 'private_key_file'], 'only for public-key mode: with passphrase, decoding uses the passphrase');
  }
  if (m.private_key !== undefined && m.private_key_file !== undefined) issue(['private_key_file'], 'give private_key or private_key_file, not both');
  if (m.private_key !== undefined && !m.private_key.includes(PGP_PRIVATE_KEY)) {
    issue(['private_key'], `expected an ASCII-armored private key (${PGP_PRIVATE_KEY}…)`);
  }
  if (m.private_key_passphrase !== undefined && !hasPrivate) {
    issue(['private_key_passphrase'], 'unlocks private_key or private_key_file, and neither is given');
  }
}

export type GpgMiddlewareConfig = z.infer<typeof gpgMiddlewareSchema>;
