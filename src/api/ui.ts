import { readFile, stat } from 'node:fs/promises';
import { extname, join, normalize, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Logger } from '../logging/logger.js';

/**
 * The web UI's static files (dist/web, built by `npm run build`), served on the API's TCP listener
 * at `/` outside the API's route registry: they are not API routes (not in the OpenAPI document) and
 * need no token (the data they show does). Paths of the API are never answered here.
 */

/** Where `npm run build` puts the app: `<package>/dist/web`, from src/api (tsx) and dist/api alike. */
export const DEFAULT_UI_DIR = fileURLToPath(new URL('../../dist/web', import.meta.url));

/** Paths that always belong to the API (answered by the API app, never by the UI). */
const API_PATH = /^\/(v1(\/|$)|healthz$|readyz$|metrics$)/;

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json',
  '.woff2': 'font/woff2',
  '.txt': 'text/plain; charset=utf-8',
};

/**
 * No inline script or style, nothing from another origin; `connect-src 'self'` lets the app call
 * the API it came from. `frame-ancestors 'none'`: the UI cannot be framed (clickjacking).
 */
export const UI_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "font-src 'self'",
  "connect-src 'self'",
  "manifest-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

const SECURITY_HEADERS = {
  'content-security-policy': UI_CSP,
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
};

export interface UiHandler {
  /** A response for a UI request (GET/HEAD outside the API's paths), or undefined: the API answers. */
  handle(request: Request): Promise<Response> | undefined;
  /** Whether the built app is there (looked up again on every request until it is found). */
  check(): Promise<boolean>;
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}

function fileResponse(body: Buffer | null, path: string, immutable: boolean): Response {
  const headers = new Headers(SECURITY_HEADERS);
  headers.set('content-type', TYPES[extname(path)] ?? 'application/octet-stream');
  // Vite names every asset by its content hash: it never changes under its name.
  headers.set('cache-control', immutable ? 'public, max-age=31536000, immutable' : 'no-cache');
  return new Response(body, { status: 200, headers });
}

const NOT_BUILT = 'The Backer web UI is not built: run `npm run build` in the checkout (it writes dist/web), or set ui.enabled: false.\n';

/** Serves `dir`: files by path, /assets/* cached for good, every other path the app's index.html (SPA routes). */
export function createUi(options: { dir?: string; logger?: Logger } = {}): UiHandler {
  const dir = options.dir ?? DEFAULT_UI_DIR;
  let built = false;
  let warned = false;

  /** Until the app is found, every request looks again: a build finished after the start is served without a restart. */
  async function check(): Promise<boolean> {
    built = await isFile(join(dir, 'index.html'));
    if (!built && !warned) {
      warned = true;
      options.logger?.warn({ component: 'ui', dir }, `web UI not built: ${join(dir, 'index.html')} is missing; / answers 503 (run npm run build, or set ui.enabled: false)`);
    }
    return built;
  }

  async function serve(request: Request, pathname: string): Promise<Response> {
    if (!built) await check();
    if (!built) return new Response(NOT_BUILT, { status: 503, headers: { ...SECURITY_HEADERS, 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' } });
    const head = request.method === 'HEAD';
    const wanted = normalize(join(dir, pathname));
    if ((wanted === dir || wanted.startsWith(dir + sep)) && pathname !== '/' && (await isFile(wanted))) {
      return fileResponse(head ? null : await readFile(wanted), wanted, pathname.startsWith('/assets/'));
    }
    // A missing hashed asset is a 404 (an old page after an upgrade), not the app's HTML.
    if (pathname.startsWith('/assets/')) return new Response('not found\n', { status: 404, headers: { ...SECURITY_HEADERS, 'content-type': 'text/plain; charset=utf-8' } });
    const index = join(dir, 'index.html');
    return fileResponse(head ? null : await readFile(index), index, false);
  }

  return {
    check,
    handle(request) {
      if (request.method !== 'GET' && request.method !== 'HEAD') return undefined;
      let pathname: string;
      try {
        pathname = decodeURIComponent(new URL(request.url).pathname);
      } catch {
        return undefined;
      }
      if (API_PATH.test(pathname) || pathname.includes('\0')) return undefined;
      return serve(request, pathname);
    },
  };
}
