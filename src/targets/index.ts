import type { TargetConfig } from '../config/schema.js';
import { localPlugin } from './local.js';
import { defineTarget } from '../plugins/define.js';
import { lazyTarget } from './lazy.js';
import { s3TargetSchema } from './s3.schema.js';
import { withManifestInvalidation } from '../manifests/cache.js';
import type { Target } from './types.js';

export type { ObjectInfo, SweepOptions, SweepReport, Target, WriteOptions } from './types.js';

/**
 * The S3 plugin as registered here: its driver (src/targets/s3.ts, with the AWS SDK) is imported
 * at the target's first use, not at start (see lazy.ts); type, options and tools as in s3.ts.
 */
const s3Plugin = defineTarget({
  type: 's3',
  options: s3TargetSchema,
  tools: [],
  create: (config) => lazyTarget(config.name, 's3', async () => (await import('./s3.js')).s3Plugin.create(config)),
});

/** Every target plugin; the file name of each is its type id. */
export const targetPlugins = [localPlugin, s3Plugin] as const;

/**
 * Builds the driver named by `config.type`, wrapped so that its writes and removals invalidate
 * the manifest cache (src/manifests/cache.ts).
 */
export function createTarget(config: TargetConfig): Target {
  return withManifestInvalidation(createDriver(config));
}

function createDriver(config: TargetConfig): Target {
  switch (config.type) {
    case 'local':
      return localPlugin.create(config);
    case 's3':
      return s3Plugin.create(config);
    default: {
      // Adding a type to the schema without a driver fails to compile here.
      const unknown: never = config;
      throw new Error(`unknown target type ${JSON.stringify(unknown)}`);
    }
  }
}
