/**
 * S3 (and S3-compatible) target: object key = `prefix + key`. Artifacts stream through a
 * multipart upload (s3-multipart.ts: memory ≈ (queue_size + 1) × part size, a pool of part
 * buffers reused for the whole upload); an object only exists once the upload completes, and a
 * failed or cancelled upload is aborted so no parts are left behind.
 */
import {
  AbortMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
  paginateListObjectsV2,
  type PutObjectCommandInput,
  type ServerSideEncryption,
  type StorageClass,
} from '@aws-sdk/client-s3';
import { Readable } from 'node:stream';
import { BackerError, type ErrorCode } from '../errors.js';
import { defineTarget } from '../plugins/define.js';
import { s3TargetSchema, type S3TargetConfig } from './s3.schema.js';
import { MultipartFailure, MultipartUpload, partLimitError, partSizeFor, type UploadOutcome } from './s3-multipart.js';
import { sweepMultipartUploads } from './s3-sweep.js';
import type { ObjectInfo, SweepOptions, SweepReport, Target, WriteOptions } from './types.js';

const MIB = 1024 * 1024;
const DEFAULT_CONTENT_TYPE = 'application/octet-stream';

function isPreconditionFailure(err: unknown): boolean {
  const { name, status } = s3Error(err);
  return status === 412 || name === 'PreconditionFailed' || name === 'ConditionalRequestConflict';
}

function s3Error(err: unknown): { name?: string; status?: number } {
  if (err instanceof S3ServiceException) return { name: err.name, status: err.$metadata.httpStatusCode };
  return {};
}

