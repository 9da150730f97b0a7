import type { Readable } from 'node:stream';
import type { Logger } from '../logging/logger.js';

export interface ObjectInfo {
  /** Key relative to the target's root/prefix, always with forward slashes. */
  key: string;
  size: number;
  modified: Date;
  /**
   * Changes whenever the object's content may have changed, where the backend can tell (local:
   * inode, size, mtime and ctime in ns; S3: the ETag). The manifest cache trusts nothing without it.
   */
  etag?: string;
}

export interface SweepOptions {
  /** When the daemon started: what began before it and is not owned by a live process is abandoned. */
  startedAt: Date;
  logger: Logger;
}

/** What a start-up sweep removed (temp files, unfinished multipart uploads) and what it could not. */
export interface SweepReport {
  removed: { key: string; bytes: number; kind: 'partial' | 'multipart' }[];
  failed: { key: string; error: string }[];
}

export interface WriteOptions {
  signal: AbortSignal;
  contentType?: string;
  /**
   * Expected bytes (e.g. the mandate's previous artifact), where the caller knows them. The S3
   * target sizes its parts from it; without it, it uses its last write to the same directory.
   */
  sizeHint?: number;
}

/**
 * A storage target. Keys are relative (`<mandate>/<name><ext>`); the target adds its own
 * root directory or prefix. A target never exposes a half-written object under its final key.
 */
export interface Target {
  readonly name: string;
  readonly type: string;
  /**
   * Streams `body` to `key`. Resolves only once every byte is durably stored under `key`.
   * On error or abort nothing is left under `key` (temp files removed, multipart uploads aborted)
   * and the promise rejects with a BackerError (TARGET_WRITE_FAILED or JOB_CANCELLED).
   */
  write(key: string, body: Readable, options: WriteOptions): Promise<void>;
  /** Stores a small object (a manifest) and refuses to overwrite an existing one when the backend can tell. */
  writeOnce(key: string, data: Buffer, options?: { contentType?: string }): Promise<void>;
  /** Rejects with BackerError BACKUP_NOT_FOUND when the key does not exist. */
  read(key: string): Promise<Readable>;
  /** Every object whose key starts with `prefix` (recursively). */
  list(prefix: string): Promise<ObjectInfo[]>;
  stat(key: string): Promise<ObjectInfo | undefined>;
  /** Removing a missing key is not an error. */
  remove(key: string): Promise<void>;
  /**
   * Removes what interrupted writes left (local temp files, S3 multipart uploads) that no live
   * job owns; never touches a complete object. Rejects only when the target cannot be listed.
   */
  sweep(options: SweepOptions): Promise<SweepReport>;
  close(): Promise<void>;
}
