import { z } from '@hono/zod-openapi';
import { verificationSchema, VERIFY_LEVELS } from '../manifests/verification.js';
import { jobErrorSchema } from './error-code.js';

/**
 * A job's `result`, by kind, for the API's document: what runBackup (BackupResult), runRestore
 * (RestoreResult) and runVerify (VerifyResult, also a drill's, with level `drill`) return. The
 * pipeline's types must stay values of these schemas: test/unit/job-results.test.ts checks the
 * types at compile time; real results are validated against the served document in
 * test/api-auth.test.ts (a backup's) and against these schemas in test/restore-new.test.ts (a
 * backup's, a restore's, a drill's).
 */

export const backupTargetResultSchema = z
  .object({
    target: z.string(),
    status: z.enum(['succeeded', 'failed']),
    artifact_key: z.string(),
    manifest_key: z.string().nullable().openapi({ description: 'null: no manifest was written there (the backup failed on this target)' }),
    size: z.number().int().nullable().openapi({ description: 'bytes stored; null when the upload failed' }),
    error: jobErrorSchema,
    retention_deleted: z.array(z.string()).openapi({ description: 'backups that retention deleted after this one was stored' }),
    retention_error: z.string().nullable(),
    retryable: z.boolean(),
  })
  .openapi('BackupTargetResult');

export const backupResultSchema = z
  .object({
    uuid: z.string(),
    name: z.string(),
    status: z.enum(['succeeded', 'failed']),
    error: jobErrorSchema,
    raw_size: z.number().int().nullable().openapi({ description: 'bytes of the raw dump, before middleware; null when the stream failed' }),
    targets: z.array(backupTargetResultSchema),
    retryable: z.boolean().openapi({ description: 'the queue tries a failed backup again only when this is true' }),
  })
  .openapi('BackupResult', { description: "A backup job's result (no `kind`)." });

/** What a restore plans (a dry run's answer, and the first half of a restore job's result). */
export const restorePlanFields = {
  kind: z.literal('restore'),
  mandate: z.string(),
  backup: z.string().openapi({ description: 'the backup chosen (`latest` resolved to its name)' }),
  target: z.string(),
  to: z.string(),
  plan: z.array(z.string()).openapi({ description: 'what the restore will do, step by step' }),
  stops: z.array(z.string()).openapi({ description: 'containers stopped while it applies (started again afterwards)' }),
  takes_safety_backup: z.boolean().openapi({ description: 'a safety backup of the original is taken first' }),
  artifact_bytes: z.number().int(),
  raw_bytes: z.number().int(),
  dry_run: z.boolean(),
};

export const restoreResultSchema = z
  .looseObject({
    ...restorePlanFields,
    safety_backup: z.string().nullable().openapi({ description: 'the name of the safety backup taken first, if any' }),
    rolled_back: z.boolean().openapi({ description: 'the original was put back after a failed restore' }),
    rollback_error: z.string().nullable(),
  })
  .openapi('RestoreResult', { description: "A restore job's result; a source may add its own fields." });

export const verifyResultSchema = z
  .looseObject({
    kind: z.literal('verify'),
    level: z.enum(VERIFY_LEVELS),
    verifications: z.array(
      verificationSchema.extend({
        record_key: z.string().nullable().openapi({ description: 'where the verification record was written next to the manifest' }),
        record_error: z.string().nullable(),
      }),
    ),
  })
  .openapi('VerifyResult', { description: "A verify or drill job's result (a drill: level `drill`)." });

export const jobResultSchema = z.union([backupResultSchema, restoreResultSchema, verifyResultSchema]);
