import { filesSource } from './files.js';
import { mysqlSource } from './mysql.js';
import { redisSource } from './redis.js';
import { sqliteSource } from './sqlite.js';
import { postgresSource } from './postgres.js';
import { volumeSource } from './volume.js';
import type { SourceRegistry } from './registry.js';
import type { SourceDefinition } from './types.js';

export const sources: SourceRegistry = new Map<string, SourceDefinition<unknown>>([
  [mysqlSource.type, mysqlSource],
  [filesSource.type, filesSource],
  [redisSource.type, redisSource],
  [sqliteSource.type, sqliteSource],
  [postgresSource.type, postgresSource],
  [volumeSource.type, volumeSource],
]);
