/**
 * Token scopes, apart from the API's routes (src/api/route.ts re-exports them): the config schema
 * and the CLI need them without loading hono and the OpenAPI tooling.
 */

/** What a token may do: `read` ⊂ `operate` ⊂ `admin`. */
export type Scope = 'read' | 'operate' | 'admin';
export const SCOPES: readonly Scope[] = ['read', 'operate', 'admin'];
