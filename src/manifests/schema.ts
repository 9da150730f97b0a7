import { z } from 'zod';

/**
 * Version 2 adds `tags` (`safety` for the backup a restore takes first) and `source.stats` (what
 * drills compare against). Readers accept version 1, which has neither.
 */
export const MANIFEST_VERSION = 2;
export const MANIFEST_SUFFIX = '.manifest.json';

const hex = (length: number) => z.string().regex(new RegExp(`^[0-9a-f]{${length}}$`));

export const digestSchema = z.object({
  size: z.number().int().nonnegative(),
  md5: hex(32),
  sha256: hex(64),
});

export const stepSchema = digestSchema.extend({
  /** `source:mysql` for the raw dump, then `middleware:<type>:<name>` per transform. */
  processor: z.string().min(1),
  mime: z.string().min(1),
});

export const manifestSchema = z
  .object({
    manifest_version: z.union([z.literal(1), z.literal(MANIFEST_VERSION)]),
    uuid: z.string().uuid(),
    name: z.string().min(1),
    mandate: z.string().min(1),
    backer_version: z.string().min(1),
    created_at: z.string().datetime(),
    completed_at: z.string().datetime(),
    source: z
      .object({
        type: z.string().min(1),
        container: z.string().nullable(),
        image: z.string().nullable(),
        databases: z.array(z.string()),
      })
      .passthrough(),
    /** `safety`: taken by a restore before it replaced the data; kept by its own retention rule. */
    tags: z.array(z.string().min(1)).optional(),
    target: z.object({ name: z.string().min(1), type: z.string().min(1) }),
    steps: z.array(stepSchema).min(1),
    artifact: digestSchema.extend({ key: z.string().min(1), mime: z.string().min(1) }),
  })
  .strict()
  .superRefine((m, ctx) => {
    const last = m.steps[m.steps.length - 1];
    if (last && (last.size !== m.artifact.size || last.md5 !== m.artifact.md5 || last.sha256 !== m.artifact.sha256)) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['artifact'], message: 'artifact checksums differ from the last step' });
    }
  });

export type Digest = z.infer<typeof digestSchema>;
export type Step = z.infer<typeof stepSchema>;
export type Manifest = z.infer<typeof manifestSchema>;

export function manifestKey(mandate: string, name: string): string {
  return `${mandate}/${name}${MANIFEST_SUFFIX}`;
}
