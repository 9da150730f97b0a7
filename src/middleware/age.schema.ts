import { z } from 'zod';
import { absolutePath, nameSchema, withJsonSchema } from '../config/schema-kit.js';

/** Either recipients or recipients_file; the rules are in checkAgeMiddleware. */
export const ageMiddlewareSchema = z
  .object({
    name: nameSchema,
    type: z.literal('age'),
    /** Public keys to encrypt to: `age1…`, `ssh-ed25519 …` or `ssh-rsa …`. Default: none. */
    recipients: z.array(z.string().min(1)).default([]),
    /** Absolute path of a recipients file (`age -R`): one recipient a line, `#` comments. Default: none. */
    recipients_file: absolutePath.optional(),
    /** To decode (restore, verify): the secret key(s), `AGE-SECRET-KEY-1…`, as in an identity file. Default: none (encode only). */
    identity: z.string().min(1).optional(),
    /** Like identity, the absolute path of an identity file (`age -i`). Default: none. */
    identity_file: absolutePath.optional(),
    /** Refused: the age program reads passphrases only from a terminal, which a daemon does not have. */
    passphrase: withJsonSchema(
      z.custom<never>(() => false, {
        message: 'age reads passphrases only from a terminal, which Backer does not have: use recipients (age-keygen) instead',
      }),
      { not: {}, description: 'refused: age reads passphrases only from a terminal; use recipients' },
    ).optional(),
  })
  .strict();

const AGE_RECIPIENT = /^(age1[0-9a-z]+|ssh-(ed25519|rsa) \S+( .*)?)$/;

/** The rules that span age's keys (run by the config's middleware union, like checkGpgMiddleware). */
export function checkAgeMiddleware(m: z.infer<typeof ageMiddlewareSchema>, ctx: z.RefinementCtx): void {
  const issue = (path: (string | number)[], message: string): void => ctx.addIssue({ code: z.ZodIssueCode.custom, path, message });
  if (m.passphrase !== undefined) return; // already refused, and the recipients message would only add noise
  if (m.recipients.length === 0 && m.recipients_file === undefined) issue([], 'age needs recipients or recipients_file');
  m.recipients.forEach((recipient, index) => {
    if (recipient.includes('AGE-SECRET-KEY-')) issue(['recipients', index], 'this is a secret key: recipients take public keys (age1…), the secret key goes in identity');
    else if (!AGE_RECIPIENT.test(recipient.trim())) issue(['recipients', index], 'expected an age public key (age1…) or an SSH public key (ssh-ed25519 …, ssh-rsa …)');
  });
  if (m.identity !== undefined && m.identity_file !== undefined) issue(['identity_file'], 'give identity or identity_file, not both');
  if (m.identity !== undefined && !m.identity.includes('AGE-SECRET-KEY-') && !m.identity.includes('PRIVATE KEY-----')) {
    issue(['identity'], 'expected an age secret key (AGE-SECRET-KEY-1…) or an SSH private key');
  }
}

export type AgeMiddlewareConfig = z.infer<typeof ageMiddlewareSchema>;
