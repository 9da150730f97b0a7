import type { MiddlewareConfig } from '../config/schema.js';
import { createAgeMiddleware } from './age.js';
import { createCcryptMiddleware } from './ccrypt.js';
import { createGpgMiddleware } from './gpg.js';
import { createGzipMiddleware } from './gzip.js';
import type { Middleware } from './types.js';
import { createZstdMiddleware } from './zstd.js';

export type { Middleware } from './types.js';

/** Builds the middleware a validated config entry describes. */
export function createMiddleware(config: MiddlewareConfig): Middleware {
  switch (config.type) {
    case 'gzip':
      return createGzipMiddleware(config);
    case 'ccrypt':
      return createCcryptMiddleware(config);
    case 'zstd':
      return createZstdMiddleware(config);
    case 'gpg':
      return createGpgMiddleware(config);
    case 'age':
      return createAgeMiddleware(config);
  }
}
