/**
 * Which failures the queue retries (src/errors.ts RETRY_CLASS, retryable): every ErrorCode has a
 * class (a Record: compile-time), each class is exercised, with real error objects where they
 * can be had: a refused TCP connection, S3 errors from s3rver (wrong key, missing bucket) and from
 * a server answering 5xx, the S3 target against a closed port, and a real PostgreSQL that refuses
 * a wrong password (exactly one attempt through the daemon's queue).
 */
import { createServer as createHttpServer } from 'node:http';
import { connect, createServer, type AddressInfo } from 'node:net';
import { GetObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { Daemon } from '../../src/daemon/daemon.js';
import { BackerError, describeError, RETRY_CLASS, retryable, type ErrorCode } from '../../src/errors.js';
import { execStream, runningContainer } from '../../src/sources/docker-exec.js';
import { createTarget } from '../../src/targets/index.js';
import { createTestEnv, startDaemon, type TestEnv } from '../helpers/env.js';
import { pgDocker, startPostgres } from '../helpers/postgres.js';
import { docker, HOST_IMAGE } from '../setup/services.js';

const SUFFIX = Math.random().toString(36).slice(2, 8);
const WRONG_PW = `errtable-pg-wrongpw-${SUFFIX}`;
const STOPPED = `errtable-stopped-${SUFFIX}`;
const RESTARTING = `errtable-restarting-${SUFFIX}`;
const wrap = (code: ErrorCode, cause?: unknown, permanent?: boolean): BackerError => new BackerError(code, `test ${code}`, { component: 'test', cause, permanent });

async function caught(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (err) {
    return err;
  }
  throw new Error('expected a failure');
}

/** A port nothing listens on (it was bound and released). */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

async function connectionError(host: string, port: number): Promise<unknown> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    socket.on('error', resolve);
    socket.on('connect', () => resolve(new Error('connected')));
  });
}

function s3(endpoint: string, key = inject('s3').accessKeyId, secret = inject('s3').secretAccessKey): S3Client {
  return new S3Client({ endpoint, region: 'us-east-1', forcePathStyle: true, maxAttempts: 1, credentials: { accessKeyId: key, secretAccessKey: secret } });
}

