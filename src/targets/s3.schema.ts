import { z } from 'zod';
import { targetBase } from '../config/schema-kit.js';

/** Options of the S3 target (`type: s3`); the driver is s3.ts (which loads the AWS SDK: the config does not import it). */

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
    /**
     * Multipart part size in MiB (5..5120). Default: 5, S3's smallest part (the least memory; a
     * larger part saves requests, not time: bench/README.md "Memory"). S3 allows 10,000 parts: the
     * upload starts with larger parts when the size hint (the mandate's previous artifact) needs
     * it, and past part 5,000 the parts grow, up to 16 × (s3-multipart.ts), so 5 MiB parts hold up
     * to 146 GiB of artifact (after compression and encryption) even without a hint; raise it for more.
     */
    part_size_mb: z.number().int().min(5).max(5120).default(5),
    /**
     * Parts uploaded at once. Default: 2. Memory per running upload is about
     * (queue_size + 1) × part_size_mb: one pool of part buffers, reused for the whole upload (the
     * parts in flight and the part being filled; 15 MiB with the defaults).
     */
    queue_size: z.number().int().min(1).max(64).default(2),
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

export type S3TargetConfig = z.infer<typeof s3TargetSchema>;
