import type { Duplex } from 'node:stream';

/**
 * A middleware transforms the backup stream on its way to the targets and provides the reverse
 * transform for restore and verification. Both directions are streaming Duplexes that error
 * (never end cleanly) when the underlying tool fails.
 */
export interface Middleware {
  readonly name: string;
  readonly type: string;
  /** Appended to the artifact name, e.g. `.gz`, `.cpt`. */
  readonly extension: string;
  /** Mime type of the encoded output. */
  readonly mime: string;
  encode(signal: AbortSignal): Duplex;
  decode(signal: AbortSignal): Duplex;
  /**
   * Why this middleware cannot decode (an encryption configured with public keys only), or null.
   * Restores and verifications check it before they read a byte. Default: it can.
   */
  cannotDecode?: () => string | null;
  /**
   * Frees what the middleware keeps between runs (gpg: its private GNUPGHOME and gpg-agent).
   * Idempotent. Optional: stateless middleware has nothing to free.
   */
  close?: () => Promise<void>;
}
