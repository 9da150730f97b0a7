import { z } from 'zod';
import { nameSchema } from '../config/schema-kit.js';

export const ccryptMiddlewareSchema = z
  .object({
    name: nameSchema,
    type: z.literal('ccrypt'),
    /** The ccrypt keyword. Use `${VAR}` to take it from Backer's environment. */
    key: z.string().min(1),
  })
  .strict();

export type CcryptMiddlewareConfig = z.infer<typeof ccryptMiddlewareSchema>;
