import { z } from 'zod';
import { modeSchema, targetBase } from '../config/schema-kit.js';

/** Options of the local target (`type: local`); the driver is local.ts. */

export const localTargetSchema = z
  .object({
    ...targetBase,
    type: z.literal('local'),
    /** Directory that holds `<mandate>/<name><ext>` and the manifests. Created when missing. */
    path: z.string().min(1),
    /** Mode of artifacts and manifests, an octal string such as "0640". Default: "0600" (owner only). */
    file_mode: modeSchema('file', 0o600).optional(),
    /** Mode of the directories Backer creates, e.g. "0750". Default: "0700". Existing ones are left as they are. */
    dir_mode: modeSchema('directory', 0o700).optional(),
  })
  .strict();

export type LocalTargetConfig = z.infer<typeof localTargetSchema>;
