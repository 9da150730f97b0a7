import type { z } from 'zod';
import type { Middleware } from '../middleware/types.js';
import type { Target } from '../targets/types.js';

/**
 * What every plugin declares: its `type` (the `type:` key of its config entry), its options
 * schema (the config assembles the plugins' schemas into its unions), the external programs it
 * needs on the host (`config check` reports a missing one before the first run), and how to
 * build it from a validated config entry.
 */
export interface Plugin<Type extends string, Options extends z.ZodTypeAny, Instance> {
  readonly type: Type;
  readonly options: Options;
  /** Programs looked up on PATH, e.g. `['ccrypt']`. None for in-process plugins. */
  readonly tools: readonly string[];
  create(config: z.output<Options>): Instance;
}

export type TargetPlugin<Type extends string, Options extends z.ZodTypeAny> = Plugin<Type, Options, Target>;
export type MiddlewarePlugin<Type extends string, Options extends z.ZodTypeAny> = Plugin<Type, Options, Middleware>;

/** A storage target plugin (src/targets/<type>.ts). Identity at run time: it fixes the types. */
export function defineTarget<Type extends string, Options extends z.ZodTypeAny>(plugin: TargetPlugin<Type, Options>): TargetPlugin<Type, Options> {
  return plugin;
}

/** A middleware plugin (src/middleware/<type>.ts). Identity at run time: it fixes the types. */
export function defineMiddleware<Type extends string, Options extends z.ZodTypeAny>(
  plugin: MiddlewarePlugin<Type, Options>,
): MiddlewarePlugin<Type, Options> {
  return plugin;
}
