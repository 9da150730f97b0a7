import { configJsonSchema } from '../../config/json-schema.js';
import { EXIT } from '../exit-codes.js';
import { printJson } from '../output.js';

/** Prints the JSON Schema of backer.yml, for editors: `backer config schema > backer.schema.json`. */
export function configSchemaCommand(): Promise<number> {
  printJson(configJsonSchema());
  return Promise.resolve(EXIT.OK);
}
