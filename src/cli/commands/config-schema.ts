import { configJsonSchema, type SourceOptionKeys } from '../../config/json-schema.js';
import { sources } from '../../sources/index.js';
import { EXIT } from '../exit-codes.js';
import { printJson } from '../output.js';

/** Each source's option keys, from the schema its options are parsed with. */
export function sourceOptionKeys(): Record<string, SourceOptionKeys> {
  const out: Record<string, SourceOptionKeys> = {};
  for (const [type, definition] of sources) {
    if (definition.options) out[type] = { keys: definition.options.keys, ...(definition.options.passThrough === undefined ? {} : { passThrough: definition.options.passThrough }) };
  }
  return out;
}

/** Prints the JSON Schema of backer.yml, for editors: `backer config schema > backer.schema.json`. */
export function configSchemaCommand(): Promise<number> {
  printJson(configJsonSchema(sourceOptionKeys()));
  return Promise.resolve(EXIT.OK);
}
