import {
  CreateBucketCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { S3TargetConfig } from '../../src/config/schema.js';
import { BackerError, describeError } from '../../src/errors.js';
import { createS3Target } from '../../src/targets/s3.js';
import type { Target } from '../../src/targets/types.js';
import { startS3Proxy, type Refusal } from '../helpers/s3-proxy.js';
import { describeTargetSuite, generatedSource, MIB, rejectionCode, sha256Of } from './suite.js';

const s3 = inject('s3');
const bucket = `backer-${randomUUID().slice(0, 8)}`;

function config(overrides: Partial<S3TargetConfig> = {}): S3TargetConfig {
  return {
    name: 'bucket',
    type: 's3',
    default: false,
    bucket,
    prefix: `suite-${randomUUID()}/`,
    endpoint: s3.endpoint,
    region: s3.region,
    force_path_style: true,
    access_key_id: s3.accessKeyId,
    secret_access_key: s3.secretAccessKey,
    // The S3 minimum, so a few MiB already make a multipart upload.
    part_size_mb: 5,
    queue_size: 2,
    ...overrides,
  };
}

const raw = new S3Client({
  endpoint: s3.endpoint,
  region: s3.region,
  forcePathStyle: true,
  credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
});

interface Seen {
  method: string;
  url: string;
  status: number;
  ifNoneMatch?: string;
}

/**
 * Forwards to s3rver and records each request, to see what the SDK actually sent. `refuse` may
 * answer a request itself (a server-side refusal s3rver cannot produce).
 */
async function recordingProxy(
  refuse: (method: string, url: string) => Refusal | undefined = () => undefined,
): Promise<{ endpoint: string; seen: Seen[]; close(): Promise<void> }> {
  const seen: Seen[] = [];
  const proxy = await startS3Proxy(s3.endpoint, {
    refuse: (req) => refuse(req.method ?? '', req.url ?? ''),
    onAnswer: (req, status) => seen.push({ method: req.method ?? '', url: req.url ?? '', status, ifNoneMatch: req.headers['if-none-match'] }),
  });
  return { endpoint: proxy.endpoint, seen, close: proxy.close };
}

beforeAll(async () => {
  await raw.send(new CreateBucketCommand({ Bucket: bucket }));
});
afterAll(() => {
  raw.destroy();
});

// The bucket goes away with s3rver's directory after the run; each suite run has its own prefix.
describeTargetSuite('s3', () => Promise.resolve({ target: createS3Target(config()), cleanup: () => Promise.resolve() }));

describe('s3 target specifics', () => {
  let proxy: Awaited<ReturnType<typeof recordingProxy>>;
  let target: Target;
  let prefix: string;

  beforeAll(async () => {
    proxy = await recordingProxy();
    prefix = `pfx-${randomUUID()}/deep/`;
    target = createS3Target(config({ endpoint: proxy.endpoint, prefix }));
  });
  afterAll(async () => {
    await target.close();
    await proxy.close();
  });

  it('uploads a 17 MiB artifact in several parts and reads it back identically', async () => {
    const source = generatedSource(17 * MIB);
    await target.write('m/big.bin', source.stream, { signal: new AbortController().signal });
    const parts = proxy.seen.filter((r) => r.method === 'PUT' && r.url.includes('/m/big.bin?') && r.url.includes('partNumber='));
    expect(parts.map((p) => p.status)).toEqual([200, 200, 200, 200]);
    expect((await target.stat('m/big.bin'))?.size).toBe(17 * MIB);
    expect(await sha256Of(await target.read('m/big.bin'))).toBe(source.sha256());
  });

  it('stores objects under the prefix and lists them without it', async () => {
    await target.writeOnce('m/manifest.json', Buffer.from('{}'));
    const top = prefix.split('/')[0] ?? '';
    // Neighbours of the prefix that the target must not see.
    await raw.send(new PutObjectCommand({ Bucket: bucket, Key: `${top}/outside.bin`, Body: 'x' }));
    await raw.send(new PutObjectCommand({ Bucket: bucket, Key: `${top}/deeper/m/x.bin`, Body: 'x' }));
    const listed = await raw.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: `${top}/` }));
    expect(listed.Contents?.map((o) => o.Key)).toContain(`${prefix}m/manifest.json`);
    expect((await target.list('m/')).map((o) => o.key)).toEqual(['m/big.bin', 'm/manifest.json']);
    expect((await target.list('')).map((o) => o.key)).toEqual(['m/big.bin', 'm/manifest.json']);
  });

  it('aborts the multipart upload of a cancelled write', async () => {
    const controller = new AbortController();
    const partDone = (): boolean => proxy.seen.some((r) => r.url.includes('/m/cancelled.bin?') && r.url.includes('partNumber=1'));
    const source = generatedSource(Number.POSITIVE_INFINITY, {
      onBytes: () => {
        // Cancel only once a part is stored, so there is a real multipart upload to clean up.
        if (partDone() && !controller.signal.aborted) controller.abort(new Error('test cancel'));
      },
    });
    const written = target.write('m/cancelled.bin', source.stream, { signal: controller.signal });
    expect(await rejectionCode(written)).toBe('JOB_CANCELLED');

    const uploadId = new URL(proxy.seen.find((r) => r.url.includes('/m/cancelled.bin?') && r.url.includes('partNumber=1'))?.url ?? '', proxy.endpoint).searchParams.get('uploadId');
    expect(uploadId).toBeTruthy();
    const aborts = proxy.seen.filter((r) => r.method === 'DELETE' && r.url.includes(`uploadId=${uploadId}`));
    expect(aborts.length).toBeGreaterThan(0);
    expect(await target.stat('m/cancelled.bin')).toBeUndefined();
    expect((await target.list('m/')).map((o) => o.key)).not.toContain('m/cancelled.bin');

    // The server lists no unfinished upload of the key: the abort went through.
    const pending = await raw.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: `${prefix}m/cancelled.bin` }));
    expect(pending.Uploads ?? []).toEqual([]);
  });

  it('writes artifacts conditionally: If-None-Match on the single PUT and on CompleteMultipartUpload', async () => {
    await target.write('m/cond-big.bin', generatedSource(12 * MIB).stream, { signal: new AbortController().signal });
    await target.write('m/cond-small.bin', Readable.from([Buffer.from('small')]), { signal: new AbortController().signal });
    const complete = proxy.seen.filter((r) => r.method === 'POST' && r.url.includes('/m/cond-big.bin?') && r.url.includes('uploadId='));
    expect(complete.map((r) => [r.status, r.ifNoneMatch])).toEqual([[200, '*']]);
    const put = proxy.seen.filter((r) => r.method === 'PUT' && r.url.split('?')[0]?.endsWith('/m/cond-small.bin'));
    expect(put.map((r) => [r.status, r.ifNoneMatch])).toEqual([[200, '*']]);
  });

  it('a complete refused with 412 (the name was taken meanwhile) fails as "exists" and touches nothing', async () => {
    const refusing = await recordingProxy((method, url) =>
      method === 'POST' && url.includes('/m/race.bin?') && url.includes('uploadId=') ? { status: 412, code: 'PreconditionFailed' } : undefined,
    );
    const racing = createS3Target(config({ endpoint: refusing.endpoint, prefix }));
    try {
      const err = await racing.write('m/race.bin', generatedSource(12 * MIB).stream, { signal: new AbortController().signal }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(BackerError);
      expect((err as BackerError).details).toMatchObject({ key: 'm/race.bin', exists: true });
      expect((err as BackerError).message).toMatch(/already exists and is not overwritten/);
      // No DELETE of the object key: only the multipart upload is aborted.
      expect(refusing.seen.filter((r) => r.method === 'DELETE' && !r.url.includes('uploadId='))).toEqual([]);
      expect(refusing.seen.some((r) => r.method === 'DELETE' && r.url.includes('uploadId='))).toBe(true);
      expect(await racing.stat('m/race.bin')).toBeUndefined();
    } finally {
      await racing.close();
      await refusing.close();
    }
  });

  it('never puts credentials into errors', async () => {
    // s3rver does not verify SigV4 signatures, so an unknown key id is what makes it refuse.
    const secret = `not-the-secret-${randomUUID()}`;
    const wrong = createS3Target(config({ access_key_id: 'UNKNOWNKEY', secret_access_key: secret }));
    try {
      const err = await wrong.write('x.bin', Readable.from([Buffer.from('x')]), { signal: new AbortController().signal }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(BackerError);
      const backerError = err as BackerError;
      expect(backerError.code).toBe('TARGET_WRITE_FAILED');
      expect(backerError.component).toBe('target bucket');
      expect(backerError.details).toMatchObject({ target: 'bucket', key: 'x.bin' });
      expect(JSON.stringify(backerError.toJSON())).not.toContain(secret);
      expect(describeError(backerError)).not.toContain(secret);
      expect(await rejectionCode(wrong.read('x.bin'))).toBe('TARGET_READ_FAILED');
    } finally {
      await wrong.close();
    }
  });
});
