import type { MiddlewareConfig } from '../config/schema.js';
import { agePlugin } from './age.js';
import { ccryptPlugin } from './ccrypt.js';
import { gpgPlugin } from './gpg.js';
import { gzipPlugin } from './gzip.js';
import type { Middleware } from './types.js';
import { zstdPlugin } from './zstd.js';

export type { Middleware } from './types.js';

/** Every middleware plugin; the file name of each is its type id. */
export const middlewarePlugins = [gzipPlugin, ccryptPlugin, zstdPlugin, gpgPlugin, agePlugin] as const;

/** Builds the middleware a validated config entry describes. */
export function createMiddleware(config: MiddlewareConfig): Middleware {
  switch (config.type) {
    case 'gzip':
      return gzipPlugin.create(config);
    case 'ccrypt':
      return ccryptPlugin.create(config);
    case 'zstd':
      return zstdPlugin.create(config);
    case 'gpg':
      return gpgPlugin.create(config);
    case 'age':
      return agePlugin.create(config);
  }
}
