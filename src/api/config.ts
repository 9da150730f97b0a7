import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { resolve } from 'node:path';
import { z } from 'zod';
import { nameSchema } from '../config/schema-kit.js';
import { whereIn, type ConfigProblem } from '../config/problems.js';
import { SCOPES, type Scope } from './scopes.js';

/** `api.listen`: `HOST:PORT` (`[::1]:8080` for IPv6; port 0: any free port). */
export const listenSchema = z
  .string()
  .regex(/^(\[[0-9a-fA-F:.]+\]|[^:[\]\s]+):\d{1,5}$/, 'expected HOST:PORT, e.g. 127.0.0.1:8420 or [::1]:8420')
  .transform((value, ctx) => {
    const at = value.lastIndexOf(':');
    const host = value.slice(0, at).replace(/^\[(.*)\]$/, '$1');
    const port = Number(value.slice(at + 1));
    // 0: a free port the kernel picks (the start-up log line names it).
    if (port > 65535) ctx.addIssue({ code: 'custom', message: `port ${port} is not between 0 and 65535` });
    return { host, port };
  });

export const tokenConfigSchema = z
  .object({
    /** Shown in audit lines and 403 messages; never the token itself. */
    name: nameSchema,
    /** The token's SHA-256, hex (`backer token create` prints it). */
    token_sha256: z
      .string()
      .regex(/^[0-9a-fA-F]{64}$/, 'expected 64 hex digits (the SHA-256 of the token)')
      .transform((s) => s.toLowerCase())
      .optional(),
    /** A file holding the raw token (read and hashed at load), relative to the config file's directory. */
    token_file: z.string().min(1).optional(),
    scope: z.enum(SCOPES as [Scope, ...Scope[]]),
  })
  .strict()
  .refine((t) => (t.token_sha256 === undefined) !== (t.token_file === undefined), { message: 'give exactly one of token_sha256 and token_file' });

export const tlsConfigSchema = z
  .object({
    /** PEM certificate (chain), relative to the config file's directory. */
    cert_file: z.string().min(1),
    /** PEM private key, relative to the config file's directory. */
    key_file: z.string().min(1),
  })
  .strict();

/** A token as the API checks it: its name, scope and SHA-256 (hex). */
export interface ApiToken {
  name: string;
  scope: Scope;
  sha256: string;
}

/** The resolved `api` section (src/config/load.ts). */
export interface ApiConfig {
  socket: string;
  /** The TCP listener; null: the unix socket only. */
  listen: { host: string; port: number } | null;
  tls: { cert_file: string; key_file: string } | null;
  tokens: ApiToken[];
}

export type ParsedApiConfig = {
  listen?: { host: string; port: number };
  tls?: { cert_file: string; key_file: string };
  tokens: z.output<typeof tokenConfigSchema>[];
};

/** Raw tokens read from token_file, kept out of the config object (never printed); the daemon registers them as secrets. */
const rawTokens = new WeakMap<ApiToken, string>();

export function tokenSecrets(tokens: readonly ApiToken[]): string[] {
  return tokens.flatMap((t) => {
    const raw = rawTokens.get(t);
    return raw === undefined ? [] : [raw];
  });
}

export function sha256Hex(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

export function isLoopback(host: string): boolean {
  if (host === 'localhost') return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  return host === '::1';
}

function readToken(path: string, where: string, problems: ConfigProblem[]): string | undefined {
  try {
    const raw = readFileSync(path, 'utf8').trim();
    if (raw.length >= 16) return raw;
    problems.push({ where, message: `${path} holds ${raw.length === 0 ? 'nothing' : 'a token shorter than 16 characters'}; write a token from \`backer token create\`` });
  } catch (err) {
    problems.push({ where, message: `cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}` });
  }
  return undefined;
}

function resolveTokens(parsed: ParsedApiConfig, baseDir: string, fileLabel: string, problems: ConfigProblem[]): ApiToken[] {
  const seen = new Set<string>();
  const tokens: ApiToken[] = [];
  parsed.tokens.forEach((t, index) => {
    if (seen.has(t.name)) problems.push({ where: whereIn(fileLabel, ['api', 'tokens', index, 'name']), message: `duplicate token name ${JSON.stringify(t.name)}` });
    seen.add(t.name);
    if (t.token_sha256 !== undefined) {
      tokens.push({ name: t.name, scope: t.scope, sha256: t.token_sha256 });
      return;
    }
    const raw = readToken(resolve(baseDir, t.token_file ?? ''), whereIn(fileLabel, ['api', 'tokens', index, 'token_file']), problems);
    if (raw === undefined) return;
    const token: ApiToken = { name: t.name, scope: t.scope, sha256: sha256Hex(raw) };
    rawTokens.set(token, raw);
    tokens.push(token);
  });
  return tokens;
}

/** listen, tls and tokens of the `api` section: paths made absolute, token files read and hashed. */
export function resolveApiTransport(parsed: ParsedApiConfig, baseDir: string, fileLabel: string, problems: ConfigProblem[]): Omit<ApiConfig, 'socket'> {
  const tokens = resolveTokens(parsed, baseDir, fileLabel, problems);
  const listen = parsed.listen ?? null;
  if (listen !== null && !isLoopback(listen.host) && parsed.tokens.length === 0) {
    problems.push({
      where: whereIn(fileLabel, ['api', 'listen']),
      message: `${listen.host} is not a loopback address: listening there needs api.tokens (add one with \`backer token create\`), or listen on 127.0.0.1 behind a reverse proxy`,
    });
  }
  if (parsed.tls !== undefined && listen === null) {
    problems.push({ where: whereIn(fileLabel, ['api', 'tls']), message: 'api.tls needs api.listen (TLS is for the TCP listener; the unix socket has none)' });
  }
  const tls = parsed.tls === undefined ? null : { cert_file: resolve(baseDir, parsed.tls.cert_file), key_file: resolve(baseDir, parsed.tls.key_file) };
  return { listen, tls, tokens };
}
