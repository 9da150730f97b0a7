/**
 * The test S3 server's extension (test code, never shipped): s3rver 3.7 stores multipart uploads
 * (CreateMultipartUpload, UploadPart, CompleteMultipartUpload) but answers ListMultipartUploads,
 * ListParts and AbortMultipartUpload with NotImplemented / MethodNotAllowed. `installUploadListing`
 * adds the three, read from s3rver's own filesystem store: an upload is the folder
 * `<root>/<bucket>/._S3rver_uploads/<uploadId>/` holding `key`, `metadata` and the parts `N` (with
 * `N.md5` once stored); CompleteMultipartUpload removes the folder, so a completed upload is no
 * longer listed. Path-style requests only; like the rest of s3rver no permissions are checked.
 * Uploads are ordered by key, then upload id (S3 orders same-key uploads by start time).
 */
import { createRequire } from 'node:module';
import { readdir, readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type S3rver from 's3rver';

type Next = () => Promise<void>;
interface Ctx {
  method: string;
  path: string;
  query: Record<string, string | string[] | undefined>;
  status: number;
  body: unknown;
}
type Middleware = (ctx: Ctx, next: Next) => Promise<void>;
interface Store {
  getResourcePath(bucket: string, key: undefined, resource: string): string;
  getBucket(bucket: string): Promise<unknown>;
}
/** What s3rver is underneath: a Koa application whose last middleware is its router. */
interface S3rverApp {
  middleware: Middleware[];
  store: Store;
}

type S3ErrorClass = new (code: string, message: string, detail?: Record<string, string>) => Error;
const S3Error = createRequire(import.meta.url)('s3rver/lib/models/error.js') as S3ErrorClass;

const XMLNS = { '@': { xmlns: 'http://s3.amazonaws.com/doc/2006-03-01/' } };
const OWNER = { ID: '123456789000', DisplayName: 'S3rver' };

interface Upload {
  key: string;
  uploadId: string;
  initiated: Date;
}

const missing = (err: unknown): boolean => (err as NodeJS.ErrnoException).code === 'ENOENT';
const one = (v: string | string[] | undefined): string | undefined => (Array.isArray(v) ? v[0] : v);

/** A paging limit from the query: S3's default and ceiling are 1000. */
function limit(value: string | undefined, name: string): number {
  if (value === undefined) return 1000;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new S3Error('InvalidArgument', `${name} must be a non-negative integer`, { ArgumentName: name, ArgumentValue: value });
  return Math.min(n, 1000);
}

/** The uploads of a bucket; a folder without `key` (being created, or re-made by a stray UploadPart) is none. */
async function uploadsOf(store: Store, bucket: string): Promise<Upload[]> {
  const root = store.getResourcePath(bucket, undefined, 'uploads');
  const found = await Promise.all((await uploadIds(root)).map((uploadId) => uploadAt(root, uploadId)));
  return found.filter((u): u is Upload => u !== undefined).sort((a, b) => (a.key === b.key ? cmp(a.uploadId, b.uploadId) : cmp(a.key, b.key)));
}

async function uploadIds(root: string): Promise<string[]> {
  try {
    return await readdir(root);
  } catch (err) {
    if (missing(err)) return [];
    throw err;
  }
}

const cmp = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

async function uploadAt(root: string, uploadId: string): Promise<Upload | undefined> {
  try {
    const [key, dir, keyFile] = await Promise.all([readFile(join(root, uploadId, 'key'), 'utf8'), stat(join(root, uploadId)), stat(join(root, uploadId, 'key'))]);
    // The folder's birth time where the filesystem keeps one, else when its `key` was written.
    return { key, uploadId, initiated: dir.birthtimeMs > 0 ? dir.birthtime : keyFile.mtime };
  } catch (err) {
    if (missing(err)) return undefined;
    throw err;
  }
}

async function listUploads(store: Store, bucket: string, query: Ctx['query']): Promise<unknown> {
  if (one(query.delimiter)) throw new S3Error('NotImplemented', 'delimiter is not implemented by the test server');
  const prefix = one(query.prefix) ?? '';
  const keyMarker = one(query['key-marker']) ?? '';
  const idMarker = one(query['upload-id-marker']) ?? '';
  const max = limit(one(query['max-uploads']), 'max-uploads');
  const after = (u: Upload): boolean => u.key > keyMarker || (idMarker !== '' && u.key === keyMarker && u.uploadId > idMarker);
  const matching = (await uploadsOf(store, bucket)).filter((u) => u.key.startsWith(prefix) && after(u));
  const page = matching.slice(0, max);
  const truncated = matching.length > page.length;
  const last = page.at(-1);
  return {
    ListMultipartUploadsResult: {
      ...XMLNS,
      Bucket: bucket,
      KeyMarker: keyMarker,
      UploadIdMarker: idMarker,
      NextKeyMarker: truncated ? last?.key : undefined,
      NextUploadIdMarker: truncated ? last?.uploadId : undefined,
      Prefix: prefix,
      MaxUploads: max,
      IsTruncated: truncated,
      Upload: page.map((u) => ({ Key: u.key, UploadId: u.uploadId, Initiator: OWNER, Owner: OWNER, StorageClass: 'STANDARD', Initiated: u.initiated.toISOString() })),
    },
  };
}

/** The upload's folder, if `uploadId` is an upload of `key`. */
async function uploadDir(store: Store, bucket: string, key: string, uploadId: string): Promise<string> {
  const dir = join(store.getResourcePath(bucket, undefined, 'uploads'), uploadId);
  const stored = /^[0-9a-zA-Z]+$/.test(uploadId) ? await readFile(join(dir, 'key'), 'utf8').catch(() => undefined) : undefined;
  if (stored !== key) {
    throw new S3Error('NoSuchUpload', 'The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.', { UploadId: uploadId });
  }
  return dir;
}

async function listParts(store: Store, bucket: string, key: string, query: Ctx['query']): Promise<unknown> {
  const uploadId = one(query.uploadId) ?? '';
  const dir = await uploadDir(store, bucket, key, uploadId);
  const marker = Number(one(query['part-number-marker']) ?? 0);
  const max = limit(one(query['max-parts']), 'max-parts');
  const names = new Set(await readdir(dir));
  // A part counts once its `.md5` is written (s3rver writes it when the part is stored).
  const numbers = [...names].filter((n) => /^\d+$/.test(n) && names.has(`${n}.md5`) && Number(n) > marker).map(Number).sort((a, b) => a - b);
  const page = numbers.slice(0, max);
  const truncated = numbers.length > page.length;
  const parts = await Promise.all(
    page.map(async (n) => {
      const [info, md5] = await Promise.all([stat(join(dir, String(n))), readFile(join(dir, `${n}.md5`), 'utf8')]);
      return { PartNumber: n, LastModified: info.mtime.toISOString(), ETag: JSON.stringify(md5), Size: info.size };
    }),
  );
  return {
    ListPartsResult: {
      ...XMLNS,
      Bucket: bucket,
      Key: key,
      UploadId: uploadId,
      Initiator: OWNER,
      Owner: OWNER,
      StorageClass: 'STANDARD',
      PartNumberMarker: marker,
      NextPartNumberMarker: truncated ? page.at(-1) : undefined,
      MaxParts: max,
      IsTruncated: truncated,
      Part: parts,
    },
  };
}

/** The three operations, or undefined for a request s3rver answers itself. */
function operation(ctx: Ctx, store: Store): (() => Promise<void>) | undefined {
  const [, rawBucket = '', ...rest] = ctx.path.split('/');
  const bucket = decodeURIComponent(rawBucket);
  const key = decodeURIComponent(rest.join('/'));
  const body = (make: () => Promise<unknown>) => async (): Promise<void> => {
    ctx.body = await make();
  };
  if (bucket === '') return undefined;
  if (key === '' && ctx.method === 'GET' && 'uploads' in ctx.query) return body(() => listUploads(store, bucket, ctx.query));
  if (key === '' || !('uploadId' in ctx.query)) return undefined;
  if (ctx.method === 'GET') return body(() => listParts(store, bucket, key, ctx.query));
  if (ctx.method !== 'DELETE') return undefined;
  return async () => {
    await rm(await uploadDir(store, bucket, key, one(ctx.query.uploadId) ?? ''), { recursive: true, force: true });
    ctx.status = 204;
  };
}

/** Adds ListMultipartUploads, ListParts and AbortMultipartUpload to an s3rver instance (before `run`). */
export function installUploadListing(server: S3rver): void {
  const app = server as unknown as S3rverApp;
  const handler: Middleware = async (ctx, next) => {
    const run = operation(ctx, app.store);
    if (run === undefined) return next();
    const [, bucket = ''] = ctx.path.split('/');
    if (!(await app.store.getBucket(decodeURIComponent(bucket)))) {
      throw new S3Error('NoSuchBucket', 'The specified bucket does not exist', { BucketName: decodeURIComponent(bucket) });
    }
    await run();
  };
  // Koa composes `middleware` when it starts serving: the handler runs before s3rver's router and
  // after its XML encoder, which turns the plain objects above into the response body.
  app.middleware.splice(app.middleware.length - 1, 0, handler);
}
