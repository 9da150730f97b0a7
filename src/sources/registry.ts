import type { SourceDefinition } from './types.js';

/** Every known source type, by its `backer.type` value. Filled in by sources/index.ts. */
export type SourceRegistry = ReadonlyMap<string, SourceDefinition<unknown>>;
