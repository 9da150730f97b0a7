import { describe, expect, it } from 'vitest';
import { isBackerError } from '../../src/errors.js';
import { parseRef, resolveRef } from '../../src/config/refs.js';
import { checkRefs } from '../../src/mandates/refs.js';

const origin = { container: 'shop-db', describe: (key: string) => `container shop-db label backer.${key}` };
const context = {
  env: { MYSQL_ROOT_PASSWORD: 's3cret', EMPTY: '' },
  readFile: (path: string) =>
    path === '/run/secrets/db' ? Promise.resolve('from-file\n') : Promise.reject(new Error(`ENOENT: no such file ${path}`)),
};

describe('parseRef', () => {
  it('tells the kinds apart by their prefix', () => {
    expect(parseRef('Text:Env:not-a-ref')).toEqual({ kind: 'text', value: 'Env:not-a-ref' });
    expect(parseRef('Env:MYSQL_ROOT_PASSWORD')).toEqual({ kind: 'env', name: 'MYSQL_ROOT_PASSWORD' });
    expect(parseRef('File:/run/secrets/db')).toEqual({ kind: 'file', path: '/run/secrets/db' });
    expect(parseRef('root')).toEqual({ kind: 'literal', value: 'root' });
    expect(parseRef('env:lowercase-is-literal')).toEqual({ kind: 'literal', value: 'env:lowercase-is-literal' });
  });
});

describe('resolveRef', () => {
  it('resolves literals, environment variables and files', async () => {
    expect(await resolveRef(parseRef('root'), context)).toBe('root');
    expect(await resolveRef(parseRef('Text:a:b'), context)).toBe('a:b');
    expect(await resolveRef(parseRef('Env:MYSQL_ROOT_PASSWORD'), context)).toBe('s3cret');
    expect(await resolveRef(parseRef('Env:EMPTY'), context)).toBe('');
    // one trailing newline is trimmed, nothing else
    expect(await resolveRef(parseRef('File:/run/secrets/db'), context)).toBe('from-file');
    expect(await resolveRef(parseRef('File:/x'), { ...context, readFile: () => Promise.resolve(' two\n\n') })).toBe(' two\n');
  });

  it('names a missing variable but never a value', async () => {
    const err: unknown = await resolveRef(parseRef('Env:MISSING'), context).catch((e: unknown) => e);
    expect(isBackerError(err, 'SECRET_UNRESOLVED')).toBe(true);
    expect((err as Error).message).toBe('environment variable MISSING is not set in the container');
    expect(JSON.stringify(err)).not.toContain('s3cret');
  });

  it('wraps a file that cannot be read', async () => {
    const err: unknown = await resolveRef(parseRef('File:/run/secrets/nope'), context).catch((e: unknown) => e);
    expect(isBackerError(err, 'SECRET_UNRESOLVED')).toBe(true);
    expect((err as Error).message).toBe('cannot read /run/secrets/nope in the container');
    expect((err as Error).cause).toBeInstanceOf(Error);
  });
});

describe('checkRefs', () => {
  const raw = { 'mysql.user': 'Text:root', 'mysql.password': 'Env:MYSQL_PWD', 'mysql.key': 'File:key.pem', 'mysql.host': 'Env:' };

  it('reports malformed refs and variables missing from the container', () => {
    expect(checkRefs(raw, { OTHER: 'x' }, origin)).toEqual([
      { where: 'container shop-db label backer.mysql.password', message: 'environment variable MYSQL_PWD (from Env:MYSQL_PWD) is not set in container shop-db' },
      { where: 'container shop-db label backer.mysql.key', message: 'expected File:/absolute/path, received "File:key.pem"' },
      { where: 'container shop-db label backer.mysql.host', message: 'expected Env:NAME with a variable name of letters, digits and "_", received "Env:"' },
    ]);
  });

  it('checks only the syntax when the environment is unknown', () => {
    expect(checkRefs(raw, undefined, origin).map((p) => p.where)).toEqual([
      'container shop-db label backer.mysql.key',
      'container shop-db label backer.mysql.host',
    ]);
  });
});
