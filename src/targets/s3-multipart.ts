/**
 * Backer's own S3 multipart uploader (instead of @aws-sdk/lib-storage's `Upload`): a fixed pool of
 * (queue_size + 1) part buffers, reused for the whole upload: the source's chunks are copied into
 * the part being filled (no joins, no allocation per part), and at most queue_size parts are in
 * flight. An artifact smaller than one part is one PutObject.
 *
 * Checksums as lib-storage sends them with the client's default `requestChecksumCalculation`
 * (WHEN_SUPPORTED): CreateMultipartUpload names CRC32, the SDK adds each part's CRC32 (and the
 * single PutObject's), and CompleteMultipartUpload lists every part's ETag and checksum.
 *
 * Part sizes: S3 allows 10,000 parts. The upload starts with `part_size_mb`, raised when a size
 * hint (the previous artifact of the same mandate) says the artifact would use more than half of
 * them (partSizeFor). Past part 5,000 the part size doubles each time half of the parts left is
 * used, up to 16 × (partSizeAt), so an artifact larger than expected still fits (up to 146 GiB
 * from 5 MiB parts); memory only grows for such artifacts (> 24 GiB with 5 MiB parts). Past the
 * last part the upload fails before sending more, naming `targets.NAME.part_size_mb`.
 *
 * The uploader neither aborts the multipart upload nor maps errors to BackerErrors: s3.ts does
 * (undoWrite), once run() has settled every request it made.
 */
import {
  ChecksumAlgorithm,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  PutObjectCommand,
  UploadPartCommand,
  type CompletedPart,
  type S3Client,
  type ServerSideEncryption,
  type StorageClass,
} from '@aws-sdk/client-s3';
import type { Readable } from 'node:stream';
import { BackerError } from '../errors.js';

const MIB = 1024 * 1024;
export const MAX_PARTS = 10_000;
/** S3's largest part. */
export const MAX_PART_BYTES = 5 * 1024 * MIB;
/** Parts grow to 16 × the starting size at most (memory grows with them). */
const MAX_GROWTH = 16;
/**
 * Starting part size: `configured`, or larger when an artifact twice the hint's size would not fit
 * in the first half of the parts (5,000). `maxParts` is S3's 10,000 except in tests.
 */
export function partSizeFor(configured: number, sizeHint?: number, maxParts = MAX_PARTS): number {
  if (sizeHint === undefined || sizeHint <= 0) return configured;
  const needed = Math.ceil((2 * sizeHint) / Math.floor(maxParts / 2) / MIB) * MIB;
  return Math.min(MAX_PART_BYTES, Math.max(configured, needed));
}

/**
 * Size of part `partNumber` (1-based) of an upload that started with `base`: `base` for the first
 * half of the parts (5,000), 2 × base up to 7,500, 4 × base up to 8,750, 8 × base up to 9,375,
 * then 16 × base (at most: the buffers grow with it; and at most S3's 5 GiB).
 * `maxParts` is S3's 10,000 except in tests.
 */
export function partSizeAt(base: number, partNumber: number, maxParts = MAX_PARTS): number {
  let size = base;
  let end = Math.floor(maxParts / 2);
  for (let step = Math.floor(end / 2); partNumber > end && step >= 1 && size < MAX_GROWTH * base; step = Math.floor(step / 2)) {
    size *= 2;
    end += step;
  }
  return Math.min(size, MAX_PART_BYTES);
}

/** The most bytes an upload starting with `base` can store in `maxParts` parts. */
export function uploadCapacity(base: number, maxParts = MAX_PARTS): number {
  let total = 0;
  for (let part = 1; part <= maxParts; part++) total += partSizeAt(base, part, maxParts);
  return total;
}

/** The failure of an artifact larger than the parts can hold: names the setting to raise. */
export function partLimitError(target: string, key: string, partSize: number, maxParts = MAX_PARTS): BackerError {
  const setting = `targets.${target}.part_size_mb`;
  const capacity = Math.floor(uploadCapacity(partSize, maxParts) / MIB);
  return new BackerError('TARGET_WRITE_FAILED', `"${key}" is larger than ${maxParts} parts can hold (${capacity} MiB, starting from ${partSize / MIB} MiB parts): raise ${setting}`, {
    component: `target ${target}`,
    details: { target, key, setting },
    permanent: true,
  });
}

