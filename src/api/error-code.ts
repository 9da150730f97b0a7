import { z } from '@hono/zod-openapi';
import { RETRY_CLASS, type ErrorCode } from '../errors.js';

/** Every code of src/errors.ts (its RETRY_CLASS table names each one). */
export const ERROR_CODES = Object.keys(RETRY_CLASS).sort() as [ErrorCode, ...ErrorCode[]];
export const errorCodeSchema = z.enum(ERROR_CODES).openapi('ErrorCode');
