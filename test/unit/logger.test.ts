import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger, SecretRegistry, type Logger } from '../../src/logging/logger.js';

const SECRET = 's3cr3t-Pa55"word\\x';

/** A destination that keeps every line pino writes, parsed, plus the raw text. */
function capture(): { destination: Writable; lines: () => Record<string, unknown>[]; raw: () => string } {
  let text = '';
  const destination = new Writable({
    write(chunk: Buffer | string, _enc, callback) {
      text += chunk.toString();
      callback();
    },
  });
  return {
    destination,
    raw: () => text,
    lines: () =>
      text
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

/** Log lines pass through a Writable before reaching the destination: let them arrive. */
const flushed = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

function setup(level?: string): { logger: Logger; secrets: SecretRegistry; out: ReturnType<typeof capture> } {
  const secrets = new SecretRegistry();
  const out = capture();
  const logger = createLogger({ secrets, destination: out.destination, ...(level === undefined ? {} : { level }) });
  return { logger, secrets, out };
}

describe('createLogger', () => {
  it('writes one JSON line per entry, with name and ISO time', async () => {
    const { logger, out } = setup();
    logger.info({ mandate: 'shop-db' }, 'backup started');
    logger.debug('not at info level');
    await flushed();
    const lines = out.lines();
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ level: 30, name: 'backer', mandate: 'shop-db', msg: 'backup started' });
    expect(String(lines[0]?.time)).toMatch(/^\d{4}-\d\d-\d\dT/);
  });

  it('scrubs a registered secret from the message and from nested fields', async () => {
    const { logger, secrets, out } = setup();
    secrets.add(SECRET);
    logger.error(
      { job: 'j1', err: `mysqldump said: bad pass ${SECRET}`, details: { cmd: ['mysqldump', `-p${SECRET}`], deeper: { note: SECRET } } },
      `failed with ${SECRET} twice: ${SECRET}`,
    );
    const child = logger.child({ context: `child of ${SECRET}` });
    child.warn('from a child');
    await flushed();
    expect(out.raw()).not.toContain('s3cr3t');
    const [first, second] = out.lines();
    expect(first).toMatchObject({
      job: 'j1',
      msg: 'failed with [REDACTED] twice: [REDACTED]',
      err: 'mysqldump said: bad pass [REDACTED]',
      details: { cmd: ['mysqldump', '-p[REDACTED]'], deeper: { note: '[REDACTED]' } },
    });
    expect(second).toMatchObject({ context: 'child of [REDACTED]', msg: 'from a child' });
  });

  it('scrubs secrets registered after the logger was created, and ignores very short ones', async () => {
    const { logger, secrets, out } = setup();
    logger.info('before: late-secret-value');
    secrets.add('late-secret-value');
    secrets.add('ab');
    logger.info('after: late-secret-value, about a cab');
    await flushed();
    expect(out.lines().map((l) => l.msg)).toEqual(['before: late-secret-value', 'after: [REDACTED], about a cab']);
  });

  it('redacts password and secret_access_key keys, at the top level and one level down', async () => {
    const { logger, out } = setup();
    logger.info(
      {
        password: 'top-pw',
        secret_access_key: 'top-sak',
        target: { name: 's3', secret_access_key: 'nested-sak', bucket: 'b' },
        source: { user: 'root', password: 'nested-pw' },
      },
      'config',
    );
    await flushed();
    expect(out.raw()).not.toMatch(/top-pw|top-sak|nested-sak|nested-pw/);
    expect(out.lines()[0]).toMatchObject({
      password: '[REDACTED]',
      secret_access_key: '[REDACTED]',
      target: { name: 's3', secret_access_key: '[REDACTED]', bucket: 'b' },
      source: { user: 'root', password: '[REDACTED]' },
    });
  });

  it('honours the level option', async () => {
    const { logger, out } = setup('warn');
    logger.info('quiet');
    logger.warn('loud');
    await flushed();
    expect(out.lines().map((l) => l.msg)).toEqual(['loud']);
  });
});

describe('SecretRegistry', () => {
  it('replaces every occurrence, also in JSON-escaped form', () => {
    const secrets = new SecretRegistry();
    secrets.add(SECRET);
    expect(secrets.scrub(`a ${SECRET} b ${SECRET}`)).toBe('a [REDACTED] b [REDACTED]');
    expect(secrets.scrub(JSON.stringify({ m: `x${SECRET}y` }))).toBe('{"m":"x[REDACTED]y"}');
    expect(secrets.scrub('nothing to hide')).toBe('nothing to hide');
  });
});
