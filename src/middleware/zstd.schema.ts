import { z } from 'zod';
import { nameSchema } from '../config/schema-kit.js';

export const zstdMiddlewareSchema = z
  .object({
    name: nameSchema,
    type: z.literal('zstd'),
    /** 1 (fast) .. 19 (small). Default: 3. */
    level: z.number().int().min(1).max(19).default(3),
    /** Worker threads (`zstd -T`); 0 = one per core. Default: 1. */
    threads: z.number().int().min(0).max(256).default(1),
  })
  .strict();

export type ZstdMiddlewareConfig = z.infer<typeof zstdMiddlewareSchema>;