/** Where a failed upload failed: reading the source, or talking to S3 (or the part limit). */
export class MultipartFailure extends Error {
  constructor(
    readonly origin: 'source' | 'upload',
    override readonly cause: unknown,
  ) {
    super(`multipart upload failed (${origin})`);
  }
}

/** How a write's upload ended: what s3.ts needs to clean up and to name the failure. */
export interface UploadOutcome {
  uploadId: string | undefined;
  /** The object exists (and must be removed if the write is not to count). */
  completed: boolean;
  failure?: MultipartFailure;
}

export interface MultipartInput {
  client: S3Client;
  bucket: string;
  /** The full object key (prefix included). */
  key: string;
  contentType: string;
  storageClass?: StorageClass;
  encryption?: ServerSideEncryption;
  /** Bytes of the first part (partSizeFor). */
  partSize: number;
  queueSize: number;
  /** Cancels the upload: the source is destroyed and requests in flight are aborted. */
  signal: AbortSignal;
  /** The error for more than 10,000 parts (names the setting to raise). */
  tooManyParts: () => Error;
  /** S3's 10,000 (the default) except in tests. */
  maxParts?: number;
}

/** The (queue_size + 1) part buffers: taken to fill, given back once their part is stored. */
class BufferPool {
  private readonly free: Buffer[] = [];
  /** Buffers allocated over the whole upload (the pool's size, unless the part size grew). */
  allocations = 0;

  take(size: number): Buffer {
    const reused = this.free.pop();
    if (reused !== undefined && reused.length === size) return reused;
    this.allocations += 1;
    return Buffer.allocUnsafeSlow(size);
  }

  give(buffer: Buffer): void {
    this.free.push(buffer);
  }
}

/** Uploads one stream; read uploadId, completed and the figures after run() settles. */
export class MultipartUpload {
  uploadId: string | undefined;
  /** The object exists (the single put or the complete succeeded). */
  completed = false;
  bytes = 0;
  readonly partSizes: number[] = [];
  private readonly pool = new BufferPool();
  private readonly parts: CompletedPart[] = [];
  private readonly inFlight = new Set<Promise<void>>();
  private readonly requests = new AbortController();
  private failure: { cause: unknown } | undefined;

  private readonly maxParts: number;

  constructor(private readonly input: MultipartInput) {
    this.maxParts = input.maxParts ?? MAX_PARTS;
  }

  get bufferAllocations(): number {
    return this.pool.allocations;
  }

  /** Streams `body` to the object; rejects with a MultipartFailure once no request of it is in flight. */
  async run(body: Readable): Promise<void> {
    const cancel = (): void => {
      this.requests.abort(this.input.signal.reason);
      body.destroy(this.input.signal.reason instanceof Error ? this.input.signal.reason : new Error('cancelled'));
    };
    if (this.input.signal.aborted) cancel();
    else this.input.signal.addEventListener('abort', cancel, { once: true });
    try {
      await this.transfer(body);
    } catch (err) {
      this.requests.abort(err);
      await Promise.allSettled(this.inFlight);
      if (err instanceof MultipartFailure) throw err;
      throw this.failure ? new MultipartFailure('upload', this.failure.cause) : new MultipartFailure('source', err);
    } finally {
      this.input.signal.removeEventListener('abort', cancel);
    }
  }

  private async transfer(body: Readable): Promise<void> {
    let current = this.pool.take(partSizeAt(this.input.partSize, 1, this.maxParts));
    let filled = 0;
    for await (const data of body as AsyncIterable<Buffer | string>) {
      const chunk = typeof data === 'string' ? Buffer.from(data) : data;
      this.bytes += chunk.length;
      for (let offset = 0; offset < chunk.length; ) {
        if (filled === current.length) {
          // Full and more is coming: a part (the last part is sent after the loop).
          await this.uploadFull(current, filled, body);
          current = this.pool.take(partSizeAt(this.input.partSize, this.partSizes.length + 1, this.maxParts));
          filled = 0;
        }
        const copied = chunk.copy(current, filled, offset);
        filled += copied;
        offset += copied;
      }
    }
    if (this.uploadId === undefined && this.partSizes.length === 0) {
      await this.upload(() => this.putSingle(current.subarray(0, filled)));
      return;
    }
    await this.uploadFull(current, filled, body);
    await Promise.all(this.inFlight);
    this.throwIfFailed();
    await this.upload(() => this.complete());
  }

