import { filesSource } from './files.js';
import { mysqlSource } from './mysql.js';
import type { SourceRegistry } from './registry.js';
import type { SourceDefinition } from './types.js';

export const sources: SourceRegistry = new Map<string, SourceDefinition<unknown>>([
  [mysqlSource.type, mysqlSource],
  [filesSource.type, filesSource],
]);
