/**
 * The test S3 server's multipart listing extension (s3-uploads.ts), through the AWS SDK against
 * the s3rver of the run: uploads begun and fed through s3rver's own CreateMultipartUpload and
 * UploadPart are listed, their parts listed, and they can be aborted or completed.
 */
import { randomBytes } from 'node:crypto';
import { text } from 'node:stream/consumers';
import type { Readable } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  ListMultipartUploadsCommand,
  ListPartsCommand,
  S3ServiceException,
  UploadPartCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBucket, listUploads, s3Client } from '../helpers/env.js';

const bucket = `bk-uploads-${randomBytes(3).toString('hex')}`;
let client: S3Client;

interface Begun {
  key: string;
  uploadId: string;
  etags: string[];
}

async function begin(key: string, parts: string[]): Promise<Begun> {
  const created = await client.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key }));
  const uploadId = created.UploadId ?? '';
  const etags: string[] = [];
  for (const [i, body] of parts.entries()) {
    const part = await client.send(new UploadPartCommand({ Bucket: bucket, Key: key, UploadId: uploadId, PartNumber: i + 1, Body: body }));
    etags.push(part.ETag ?? '');
  }
  return { key, uploadId, etags };
}

async function errorOf(p: Promise<unknown>): Promise<S3ServiceException> {
  try {
    await p;
  } catch (err) {
    if (err instanceof S3ServiceException) return err;
    throw err;
  }
  throw new Error('expected the call to fail');
}

beforeAll(async () => {
  await createBucket(bucket);
  client = s3Client();
});
afterAll(() => client.destroy());