describe('RETRY_CLASS', () => {
  it('classes every code; the transient ones are exactly Docker unavailable, container not running, daemon unreachable', () => {
    const classes = Object.entries(RETRY_CLASS);
    expect(classes.length).toBeGreaterThan(30);
    expect(classes.filter(([, c]) => c === 'transient').map(([code]) => code).sort()).toEqual(['CONTAINER_NOT_RUNNING', 'DAEMON_UNREACHABLE', 'DOCKER_UNAVAILABLE']);
    expect(classes.filter(([, c]) => c === 'cause').map(([code]) => code).sort()).toEqual(
      ['DRILL_FAILED', 'DUMP_FAILED', 'DUMP_TRUNCATED', 'INTERNAL', 'MIDDLEWARE_FAILED', 'TARGET_READ_FAILED', 'TARGET_WRITE_FAILED'],
    );
  });

  const permanent: ErrorCode[] = ['CONFIG_INVALID', 'LABEL_INVALID', 'SECRET_UNRESOLVED', 'TOOL_MISSING', 'MANDATE_NOT_FOUND', 'CONTAINER_NOT_FOUND', 'RESTORE_REFUSED', 'RESTORE_FAILED', 'JOB_CANCELLED', 'STATE_INVALID', 'STATE_LOCKED', 'VERIFY_FAILED'];
  it.each(permanent)('never retries %s, whatever its cause', (code) => {
    expect(RETRY_CLASS[code]).toBe('permanent');
    expect(retryable(wrap(code))).toBe(false);
    expect(retryable(wrap(code, Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' })))).toBe(false);
  });

  it.each(['DOCKER_UNAVAILABLE', 'CONTAINER_NOT_RUNNING'] as ErrorCode[])('retries %s, unless raised as permanent', (code) => {
    expect(retryable(wrap(code))).toBe(true);
    expect(retryable(wrap(code, undefined, true))).toBe(false);
  });
});

describe('retryable: cause codes by their cause chain', () => {
  it('retries a real ECONNREFUSED (IPv4 and localhost) and other network errno codes', async () => {
    const port = await closedPort();
    const refused = await connectionError('127.0.0.1', port);
    expect(refused).toMatchObject({ code: 'ECONNREFUSED' });
    expect(retryable(wrap('TARGET_WRITE_FAILED', refused))).toBe(true);
    expect(retryable(wrap('DUMP_FAILED', wrap('INTERNAL', refused)))).toBe(true);
    expect(retryable(refused)).toBe(true);
    // `localhost` tries every address: Node reports an AggregateError (or one error) with the code.
    expect(retryable(wrap('TARGET_READ_FAILED', await connectionError('localhost', port)))).toBe(true);
    for (const code of ['ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EAI_AGAIN', 'EHOSTUNREACH']) {
      expect(retryable(wrap('MIDDLEWARE_FAILED', Object.assign(new Error(code), { code })))).toBe(true);
    }
    expect(retryable(wrap('TARGET_WRITE_FAILED', new AggregateError([Object.assign(new Error('x'), { code: 'ECONNRESET' })], 'all failed')))).toBe(true);
  });

  it('does not retry ENOTFOUND (the name does not exist), disk errors, or nothing recognisable', async () => {
    const notFound = await connectionError('backer-no-such-host.invalid', 80);
    expect(notFound).toMatchObject({ code: 'ENOTFOUND' });
    expect(retryable(wrap('TARGET_WRITE_FAILED', notFound))).toBe(false);
    expect(retryable(wrap('TARGET_WRITE_FAILED', Object.assign(new Error('no space'), { code: 'ENOSPC' })))).toBe(false);
    expect(retryable(wrap('DUMP_FAILED'))).toBe(false);
    expect(retryable(wrap('INTERNAL', new TypeError('x is undefined')))).toBe(false);
    expect(retryable(new Error('plain'))).toBe(false);
    expect(retryable('a string')).toBe(false);
    expect(retryable(undefined)).toBe(false);
  });

  it('stops at a permanent link: a cancel, an AbortError, a permanent BackerError below', () => {
    const refused = Object.assign(new Error('refused'), { code: 'ECONNREFUSED' });
    expect(retryable(wrap('TARGET_WRITE_FAILED', wrap('JOB_CANCELLED', refused)))).toBe(false);
    expect(retryable(wrap('TARGET_WRITE_FAILED', wrap('DUMP_FAILED', refused, true)))).toBe(false);
    expect(retryable(wrap('MIDDLEWARE_FAILED', Object.assign(new Error('aborted'), { name: 'AbortError' })))).toBe(false);
    expect(retryable(wrap('TARGET_WRITE_FAILED', wrap('DOCKER_UNAVAILABLE')))).toBe(true);
  });

  it('does not retry real S3 4xx errors from s3rver: a wrong key, a missing bucket', async () => {
    const { endpoint } = inject('s3');
    const wrongKey = await caught(s3(endpoint, 'NOT-THE-KEY', 'not-the-secret').send(new ListObjectsV2Command({ Bucket: 'errtable-any' })));
    expect(wrongKey).toMatchObject({ $metadata: { httpStatusCode: 403 } });
    expect(retryable(wrap('TARGET_READ_FAILED', wrongKey))).toBe(false);
    const noBucket = await caught(s3(endpoint).send(new ListObjectsV2Command({ Bucket: 'errtable-no-such-bucket' })));
    expect(noBucket).toMatchObject({ name: 'NoSuchBucket', $metadata: { httpStatusCode: 404 } });
    expect(retryable(wrap('TARGET_READ_FAILED', noBucket))).toBe(false);
  });

  it('retries real S3 5xx and throttling answers', async () => {
    const answers = [
      { status: 503, code: 'SlowDown' },
      { status: 500, code: 'InternalError' },
      { status: 502, code: 'BadGateway' },
      { status: 400, code: 'RequestTimeout' },
    ];
    let next = answers[0];
    const server = createHttpServer((req, res) => {
      req.resume();
      res.writeHead(next?.status ?? 500, { 'content-type': 'application/xml' });
      res.end(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>${next?.code ?? ''}</Code><Message>test</Message></Error>`);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const client = s3(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
      for (const answer of answers) {
        next = answer;
        const err = await caught(client.send(new GetObjectCommand({ Bucket: 'errtable', Key: 'k' })));
        expect(err, answer.code).toMatchObject({ $metadata: { httpStatusCode: answer.status } });
        expect(retryable(wrap('TARGET_READ_FAILED', err)), answer.code).toBe(true);
      }
      expect(retryable(wrap('TARGET_WRITE_FAILED', { name: 'Whatever', $metadata: { httpStatusCode: 429 } }))).toBe(true);
      expect(retryable(wrap('TARGET_WRITE_FAILED', { name: 'AccessDenied', $metadata: { httpStatusCode: 403 } }))).toBe(false);
      client.destroy();
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  it('retries the S3 target when its endpoint refuses connections', async () => {
    const target = createTarget({ name: 'errtable-down', type: 's3', bucket: 'errtable-down', prefix: '', endpoint: `http://127.0.0.1:${await closedPort()}`, region: 'us-east-1', force_path_style: true, access_key_id: 'k', secret_access_key: 's', part_size_mb: 5, queue_size: 1, default: false });
    try {
      const err = await caught(target.list('x/'));
      expect(err).toMatchObject({ code: 'TARGET_READ_FAILED' });
      expect(retryable(err)).toBe(true);
    } finally {
      await target.close();
    }
  });
});

describe('a container that is not running (real Docker engine)', () => {
  const host = (): string => inject('dockerHost');
  const engine = (): Docker => new Docker({ socketPath: host().replace(/^unix:\/\//, '') });

  afterAll(async () => {
    await docker(host(), ['rm', '-f', STOPPED, RESTARTING]).catch(() => undefined);
  });

  it('is permanent when stopped, transient while Docker restarts it', async () => {
    await docker(host(), ['create', '--name', STOPPED, '--network', 'none', HOST_IMAGE, '/usr/bin/true']);
    const stopped = await caught(runningContainer(engine(), STOPPED, 'test'));
    expect(stopped).toMatchObject({ code: 'CONTAINER_NOT_RUNNING', message: expect.stringContaining('(created)') as unknown });
    expect(retryable(stopped)).toBe(false);

    // A container that exits at once under `--restart always` spends most of its time restarting;
    // Docker then reports it running (State.Restarting), and refuses an exec with 409.
    await docker(host(), ['run', '-d', '--name', RESTARTING, '--network', 'none', '-v', '/usr:/usr:ro', '-v', '/etc:/etc:ro', '--restart', 'always', HOST_IMAGE, '/usr/bin/false']);
    let restarting: unknown;
    for (let i = 0; i < 200 && restarting === undefined; i++) {
      restarting = await execStream(engine(), RESTARTING, { cmd: ['/usr/bin/true'] }, 'test').then(
        async (handle) => {
          handle.stdout.resume();
          await handle.result().catch(() => undefined);
          return undefined;
        },
        (err: unknown) => err,
      );
      if (restarting === undefined) await new Promise((r) => setTimeout(r, 50));
    }
    expect(restarting).toMatchObject({ code: 'CONTAINER_NOT_RUNNING' });
    expect(describeError(restarting)).toMatch(/is restarting/);
    expect(retryable(restarting)).toBe(true);
  });
});

describe('a wrong database password (real PostgreSQL)', () => {
  let env: TestEnv;
  let daemon: Daemon | undefined;

  beforeAll(async () => {
    env = await createTestEnv('errtable');
    await startPostgres(WRONG_PW, {
      'backer.enabled': 'true',
      'backer.type': 'postgres',
      'backer.postgres.password': 'Text:not-the-password',
      'backer.postgres.socket_dir': '/tmp',
      'backer.postgres.database': 'postgres',
      'backer.target': 'local',
    });
    daemon = await startDaemon(env);
    await daemon.services.discovery.refresh();
  });

  afterAll(async () => {
    await daemon?.close();
    await pgDocker(['rm', '-f', WRONG_PW]).catch(() => undefined);
  });

  it('is permanent: DUMP_FAILED without a network cause', async () => {
    const err = await caught(daemon?.services.backup(WRONG_PW, new AbortController().signal) ?? Promise.resolve());
    expect(err).toBeInstanceOf(BackerError);
    expect(err).toMatchObject({ code: 'DUMP_FAILED', message: expect.stringMatching(/password authentication failed/) as unknown });
    expect(retryable(err)).toBe(false);
  });

  it('fails its job after exactly one attempt, and the daemon still answers', async () => {
    if (daemon === undefined) throw new Error('no daemon');
    const job = await daemon.queue.wait(daemon.queue.enqueue(WRONG_PW, 'api').id);
    expect(job.state).toBe('failed');
    expect(job.attempts).toBe(1);
    expect(job.error?.code).toBe('DUMP_FAILED');
    expect(job.error?.message).toMatch(/password authentication failed/);
    expect(daemon.services.discovery.current().mandates.some((m) => m.name === WRONG_PW)).toBe(true);
  });
});
