/**
 * The previous S3 upload path (@aws-sdk/lib-storage's `Upload`), kept only as the memory
 * benchmark's baseline: BACKER_INTERNAL_S3_UPLOADER=lib-storage selects it (bench/memory.ts
 * `--uploader lib-storage`). Memory ≈ (queue_size + 2) × part_size_mb: the parts in flight, the one
 * being filled and the copy joining its chunks. Loaded only when selected.
 */
import { Upload } from '@aws-sdk/lib-storage';
import { PassThrough, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { MultipartFailure, type MultipartInput, type UploadOutcome } from './s3-multipart.js';

/** What the baseline uploader takes: the multipart uploader's input, less its part-limit error. */
export type LibStorageInput = Omit<MultipartInput, 'tooManyParts' | 'maxParts'>;

/**
 * Cancelling destroys the source through the pipeline's signal; lib-storage then stops, waits for
 * parts in flight and aborts the multipart upload before done() settles. upload.abort() is
 * deliberately not used: it makes done() reject at once while a part, the abort request or a
 * single PutObject may still be in flight, so "rejected" would not yet mean "nothing stored".
 */
export async function uploadWithLibStorage(input: LibStorageInput, body: Readable): Promise<UploadOutcome> {
  const uploadFailed = new AbortController();
  const pass = new PassThrough();
  let upload: Upload;
  try {
    upload = new Upload({
      client: input.client,
      params: {
        Bucket: input.bucket,
        Key: input.key,
        Body: pass,
        ContentType: input.contentType,
        StorageClass: input.storageClass,
        ServerSideEncryption: input.encryption,
        // Handed to PutObject (one part) and CompleteMultipartUpload: both conditional.
        IfNoneMatch: '*',
      },
      partSize: input.partSize,
      queueSize: input.queueSize,
      leavePartsOnError: false,
    });
  } catch (err) {
    body.destroy();
    return { uploadId: undefined, completed: false, failure: new MultipartFailure('upload', err) };
  }
  let fed = false;
  const feeding = pipeline(body, pass, { signal: AbortSignal.any([input.signal, uploadFailed.signal]) }).finally(() => {
    fed = true;
  });
  // A failed upload stops reading; without this the source would block on backpressure forever.
  const uploading = upload.done().catch((err: unknown) => {
    if (!fed) uploadFailed.abort(err);
    throw err;
  });
  const [feed, up] = await Promise.allSettled([feeding, uploading]);
  const completed = up.status === 'fulfilled';
  if (feed.status === 'fulfilled' && completed) return { uploadId: upload.uploadId, completed };
  // The source failed when the feed did on its own. A feed that only ended aborted while the upload
  // failed (the upload's failure tore the feed down before its catch above ran) is the upload's failure.
  const feedAborted = feed.status === 'rejected' && feed.reason instanceof Error && feed.reason.name === 'AbortError';
  const sourceFailed = feed.status === 'rejected' && !uploadFailed.signal.aborted && !(feedAborted && up.status === 'rejected');
  const failure = sourceFailed
    ? new MultipartFailure('source', feed.reason)
    : new MultipartFailure('upload', up.status === 'rejected' ? up.reason : undefined);
  return { uploadId: upload.uploadId, completed, failure };
}
