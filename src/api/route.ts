import { createRoute, OpenAPIHono, type RouteConfig } from '@hono/zod-openapi';
import type { Context, MiddlewareHandler, TypedResponse } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import type { ZodError } from 'zod';
import { BackerError } from '../errors.js';
import type { Logger } from '../logging/logger.js';
import { SCOPES, type Scope } from './scopes.js';

/**
 * The API's conventions, shared by every route file:
 * - every route is declared with `defineRoute(access, config)` and registered with `app.openapi(route, handler)`,
 *   so the document at `/v1/openapi.json` lists every route with its scope (`x-backer-scope`, `security`);
 * - handlers return `json(body, status)` (scrubbed of secrets) or a raw Response for streams;
 * - requests on operate/admin routes are audited; `audit(c, action, details)` adds the details of an action.
 */

export { SCOPES, type Scope } from './scopes.js';
/** A route's access: a scope, or `public` (no token needed: liveness, readiness, health). */
export type Access = Scope | 'public';

/** Who sends a request: the unix socket (trusted as admin) or a named token over TCP. */
export interface Principal {
  name: string;
  scope: Scope;
  via: 'socket' | 'token';
}

export interface ApiEnv {
  Bindings: {
    /** Set by the TCP listener; requests without it came over the unix socket (or `app.request` in tests). */
    transport?: 'tcp';
  };
  Variables: {
    /** null over TCP without a valid token (public routes only). */
    principal: Principal | null;
    logger: Logger | undefined;
  };
}

/** The app type every route file registers on. */
export type ApiApp = OpenAPIHono<ApiEnv>;
export type ApiContext = Context<ApiEnv>;

/**
 * What `json()` returns: a Response that also satisfies the typed responses of `app.openapi` (the
 * body's shape is declared by the route's zod schema and checked by the OpenAPI tests, not by tsc).
 */
export type JsonResponse = Response & TypedResponse<never, never, never>;
export type Json = (body: unknown, status?: ContentfulStatusCode) => JsonResponse;

/** Whether `scope` may call a route of `access`. */
export function allows(scope: Scope | undefined, access: Access): boolean {
  if (access === 'public') return true;
  return scope !== undefined && SCOPES.indexOf(scope) >= SCOPES.indexOf(access);
}

export function unauthorized(message: string): BackerError {
  return new BackerError('API_UNAUTHORIZED', message, { component: 'api' });
}

/** Enforces a route's access; every route gets it as its first middleware (before validation). */
function requireAccess(access: Access): MiddlewareHandler<ApiEnv> {
  return async (c, next) => {
    if (access !== 'public') {
      const principal = c.get('principal');
      // Refusals are audited on every route: they are what someone probing the API leaves.
      if (principal === null) {
        audit(c, 'refused', { status: 401, needs: access });
        throw unauthorized('this route needs a valid bearer token (Authorization: Bearer <token>)');
      }
      if (!allows(principal.scope, access)) {
        audit(c, 'refused', { status: 403, needs: access });
        throw new BackerError('API_FORBIDDEN', `token ${principal.name} has scope ${principal.scope}; ${c.req.method} ${c.req.path} needs ${access}`, {
          component: 'api',
          details: { token: principal.name, scope: principal.scope, needs: access },
        });
      }
    }
    await next();
    if (access === 'operate' || access === 'admin') audit(c, 'request', {});
  };
}

type Scoped<R extends RouteConfig> = R & { getRoutingPath(): string; 'x-backer-scope': Access };

/** createRoute plus the access: recorded in the document and enforced before the request is validated. */
export function defineRoute<R extends RouteConfig>(access: Access, config: R): Scoped<R> {
  const own = config.middleware === undefined ? [] : Array.isArray(config.middleware) ? config.middleware : [config.middleware];
  return createRoute({
    ...config,
    middleware: [requireAccess(access), ...own],
    security: access === 'public' ? [] : [{ bearerAuth: [] }],
    'x-backer-scope': access,
  });
}

/** Logs an action (info, component api, `audit: true`) with the principal's name; never its token. */
export function audit(c: ApiContext, action: string, details: Record<string, unknown>): void {
  const principal = c.get('principal');
  const status = typeof details.status === 'number' ? details.status : c.res.status;
  const who = principal?.name ?? 'anonymous';
  c.get('logger')?.info(
    { component: 'api', audit: true, action, token: principal?.name ?? null, via: principal?.via ?? null, method: c.req.method, path: c.req.path, ...details, status },
    `api ${action}: ${c.req.method} ${c.req.path} by ${who} -> ${status}`,
  );
}

/** The first issue of a failed request validation, worded as the API always has. */
export function validationError(target: string, error: ZodError): BackerError {
  const issue = error.issues[0];
  if (target === 'query' && issue?.code === 'unrecognized_keys') {
    const names = issue.keys.join(', ');
    return new BackerError('API_BAD_REQUEST', `unknown query parameter ${names}`, { component: 'api', details: { parameter: names } });
  }
  if (target === 'query') {
    const name = String(issue?.path[0] ?? 'query');
    return new BackerError('API_BAD_REQUEST', `query parameter ${name}: ${issue?.message ?? 'invalid'}`, { component: 'api', details: { parameter: name } });
  }
  const where = issue ? `${issue.path.join('.') || (target === 'json' ? 'body' : target)}: ${issue.message}` : 'schema mismatch';
  return new BackerError('API_BAD_REQUEST', `invalid request: ${where}`, { component: 'api' });
}

/** A new app: validation failures are thrown as API_BAD_REQUEST (the app's onError answers them). */
export function newApiApp(): ApiApp {
  return new OpenAPIHono<ApiEnv>({
    defaultHook: (result) => {
      if (!result.success) throw validationError(result.target, result.error);
    },
  });
}