export function createS3Target(config: S3TargetConfig): Target {
  const component = `target ${config.name}`;
  const client = new S3Client({
    region: config.region,
    endpoint: config.endpoint,
    forcePathStyle: config.force_path_style,
    // Without explicit keys the SDK's default chain applies (env, profile, instance role).
    credentials:
      config.access_key_id !== undefined && config.secret_access_key !== undefined
        ? { accessKeyId: config.access_key_id, secretAccessKey: config.secret_access_key }
        : undefined,
  });
  const bucket = config.bucket;
  const s3Key = (key: string): string => config.prefix + key;
  const encryption = config.server_side_encryption as ServerSideEncryption | undefined;

  // Messages and details name the target, bucket-relative key and codes only: never credentials.
  const fail = (code: ErrorCode, message: string, key: string, cause?: unknown, extra?: Record<string, unknown>): BackerError =>
    new BackerError(code, message, {
      component,
      details: { target: config.name, key, ...extra },
      cause,
      permanent: code === 'JOB_CANCELLED' || code === 'BACKUP_NOT_FOUND',
    });

  /** Uploads whose abort failed (S3 away): aborted again before the next write and at close. */
  const abandoned = new Map<string, string>();
  async function abortAbandoned(): Promise<void> {
    for (const [uploadId, key] of abandoned) {
      try {
        await client.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: s3Key(key), UploadId: uploadId }));
      } catch (err) {
        if (s3Error(err).name !== 'NoSuchUpload') continue;
      }
      abandoned.delete(uploadId);
    }
  }

  /** Best-effort removal of whatever a failed write may have produced; returns what it could not clean. */
  async function undoWrite(key: string, uploadId: string | undefined, completed: boolean): Promise<Record<string, unknown>> {
    if (completed) {
      const removed = await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: s3Key(key) })).then(
        () => true,
        () => false,
      );
      return removed ? {} : { cleanup_failed: true };
    }
    if (uploadId === undefined) return {};
    // The uploader has settled every request of it (lib-storage, the benchmark's baseline, already
    // tried this itself: NoSuchUpload then means that attempt worked).
    try {
      await client.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: s3Key(key), UploadId: uploadId }));
      return {};
    } catch (err) {
      if (s3Error(err).name === 'NoSuchUpload') return {};
      // Tried again before the next write (a retry of this backup) and at close; else left for the
      // next start's sweep or the bucket's AbortIncompleteMultipartUpload rule; named so it can be found.
      abandoned.set(uploadId, key);
      return { abandoned_upload_id: uploadId };
    }
  }

  const refused = (key: string, cause?: unknown): BackerError =>
    new BackerError('TARGET_WRITE_FAILED', `"${key}" already exists and is not overwritten`, {
      component,
      details: { target: config.name, key, exists: true },
      cause,
      permanent: true,
    });

  /**
   * Writes never replace an object. IfNoneMatch makes the put (and the multipart complete)
   * conditional where the server supports it (AWS S3, MinIO, ...); s3rver 3.x and some other
   * servers silently ignore the header, so a HEAD comes first: that catches every overwrite there
   * except a race between two writers of the same key. `body` is destroyed when refusing.
   */
  async function refuseIfPresent(key: string, body?: Readable): Promise<void> {
    let present: ObjectInfo | undefined;
    try {
      present = await statKey(key);
    } catch (err) {
      body?.destroy();
      throw fail('TARGET_WRITE_FAILED', `could not check whether "${key}" exists in bucket ${bucket}`, key, err);
    }
    if (present === undefined) return;
    body?.destroy();
    throw refused(key);
  }

  async function statKey(key: string): Promise<ObjectInfo | undefined> {
    try {
      const head = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: s3Key(key) }));
      return { key, size: head.ContentLength ?? 0, modified: head.LastModified ?? new Date(0), ...(head.ETag ? { etag: head.ETag } : {}) };
    } catch (err) {
      const { name, status } = s3Error(err);
      if (name === 'NotFound' || name === 'NoSuchKey' || status === 404) return undefined;
      throw fail('TARGET_READ_FAILED', `could not stat "${key}"`, key, err);
    }
  }

  /** Artifact size of the last write per directory (mandate): the next write's size hint. */
  const lastSizes = new Map<string, number>();

  /** Ours (s3-multipart.ts); lib-storage only as the memory benchmark's baseline. */
  async function upload(key: string, body: Readable, options: WriteOptions): Promise<UploadOutcome> {
    const dir = key.slice(0, key.lastIndexOf('/') + 1);
    const limit = internalMaxParts();
    const partSize = partSizeFor(config.part_size_mb * MIB, options.sizeHint ?? lastSizes.get(dir), limit);
    const input = {
      client,
      bucket,
      key: s3Key(key),
      contentType: options.contentType ?? DEFAULT_CONTENT_TYPE,
      storageClass: config.storage_class as StorageClass | undefined,
      encryption,
      partSize,
      queueSize: config.queue_size,
      signal: options.signal,
    };
    if (process.env.BACKER_INTERNAL_S3_UPLOADER === 'lib-storage') {
      return (await import('./s3-lib-storage.js')).uploadWithLibStorage(input, body);
    }
    const multipart = new MultipartUpload({ ...input, maxParts: limit, tooManyParts: () => partLimitError(config.name, key, partSize, limit) });
    try {
      await multipart.run(body);
      lastSizes.set(dir, multipart.bytes);
      return { uploadId: multipart.uploadId, completed: multipart.completed };
    } catch (err) {
      const failure = err instanceof MultipartFailure ? err : new MultipartFailure('upload', err);
      return { uploadId: multipart.uploadId, completed: multipart.completed, failure };
    }
  }

  return {
    name: config.name,
    type: 's3',

    async write(key: string, body: Readable, options: WriteOptions): Promise<void> {
      await refuseIfPresent(key, body);
      await abortAbandoned();
      const outcome = await upload(key, body, options);
      if (outcome.failure === undefined && !options.signal.aborted) return;

      // A cancel that lands after the upload completed still means "no backup": the object is removed.
      const extra = await undoWrite(key, outcome.uploadId, outcome.completed);
      if (options.signal.aborted) {
        throw fail('JOB_CANCELLED', `writing "${key}" was cancelled`, key, options.signal.reason, extra);
      }
      const { origin, cause } = outcome.failure ?? new MultipartFailure('upload', undefined);
      // The part limit (s3-multipart.ts partLimitError): its own message, plus what cleanup left.
      if (origin === 'upload' && cause instanceof BackerError) {
        throw new BackerError(cause.code, cause.message, { component, details: { ...cause.details, ...extra }, permanent: cause.permanent });
      }
      if (origin === 'upload' && isPreconditionFailure(cause)) throw refused(key, cause);
      throw fail('TARGET_WRITE_FAILED', `could not upload "${key}" to bucket ${bucket}`, key, cause, extra);
    },

    async writeOnce(key: string, data: Buffer, options?: { contentType?: string }): Promise<void> {
      // HEAD, then a conditional put (see refuseIfPresent).
      // StorageClass is not applied: a manifest must stay cheap and instantly readable.
      await refuseIfPresent(key);
      const input: PutObjectCommandInput = {
        Bucket: bucket,
        Key: s3Key(key),
        Body: data,
        ContentType: options?.contentType ?? 'application/json',
        ServerSideEncryption: encryption,
        IfNoneMatch: '*',
      };
      try {
        try {
          await client.send(new PutObjectCommand(input));
        } catch (err) {
          // Servers that reject conditional writes outright: the HEAD above is all they allow.
          if (s3Error(err).status !== 501) throw err;
          await client.send(new PutObjectCommand({ ...input, IfNoneMatch: undefined }));
        }
      } catch (err) {
        if (isPreconditionFailure(err)) throw refused(key, err);
        throw fail('TARGET_WRITE_FAILED', `could not write "${key}" to bucket ${bucket}`, key, err);
      }
    },

    async read(key: string): Promise<Readable> {
      try {
        const out = await client.send(new GetObjectCommand({ Bucket: bucket, Key: s3Key(key) }));
        if (out.Body instanceof Readable) return out.Body;
        throw new Error('response body is not a Node stream');
      } catch (err) {
        if (s3Error(err).name === 'NoSuchKey') throw fail('BACKUP_NOT_FOUND', `"${key}" does not exist`, key, err);
        throw fail('TARGET_READ_FAILED', `could not read "${key}" from bucket ${bucket}`, key, err);
      }
    },

    async list(prefix: string): Promise<ObjectInfo[]> {
      const out: ObjectInfo[] = [];
      try {
        for await (const page of paginateListObjectsV2({ client }, { Bucket: bucket, Prefix: s3Key(prefix) })) {
          for (const object of page.Contents ?? []) {
            const full = object.Key;
            // Keys ending in "/" are folder placeholders made by consoles, not objects of ours.
            if (full === undefined || !full.startsWith(config.prefix) || full.endsWith('/')) continue;
            out.push({
              key: full.slice(config.prefix.length),
              size: object.Size ?? 0,
              modified: object.LastModified ?? new Date(0),
              ...(object.ETag ? { etag: object.ETag } : {}),
            });
          }
        }
      } catch (err) {
        throw fail('TARGET_READ_FAILED', `could not list "${prefix}" in bucket ${bucket}`, prefix, err);
      }
      return out;
    },

    stat: statKey,

    async remove(key: string): Promise<void> {
      try {
        // S3 answers 204 for a missing key as well, which is what the contract wants.
        await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: s3Key(key) }));
      } catch (err) {
        if (s3Error(err).name === 'NoSuchKey') return;
        throw fail('TARGET_WRITE_FAILED', `could not remove "${key}" from bucket ${bucket}`, key, err);
      }
    },

    async sweep(options: SweepOptions): Promise<SweepReport> {
      const logger = options.logger.child({ target: config.name });
      try {
        return await sweepMultipartUploads({ client, bucket, prefix: config.prefix, startedAt: options.startedAt, logger });
      } catch (err) {
        throw fail('TARGET_READ_FAILED', `could not list the unfinished multipart uploads in bucket ${bucket}`, config.prefix, err);
      }
    },

    async close(): Promise<void> {
      await abortAbandoned();
      client.destroy();
    },
  };
}

/** The `s3` target plugin: its options schema (s3.schema.ts), the programs it needs, its driver. */
export const s3Plugin = defineTarget({
  type: 's3',
  options: s3TargetSchema,
  tools: [],
  create: createS3Target,
});

/**
 * S3's limit of parts per upload, lowered by `BACKER_INTERNAL_S3_MAX_PARTS` (internal, not a
 * setting: a test daemon meets the limit with an artifact of a few parts). Undefined: S3's 10,000.
 */
function internalMaxParts(): number | undefined {
  const raw = process.env.BACKER_INTERNAL_S3_MAX_PARTS;
  const parts = raw === undefined ? Number.NaN : Number(raw);
  return Number.isInteger(parts) && parts >= 2 ? parts : undefined;
}
