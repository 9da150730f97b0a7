import { isAbsolute } from 'node:path';
import { z } from 'zod';

/** Building blocks shared by the config's own schema and the plugins' options schemas. */

/**
 * What `backer config schema` (json-schema.ts) prints for a schema it cannot look into (a
 * `z.custom`, a record checked by a refinement). Keyed by the schema object.
 */
const jsonSchemaHints = new WeakMap<object, Record<string, unknown>>();

/** Registers the JSON Schema of `schema` for `backer config schema`; returns `schema`. */
export function withJsonSchema<T extends z.ZodType>(schema: T, jsonSchema: Record<string, unknown>): T {
  jsonSchemaHints.set(schema, jsonSchema);
  return schema;
}

/** The JSON Schema registered for a zod schema, if any. */
export function jsonSchemaHint(schema: object): Record<string, unknown> | undefined {
  return jsonSchemaHints.get(schema);
}

/** Names of targets, middleware and mandates end up in object keys and file names. */
export const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;
export const nameSchema = z
  .string()
  .regex(NAME_PATTERN, 'expected a name of letters, digits, "_", "." or "-" (starting with a letter or digit)');

/** The keys every target has. */
export const targetBase = {
  name: nameSchema,
  /** The target used by mandates that name none. Default: false. */
  default: z.boolean().default(false),
  /** Jobs that use this target at once (e.g. 1 for a slow NAS). Default: no limit beyond queue.concurrency. */
  concurrency: z.number().int().min(1).optional(),
};

/**
 * A permission mode as an octal string in quotes ("0640"). A YAML number is refused: YAML 1.2
 * reads 0640 as decimal 640, which would silently be a different mode. `ownerNeeds` are the
 * bits Backer itself needs (it writes and reads its own files).
 */
export function modeSchema(kind: 'file' | 'directory', ownerNeeds: number): z.ZodType<string, unknown> {
  const example = kind === 'file' ? '"0640"' : '"0750"';
  const schema = z
    .custom<string>((v) => typeof v === 'string', { message: `expected an octal mode in quotes, such as ${example}` })
    .refine((v) => /^0?[0-7]{3}$/.test(v), { message: `expected an octal mode such as ${example} (three octal digits, optionally after a 0)` })
    .refine((v) => (parseInt(v, 8) & ownerNeeds) === ownerNeeds, {
      message: `the owner (Backer) needs ${ownerNeeds.toString(8).padStart(4, '0')} on every ${kind}`,
    });
  return withJsonSchema(schema, { type: 'string', pattern: '^0?[0-7]{3}$' });
}

export const absolutePath = z.string().min(1).refine(isAbsolute, 'expected an absolute path');
