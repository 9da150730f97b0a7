/**
 * Start-up sweep of an S3 target: unfinished multipart uploads under the target's prefix that
 * were initiated before the daemon started are aborted (their parts are billed storage that no
 * object will ever use). An upload cannot name the process that owns it, so its start is all
 * there is to go by: a `backer backup --once` that began before the daemon and is still uploading
 * loses its upload and fails loudly (TARGET_WRITE_FAILED); it never stores half a backup. Uploads
 * begun after the daemon started (its own jobs, later `--once` runs) are left alone. The times
 * compared are the server's `Initiated` and this host's clock: keep them in sync (NTP).
 */
import {
  AbortMultipartUploadCommand,
  ListMultipartUploadsCommand,
  ListPartsCommand,
  S3ServiceException,
  type MultipartUpload,
  type S3Client,
} from '@aws-sdk/client-s3';
import { describeError } from '../errors.js';
import type { Logger } from '../logging/logger.js';
import type { SweepReport } from './types.js';

export interface S3SweepScope {
  client: S3Client;
  bucket: string;
  /** The target's prefix; only uploads of keys under it are touched. */
  prefix: string;
  startedAt: Date;
  logger: Logger;
}

interface OpenUpload {
  key: string;
  uploadId: string;
}

/** Every unfinished upload under the prefix initiated before `startedAt` (all pages). */
async function abandonedUploads(scope: S3SweepScope): Promise<OpenUpload[]> {
  const out: OpenUpload[] = [];
  let keyMarker: string | undefined;
  let uploadIdMarker: string | undefined;
  for (;;) {
    const page = await scope.client.send(
      new ListMultipartUploadsCommand({ Bucket: scope.bucket, Prefix: scope.prefix, KeyMarker: keyMarker, UploadIdMarker: uploadIdMarker }),
    );
    for (const upload of page.Uploads ?? []) {
      if (isAbandoned(upload, scope)) out.push({ key: upload.Key ?? '', uploadId: upload.UploadId ?? '' });
    }
    if (page.IsTruncated !== true) return out;
    if (page.NextKeyMarker === keyMarker && page.NextUploadIdMarker === uploadIdMarker) {
      throw new Error('ListMultipartUploads returned the same page twice');
    }
    keyMarker = page.NextKeyMarker;
    uploadIdMarker = page.NextUploadIdMarker;
  }
}

function isAbandoned(upload: MultipartUpload, scope: S3SweepScope): boolean {
  if (upload.Key === undefined || upload.UploadId === undefined || !upload.Key.startsWith(scope.prefix)) return false;
  // An upload without a start time cannot be shown to predate the daemon: left alone.
  return upload.Initiated !== undefined && upload.Initiated.getTime() < scope.startedAt.getTime();
}

/** The bytes of every part uploaded so far (all pages). */
async function uploadedBytes(scope: S3SweepScope, upload: OpenUpload): Promise<number> {
  let bytes = 0;
  let marker: string | undefined;
  for (;;) {
    const page = await scope.client.send(
      new ListPartsCommand({ Bucket: scope.bucket, Key: upload.key, UploadId: upload.uploadId, PartNumberMarker: marker }),
    );
    for (const part of page.Parts ?? []) bytes += part.Size ?? 0;
    if (page.IsTruncated !== true) return bytes;
    if (page.NextPartNumberMarker === undefined || page.NextPartNumberMarker === marker) throw new Error('ListParts returned the same page twice');
    marker = page.NextPartNumberMarker;
  }
}

/** The upload ended meanwhile (completed or aborted by its owner): nothing to do. A missing bucket or key is a failure. */
const isNoSuchUpload = (err: unknown): boolean => err instanceof S3ServiceException && err.name === 'NoSuchUpload';

/** Aborts the abandoned uploads; keys in the report are relative to the prefix. */
export async function sweepMultipartUploads(scope: S3SweepScope): Promise<SweepReport> {
  const report: SweepReport = { removed: [], failed: [] };
  for (const upload of await abandonedUploads(scope)) {
    const key = upload.key.slice(scope.prefix.length);
    try {
      const bytes = await uploadedBytes(scope, upload);
      await scope.client.send(new AbortMultipartUploadCommand({ Bucket: scope.bucket, Key: upload.key, UploadId: upload.uploadId }));
      report.removed.push({ key, bytes, kind: 'multipart' });
      scope.logger.debug({ object: key, bytes, upload_id: upload.uploadId }, 'aborted an abandoned multipart upload');
    } catch (err) {
      // Completed or aborted by its owner since the listing: nothing is left.
      if (isNoSuchUpload(err)) continue;
      report.failed.push({ key, error: describeError(err) });
    }
  }
  return report;
}
