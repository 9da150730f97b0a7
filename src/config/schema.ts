import { z } from 'zod';

/** Names of targets, middleware and mandates end up in object keys and file names. */
export const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;
export const nameSchema = z
  .string()
  .regex(NAME_PATTERN, 'expected a name of letters, digits, "_", "." or "-" (starting with a letter or digit)');

const targetBase = {
  name: nameSchema,
  /** The target used by mandates that name none. Default: false. */
  default: z.boolean().default(false),
};

export const localTargetSchema = z
  .object({
    ...targetBase,
    type: z.literal('local'),
    /** Directory that holds `<mandate>/<name><ext>` and the manifests. Created when missing. */
    path: z.string().min(1),
  })
  .strict();

export const s3TargetSchema = z
  .object({
    ...targetBase,
    type: z.literal('s3'),
    bucket: z.string().min(3).max(63),
    /** Prepended to every key, e.g. `backups/`. Default: "". */
    prefix: z.string().default(''),
    /** For S3-compatible servers, e.g. `http://127.0.0.1:9000`. Default: AWS. */
    endpoint: z.string().url().optional(),
    /** Default: us-east-1. */
    region: z.string().min(1).default('us-east-1'),
    /** Path-style addressing (most S3-compatible servers need it). Default: false. */
    force_path_style: z.boolean().default(false),
    /** Default: the AWS SDK's credential chain (environment, profile, instance role). */
    access_key_id: z.string().min(1).optional(),
    secret_access_key: z.string().min(1).optional(),
    /** Multipart part size in MiB (5..5120). Default: 16 (fits 160 GiB under the 10000-part limit). */
    part_size_mb: z.number().int().min(5).max(5120).default(16),
    /** Parts uploaded at once. Default: 4. Memory per upload is about part_size_mb × queue_size. */
    queue_size: z.number().int().min(1).max(64).default(4),
    /** e.g. STANDARD_IA. Default: the bucket's default. */
    storage_class: z.string().min(1).optional(),
    /** e.g. AES256 or aws:kms. Default: none. */
    server_side_encryption: z.string().min(1).optional(),
  })
  .strict()
  .refine((t) => (t.access_key_id === undefined) === (t.secret_access_key === undefined), {
    message: 'access_key_id and secret_access_key must be given together',
    path: ['secret_access_key'],
  });

export const targetSchema = z.union([localTargetSchema, s3TargetSchema]);

export const gzipMiddlewareSchema = z
  .object({
    name: nameSchema,
    type: z.literal('gzip'),
    /** 1 (fast) .. 9 (small). Default: 6. */
    level: z.number().int().min(1).max(9).default(6),
  })
  .strict();

export const ccryptMiddlewareSchema = z
  .object({
    name: nameSchema,
    type: z.literal('ccrypt'),
    /** The ccrypt keyword. Use `${VAR}` to take it from Backer's environment. */
    key: z.string().min(1),
  })
  .strict();

export const middlewareSchema = z.discriminatedUnion('type', [gzipMiddlewareSchema, ccryptMiddlewareSchema]);

export type LocalTargetConfig = z.infer<typeof localTargetSchema>;
export type S3TargetConfig = z.infer<typeof s3TargetSchema>;
export type TargetConfig = z.infer<typeof targetSchema>;
export type GzipMiddlewareConfig = z.infer<typeof gzipMiddlewareSchema>;
export type CcryptMiddlewareConfig = z.infer<typeof ccryptMiddlewareSchema>;
export type MiddlewareConfig = z.infer<typeof middlewareSchema>;