describe('multipart uploads on the test S3 server', () => {
  let a: Begun;
  let b: Begun;
  let c: Begun;

  beforeAll(async () => {
    a = await begin('pre/a.bin', ['aaaa', 'bb']);
    b = await begin('pre/b.bin', ['ccccccc']);
    c = await begin('other/c.bin', []);
  });

  it('lists the uploads under a prefix with their start time, and all of them without one', async () => {
    const started = Date.now();
    const page = await client.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: 'pre/' }));
    expect(page.IsTruncated).toBe(false);
    expect(page.Prefix).toBe('pre/');
    expect(page.Uploads?.map((u) => [u.Key, u.UploadId, u.StorageClass])).toEqual([
      ['pre/a.bin', a.uploadId, 'STANDARD'],
      ['pre/b.bin', b.uploadId, 'STANDARD'],
    ]);
    for (const u of page.Uploads ?? []) {
      expect(u.Initiated).toBeInstanceOf(Date);
      expect(started - (u.Initiated?.getTime() ?? 0)).toBeGreaterThanOrEqual(0);
      expect(started - (u.Initiated?.getTime() ?? 0)).toBeLessThan(60_000);
    }
    expect((await listUploads(bucket)).map((u) => u.key)).toEqual(['other/c.bin', 'pre/a.bin', 'pre/b.bin']);
  });

  it('pages with max-uploads and the key and upload id markers', async () => {
    const seen: string[] = [];
    let markers: { KeyMarker?: string; UploadIdMarker?: string } = {};
    for (let pages = 1; ; pages++) {
      const page = await client.send(new ListMultipartUploadsCommand({ Bucket: bucket, MaxUploads: 1, ...markers }));
      expect(page.MaxUploads).toBe(1);
      expect(page.Uploads?.length).toBe(1);
      seen.push(page.Uploads?.[0]?.Key ?? '');
      if (page.IsTruncated !== true) {
        expect(pages).toBe(3);
        break;
      }
      expect([page.NextKeyMarker, page.NextUploadIdMarker]).toEqual([page.Uploads?.[0]?.Key, page.Uploads?.[0]?.UploadId]);
      markers = { KeyMarker: page.NextKeyMarker, UploadIdMarker: page.NextUploadIdMarker };
    }
    expect(seen).toEqual(['other/c.bin', 'pre/a.bin', 'pre/b.bin']);
    // A second upload of the same key comes after the first when the upload id marker names it.
    const again = await begin('pre/a.bin', []);
    const [first, second] = [a.uploadId, again.uploadId].sort();
    const page = await client.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: 'pre/a', KeyMarker: 'pre/a.bin', UploadIdMarker: first }));
    expect(page.Uploads?.map((u) => u.UploadId)).toEqual([second]);
    await client.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: 'pre/a.bin', UploadId: again.uploadId }));
  });

  it('lists the parts with their sizes and ETags, page by page', async () => {
    const all = await client.send(new ListPartsCommand({ Bucket: bucket, Key: a.key, UploadId: a.uploadId }));
    expect(all.IsTruncated).toBe(false);
    expect(all.Parts?.map((p) => [p.PartNumber, p.Size, p.ETag])).toEqual([
      [1, 4, a.etags[0]],
      [2, 2, a.etags[1]],
    ]);
    expect(all.Parts?.[0]?.LastModified).toBeInstanceOf(Date);
    const first = await client.send(new ListPartsCommand({ Bucket: bucket, Key: a.key, UploadId: a.uploadId, MaxParts: 1 }));
    expect([first.IsTruncated, first.NextPartNumberMarker, first.Parts?.map((p) => p.PartNumber)]).toEqual([true, '1', [1]]);
    const rest = await client.send(new ListPartsCommand({ Bucket: bucket, Key: a.key, UploadId: a.uploadId, PartNumberMarker: '1' }));
    expect([rest.IsTruncated, rest.Parts?.map((p) => p.PartNumber)]).toEqual([false, [2]]);
    const none = await client.send(new ListPartsCommand({ Bucket: bucket, Key: c.key, UploadId: c.uploadId }));
    expect(none.Parts ?? []).toEqual([]);
  });

  it('answers NoSuchUpload for an unknown upload id, or an upload of another key', async () => {
    for (const call of [
      () => client.send(new ListPartsCommand({ Bucket: bucket, Key: a.key, UploadId: 'f'.repeat(32) })),
      () => client.send(new ListPartsCommand({ Bucket: bucket, Key: b.key, UploadId: a.uploadId })),
      () => client.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: a.key, UploadId: '../../x' })),
    ]) {
      const err = await errorOf(call());
      expect([err.name, err.$metadata.httpStatusCode]).toEqual(['NoSuchUpload', 404]);
    }
    const err = await errorOf(client.send(new ListMultipartUploadsCommand({ Bucket: `${bucket}-none` })));
    expect([err.name, err.$metadata.httpStatusCode]).toEqual(['NoSuchBucket', 404]);
  });

  it('aborts an upload: it and its parts are gone', async () => {
    const out = await client.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: b.key, UploadId: b.uploadId }));
    expect(out.$metadata.httpStatusCode).toBe(204);
    expect((await listUploads(bucket, 'pre/')).map((u) => u.uploadId)).toEqual([a.uploadId]);
    const err = await errorOf(client.send(new ListPartsCommand({ Bucket: bucket, Key: b.key, UploadId: b.uploadId })));
    expect(err.name).toBe('NoSuchUpload');
    expect((await errorOf(client.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: b.key, UploadId: b.uploadId })))).name).toBe('NoSuchUpload');
  });

  it('a completed upload is no longer listed and its object reads back', async () => {
    await client.send(
      new CompleteMultipartUploadCommand({
        Bucket: bucket,
        Key: a.key,
        UploadId: a.uploadId,
        MultipartUpload: { Parts: a.etags.map((ETag, i) => ({ ETag, PartNumber: i + 1 })) },
      }),
    );
    expect(await listUploads(bucket)).toEqual([{ key: c.key, uploadId: c.uploadId }]);
    const object = await client.send(new GetObjectCommand({ Bucket: bucket, Key: a.key }));
    expect(await text(object.Body as Readable)).toBe('aaaabb');
    await client.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: c.key, UploadId: c.uploadId }));
    expect(await listUploads(bucket)).toEqual([]);
  });
});