  /** Sends one part once a slot is free; a failed part destroys the source so reading stops. */
  private async uploadFull(buffer: Buffer, length: number, body: Readable): Promise<void> {
    if (this.partSizes.length >= this.maxParts) throw new MultipartFailure('upload', this.input.tooManyParts());
    if (this.uploadId === undefined) await this.upload(() => this.create());
    while (this.inFlight.size >= this.input.queueSize) await Promise.race(this.inFlight);
    this.throwIfFailed();
    const partNumber = this.partSizes.length + 1;
    this.partSizes.push(length);
    const task: Promise<void> = this.sendPart(partNumber, buffer.subarray(0, length)).then(
      () => undefined,
      (err: unknown) => {
        this.failure ??= { cause: err };
        this.requests.abort(err);
        body.destroy(err instanceof Error ? err : new Error(String(err)));
      },
    );
    const tracked = task.finally(() => {
      this.inFlight.delete(tracked);
      this.pool.give(buffer);
    });
    this.inFlight.add(tracked);
  }

  private throwIfFailed(): void {
    if (this.failure) throw new MultipartFailure('upload', this.failure.cause);
  }

  /** A request of the upload itself: its failure is the upload's. */
  private async upload(request: () => Promise<void>): Promise<void> {
    try {
      await request();
    } catch (err) {
      throw new MultipartFailure('upload', err);
    }
  }

  private async create(): Promise<void> {
    const { client, bucket, key, contentType, storageClass, encryption } = this.input;
    const calculation = await client.config.requestChecksumCalculation();
    const created = await client.send(
      new CreateMultipartUploadCommand({
        Bucket: bucket,
        Key: key,
        ContentType: contentType,
        StorageClass: storageClass,
        ServerSideEncryption: encryption,
        ...(calculation === 'WHEN_SUPPORTED' ? { ChecksumAlgorithm: ChecksumAlgorithm.CRC32 } : {}),
      }),
      { abortSignal: this.requests.signal },
    );
    if (created.UploadId === undefined) throw new Error('CreateMultipartUpload answered without an UploadId');
    this.uploadId = created.UploadId;
  }

  private async sendPart(partNumber: number, data: Buffer): Promise<void> {
    const { client, bucket, key } = this.input;
    const out = await client.send(
      new UploadPartCommand({ Bucket: bucket, Key: key, UploadId: this.uploadId, PartNumber: partNumber, Body: data }),
      { abortSignal: this.requests.signal },
    );
    if (!out.ETag) throw new Error(`part ${partNumber} was stored without an ETag`);
    this.parts.push({
      PartNumber: partNumber,
      ETag: out.ETag,
      ...(out.ChecksumCRC32 ? { ChecksumCRC32: out.ChecksumCRC32 } : {}),
      ...(out.ChecksumCRC32C ? { ChecksumCRC32C: out.ChecksumCRC32C } : {}),
      ...(out.ChecksumCRC64NVME ? { ChecksumCRC64NVME: out.ChecksumCRC64NVME } : {}),
      ...(out.ChecksumSHA1 ? { ChecksumSHA1: out.ChecksumSHA1 } : {}),
      ...(out.ChecksumSHA256 ? { ChecksumSHA256: out.ChecksumSHA256 } : {}),
    });
  }

  /** Conditional (If-None-Match: *): the object appears only if the key is still free. */
  private async complete(): Promise<void> {
    const { client, bucket, key } = this.input;
    if (this.parts.length !== this.partSizes.length) throw new Error(`${this.parts.length} of ${this.partSizes.length} parts stored`);
    const parts = [...this.parts].sort((a, b) => (a.PartNumber ?? 0) - (b.PartNumber ?? 0));
    await client.send(
      new CompleteMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: this.uploadId, MultipartUpload: { Parts: parts }, IfNoneMatch: '*' }),
      { abortSignal: this.requests.signal },
    );
    this.completed = true;
  }

  private async putSingle(data: Buffer): Promise<void> {
    const { client, bucket, key, contentType, storageClass, encryption } = this.input;
    await client.send(
      new PutObjectCommand({
        Bucket: bucket,
        Key: key,
        Body: data,
        ContentType: contentType,
        StorageClass: storageClass,
        ServerSideEncryption: encryption,
        IfNoneMatch: '*',
      }),
      { abortSignal: this.requests.signal },
    );
    this.completed = true;
  }
}
