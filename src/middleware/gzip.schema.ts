import { z } from 'zod';
import { nameSchema } from '../config/schema-kit.js';

export const gzipMiddlewareSchema = z
  .object({
    name: nameSchema,
    type: z.literal('gzip'),
    /** 1 (fast) .. 9 (small). Default: 6. */
    level: z.number().int().min(1).max(9).default(6),
  })
  .strict();

export type GzipMiddlewareConfig = z.infer<typeof gzipMiddlewareSchema>;
