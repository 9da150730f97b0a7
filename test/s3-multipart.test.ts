/**
 * Backer's S3 multipart uploader (src/targets/s3-multipart.ts) against s3rver, through a proxy
 * that records each part's size and how many parts were in flight at once.
 */
import { AbortMultipartUploadCommand, CreateBucketCommand, GetObjectCommand, ListMultipartUploadsCommand, S3Client } from '@aws-sdk/client-s3';
import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { BackerError } from '../src/errors.js';
import { createS3Target } from '../src/targets/s3.js';
import { MultipartFailure, MultipartUpload, partLimitError } from '../src/targets/s3-multipart.js';
import { startS3Proxy } from './helpers/s3-proxy.js';
import { generatedSource, MIB, sha256Of } from './targets/suite.js';

const s3 = inject('s3');
const bucket = `backer-mp-${randomUUID().slice(0, 8)}`;
const credentials = { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey };
const raw = new S3Client({ endpoint: s3.endpoint, region: s3.region, forcePathStyle: true, credentials });

interface Part {
  key: string;
  number: number;
  bytes: number;
  /** The part's CRC32 as the SDK sent it. */
  crc32?: string;
}

/** Forwards to s3rver; records part uploads (size, most at once); `failPart` answers that part number 500. */
async function partProxy(failPart?: number): Promise<{ endpoint: string; parts: Part[]; requests: string[]; creates: { key: string; algorithm?: string }[]; maxInFlight(): number; close(): Promise<void> }> {
  const parts: Part[] = [];
  const requests: string[] = [];
  const creates: { key: string; algorithm?: string }[] = [];
  let inFlight = 0;
  let most = 0;
  const partNumber = (req: IncomingMessage): number => Number(new URL(req.url ?? '/', 'http://proxy').searchParams.get('partNumber') ?? 0);
  const proxy = await startS3Proxy(s3.endpoint, {
    refuse: (req) => (failPart !== undefined && partNumber(req) === failPart ? { status: 500, code: 'InternalError', message: 'part refused by the test' } : undefined),
    onRequest: (req, res) => {
      const url = new URL(req.url ?? '/', 'http://proxy');
      const number = partNumber(req);
      requests.push(`${req.method ?? ''} ${req.url ?? ''}`);
      if (req.method === 'POST' && url.searchParams.has('uploads')) creates.push({ key: url.pathname, algorithm: req.headers['x-amz-checksum-algorithm'] as string | undefined });
      if (number > 0 && number !== failPart) {
        inFlight += 1;
        most = Math.max(most, inFlight);
        const bytes = Number(req.headers['x-amz-decoded-content-length'] ?? req.headers['content-length']);
        parts.push({ key: url.pathname, number, bytes, crc32: req.headers['x-amz-checksum-crc32'] as string | undefined });
        res.on('close', () => (inFlight -= 1));
      }
    },
  });
  return { endpoint: proxy.endpoint, parts, requests, creates, maxInFlight: () => most, close: proxy.close };
}

let proxy: Awaited<ReturnType<typeof partProxy>>;
let client: S3Client;

beforeAll(async () => {
  await raw.send(new CreateBucketCommand({ Bucket: bucket }));
  proxy = await partProxy();
  client = new S3Client({ endpoint: proxy.endpoint, region: s3.region, forcePathStyle: true, credentials });
});
afterAll(async () => {
  client.destroy();
  raw.destroy();
  await proxy.close();
});

function upload(key: string, partSize: number, queueSize: number, maxParts?: number): MultipartUpload {
  return new MultipartUpload({
    client,
    bucket,
    key,
    contentType: 'application/octet-stream',
    partSize,
    queueSize,
    signal: new AbortController().signal,
    tooManyParts: () => partLimitError('t', key, partSize, maxParts),
    ...(maxParts === undefined ? {} : { maxParts }),
  });
}

const partsOf = (key: string): number[] => proxy.parts.filter((p) => p.key === `/${bucket}/${key}`).sort((a, b) => a.number - b.number).map((p) => p.bytes / MIB);

async function pendingUploads(prefix: string): Promise<unknown[]> {
  return (await raw.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: prefix }))).Uploads ?? [];
}

