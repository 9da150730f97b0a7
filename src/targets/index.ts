import type { TargetConfig } from '../config/schema.js';
import { createLocalTarget } from './local.js';
import { createS3Target } from './s3.js';
import type { Target } from './types.js';

export type { ObjectInfo, Target, WriteOptions } from './types.js';

/** Builds the driver named by `config.type`; the file name of each driver is its type id. */
export function createTarget(config: TargetConfig): Target {
  switch (config.type) {
    case 'local':
      return createLocalTarget(config);
    case 's3':
      return createS3Target(config);
    default: {
      // Adding a type to the schema without a driver fails to compile here.
      const unknown: never = config;
      throw new Error(`unknown target type ${JSON.stringify(unknown)}`);
    }
  }
}
