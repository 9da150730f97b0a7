import { text } from 'node:stream/consumers';
import { z } from 'zod';
import type { Target } from '../targets/types.js';
import { MANIFEST_SUFFIX } from './schema.js';

/** `<mandate>/<name>.verify-<time>.json`, next to the backup's manifest, never rewritten. */
export const VERIFY_INFIX = '.verify-';

export const VERIFY_LEVELS = ['size', 'hash', 'decode', 'drill'] as const;
export type VerifyLevel = (typeof VERIFY_LEVELS)[number];

export const verificationCheckSchema = z.object({
  check: z.string(),
  ok: z.boolean(),
  expected: z.union([z.string(), z.number(), z.null()]).optional(),
  actual: z.union([z.string(), z.number(), z.null()]).optional(),
});

export const verificationSchema = z.object({
  verification_version: z.literal(1),
  backup: z.string(),
  uuid: z.string(),
  mandate: z.string(),
  target: z.string(),
  level: z.enum(VERIFY_LEVELS),
  outcome: z.enum(['passed', 'failed']),
  checks: z.array(verificationCheckSchema),
  error: z.object({ code: z.string(), message: z.string() }).nullable(),
  started_at: z.string(),
  duration_ms: z.number(),
  backer_version: z.string(),
});

export type Verification = z.infer<typeof verificationSchema>;
export type VerificationCheck = z.infer<typeof verificationCheckSchema>;

export function verificationKey(manifestKey: string, at: Date): string {
  const stamp = at.toISOString().replace(/[:.]/g, '-');
  return `${manifestKey.slice(0, -MANIFEST_SUFFIX.length)}${VERIFY_INFIX}${stamp}.json`;
}

/** The newest valid verification record of a backup, or null. Invalid records are skipped (never trusted). */
export async function latestVerification(target: Target, manifestKey: string): Promise<Verification | null> {
  const prefix = `${manifestKey.slice(0, -MANIFEST_SUFFIX.length)}${VERIFY_INFIX}`;
  const keys = (await target.list(prefix)).map((o) => o.key).sort().reverse();
  for (const key of keys) {
    const parsed = verificationSchema.safeParse(await target.read(key).then(text).then((t) => JSON.parse(t) as unknown, () => null));
    if (parsed.success) return parsed.data;
  }
  return null;
}