describe('the part buffer pool', () => {
  it('fills (queue_size + 1) buffers over and over for the whole upload, with at most queue_size parts in flight', async () => {
    const key = `pool-${randomUUID()}/a.bin`;
    const source = generatedSource(41 * MIB);
    const up = upload(key, 5 * MIB, 2);
    await up.run(source.stream);
    expect(up.completed).toBe(true);
    expect(up.bytes).toBe(41 * MIB);
    expect(partsOf(key)).toEqual([5, 5, 5, 5, 5, 5, 5, 5, 1]);
    expect(up.bufferAllocations).toBe(3);
    expect(proxy.maxInFlight()).toBeLessThanOrEqual(2);
    // Checksums as lib-storage sent them: CRC32 named at create, each part with its CRC32.
    expect(proxy.creates.filter((c) => c.key === `/${bucket}/${key}`)).toEqual([{ key: `/${bucket}/${key}`, algorithm: 'CRC32' }]);
    expect(proxy.parts.filter((p) => p.key === `/${bucket}/${key}`).every((p) => /^[A-Za-z0-9+/]{6}==$/.test(p.crc32 ?? ''))).toBe(true);
    const out = await raw.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    expect(await sha256Of(out.Body as Readable)).toBe(source.sha256());
  });

  it('stores an artifact smaller than one part with one PutObject, and an empty one too', async () => {
    const key = `pool-${randomUUID()}/small.bin`;
    const up = upload(key, 5 * MIB, 2);
    await up.run(Readable.from([Buffer.from('small '), 'and a string chunk']));
    expect(up.uploadId).toBeUndefined();
    expect(partsOf(key)).toEqual([]);
    const out = await raw.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    expect(await out.Body?.transformToString()).toBe('small and a string chunk');
    const empty = upload(`${key}.empty`, 5 * MIB, 2);
    await empty.run(Readable.from([]));
    expect((await raw.send(new GetObjectCommand({ Bucket: bucket, Key: `${key}.empty` }))).ContentLength).toBe(0);
  });

  it('an artifact of exactly one part is one PutObject', async () => {
    const key = `pool-${randomUUID()}/one.bin`;
    const up = upload(key, 5 * MIB, 2);
    await up.run(generatedSource(5 * MIB).stream);
    expect(up.uploadId).toBeUndefined();
    expect((await raw.send(new GetObjectCommand({ Bucket: bucket, Key: key }))).ContentLength).toBe(5 * MIB);
  });
});

describe('the part limit', () => {
  it('grows the parts past half of the limit and fills exactly what they hold', async () => {
    const key = `limit-${randomUUID()}/fits.bin`;
    const up = upload(key, 5 * MIB, 2, 4);
    await up.run(generatedSource(30 * MIB).stream);
    expect(up.completed).toBe(true);
    expect(partsOf(key)).toEqual([5, 5, 10, 10]);
  });

  it('fails before the part past the limit with the setting to raise; nothing is stored', async () => {
    const key = `limit-${randomUUID()}/too-big.bin`;
    const source = generatedSource(30 * MIB + 1);
    const up = upload(key, 5 * MIB, 2, 4);
    const err = await up.run(source.stream).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MultipartFailure);
    const { origin, cause } = err as MultipartFailure;
    expect(origin).toBe('upload');
    expect(cause).toBeInstanceOf(BackerError);
    expect((cause as BackerError).details).toMatchObject({ setting: 'targets.t.part_size_mb' });
    expect((cause as BackerError).message).toMatch(/larger than 4 parts can hold \(30 MiB/);
    // Four parts were handed out, part 5 never: parts still in flight when the limit was hit are
    // cancelled with the upload (how far they got is timing).
    expect(up.partSizes.map((b) => b / MIB)).toEqual([5, 5, 10, 10]);
    expect(proxy.parts.filter((p) => p.key === `/${bucket}/${key}`).every((p) => p.number <= 4)).toBe(true);
    expect(source.stream.destroyed).toBe(true);
    expect(up.completed).toBe(false);
    // The uploader leaves the abort to the target (s3.ts undoWrite): here the test does it.
    await raw.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: up.uploadId }));
    expect(await pendingUploads(key)).toEqual([]);
  });
});

describe('through the S3 target', () => {
  const target = (endpoint: string, prefix: string): ReturnType<typeof createS3Target> =>
    createS3Target({
      name: 'mp',
      type: 's3',
      default: false,
      bucket,
      prefix,
      endpoint,
      region: s3.region,
      force_path_style: true,
      access_key_id: s3.accessKeyId,
      secret_access_key: s3.secretAccessKey,
      part_size_mb: 5,
      queue_size: 2,
    });

  it('sizes the parts from the size hint', async () => {
    const prefix = `hint-${randomUUID()}/`;
    const t = target(proxy.endpoint, prefix);
    try {
      const source = generatedSource(20 * MIB);
      // 20 GiB expected: 9 MiB parts (twice the hint in 5,000 parts), not the configured 5.
      await t.write('m/a.bin', source.stream, { signal: new AbortController().signal, sizeHint: 20 * 1024 * MIB });
      expect(partsOf(`${prefix}m/a.bin`)).toEqual([9, 9, 2]);
      expect(await sha256Of(await t.read('m/a.bin'))).toBe(source.sha256());
    } finally {
      await t.close();
    }
  });

  it('a part that keeps failing fails the write, stops the source and aborts the upload: no upload is left', async () => {
    const failing = await partProxy(3);
    const prefix = `fail-${randomUUID()}/`;
    const t = target(failing.endpoint, prefix);
    try {
      const source = generatedSource(Number.POSITIVE_INFINITY);
      const err = await t.write('m/x.bin', source.stream, { signal: new AbortController().signal }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(BackerError);
      expect((err as BackerError).code).toBe('TARGET_WRITE_FAILED');
      expect((err as BackerError).message).toMatch(/could not upload "m\/x.bin"/);
      expect(source.stream.destroyed).toBe(true);
      expect(failing.requests.some((r) => r.startsWith('DELETE ') && r.includes('uploadId='))).toBe(true);
      expect(await pendingUploads(prefix)).toEqual([]);
      expect(await t.stat('m/x.bin')).toBeUndefined();
    } finally {
      await t.close();
      await failing.close();
    }
  });
});
