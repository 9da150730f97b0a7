import type { MiddlewareConfig } from '../config/schema.js';
import { createCcryptMiddleware } from './ccrypt.js';
import { createGzipMiddleware } from './gzip.js';
import type { Middleware } from './types.js';

export type { Middleware } from './types.js';

/** Builds the middleware a validated config entry describes. */
export function createMiddleware(config: MiddlewareConfig): Middleware {
  switch (config.type) {
    case 'gzip':
      return createGzipMiddleware(config);
    case 'ccrypt':
      return createCcryptMiddleware(config);
  }
}
