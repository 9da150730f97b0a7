import type { TargetConfig } from '../config/schema.js';
import { localPlugin } from './local.js';
import { s3Plugin } from './s3.js';
import { withManifestInvalidation } from '../manifests/cache.js';
import type { Target } from './types.js';

export type { ObjectInfo, SweepOptions, SweepReport, Target, WriteOptions } from './types.js';

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
