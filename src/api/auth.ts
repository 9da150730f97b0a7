import { randomBytes, timingSafeEqual } from 'node:crypto';
import { sha256Hex, type ApiToken } from './config.js';
import type { Principal } from './route.js';

export type { ApiToken } from './config.js';

/** The unix socket's principal: whoever may open the socket (mode 0660) is trusted as admin. */
export const SOCKET_PRINCIPAL: Principal = Object.freeze({ name: 'socket', scope: 'admin', via: 'socket' });

/** `Bearer <token>` → the token; anything else → undefined. */
function bearer(header: string | undefined): string | undefined {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '');
  return match?.[1];
}

/**
 * Who sends a request. Over the unix socket (no `transport`): the socket principal. Over TCP: the
 * token whose SHA-256 matches the bearer token (compared in constant time, every entry checked), or
 * null (missing or unknown token: public routes only).
 */
export function authenticate(transport: 'tcp' | undefined, header: string | undefined, tokens: readonly ApiToken[]): Principal | null {
  if (transport !== 'tcp') return SOCKET_PRINCIPAL;
  const raw = bearer(header);
  if (raw === undefined) return null;
  const digest = Buffer.from(sha256Hex(raw), 'hex');
  let found: ApiToken | undefined;
  for (const token of tokens) {
    if (timingSafeEqual(digest, Buffer.from(token.sha256, 'hex')) && found === undefined) found = token;
  }
  return found === undefined ? null : { name: found.name, scope: found.scope, via: 'token' };
}

/** A new random token (`bk_` + 32 bytes base64url) and its SHA-256 (hex). */
export function newToken(): { token: string; sha256: string } {
  const token = `bk_${randomBytes(32).toString('base64url')}`;
  return { token, sha256: sha256Hex(token) };
}
