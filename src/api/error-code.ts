import { z } from '@hono/zod-openapi';
import { RETRY_CLASS, type ErrorCode } from '../errors.js';

/** Every code of src/errors.ts (its RETRY_CLASS table names each one). */
export const ERROR_CODES = Object.keys(RETRY_CLASS).sort() as [ErrorCode, ...ErrorCode[]];
export const errorCodeSchema = z.enum(ERROR_CODES).openapi('ErrorCode');

/** A job's or a result's error: its stable code and message; null when there is none. */
export const jobErrorSchema = z.object({ code: errorCodeSchema, message: z.string() }).nullable();
