/**
 * The mysql options are one schema: every problem is reported at once, each at its label, the
 * cross-field rule and the `options.*` pass-through included.
 */
import { describe, expect, it } from 'vitest';
import { parseConfigText } from '../../src/config/load.js';
import { BackerError } from '../../src/errors.js';
import { labelsToRaw, parseMandate } from '../../src/mandates/parse.js';
import { sources } from '../../src/sources/index.js';
import { mysqlSource } from '../../src/sources/mysql.js';
import type { OptionOrigin } from '../../src/sources/types.js';

const origin: OptionOrigin = { container: 'opts-mysql', describe: (key) => `container opts-mysql label backer.mysql.${key}` };

function failure(raw: Record<string, string>): BackerError {
  try {
    mysqlSource.parse(raw, origin);
  } catch (err) {
    expect(err).toBeInstanceOf(BackerError);
    return err as BackerError;
  }
  throw new Error(`accepted ${JSON.stringify(raw)}`);
}

describe('mysql options schema', () => {
  it('reports two bad options together, each at its label', () => {
    const err = failure({ database: 'bad name', ignore_data: 'a b' });
    expect(err.code).toBe('LABEL_INVALID');
    expect(err.message).toBe('container opts-mysql label backer.mysql.database: "bad name" is not a valid database name');
    expect(err.details.problems).toEqual([
      { where: 'container opts-mysql label backer.mysql.database', message: '"bad name" is not a valid database name' },
      { where: 'container opts-mysql label backer.mysql.ignore_data', message: '"a b" is not a valid name (expected ^[A-Za-z0-9_$-]+(\\.[A-Za-z0-9_$-]+)?$)' },
    ]);
  });

  it('reports a bad value, the include_tables rule and refused pass-through options at once', () => {
    const err = failure({ user: 'root', ignore_tables: 'x;y', include_tables: 'orders', 'options.result-file': '/tmp/x', 'options.a b': '1', 'options.where': 'a\nb' });
    expect(err.details.problems).toEqual([
      { where: 'container opts-mysql label backer.mysql.ignore_tables', message: expect.stringMatching(/^"x;y" is not a valid name/) as unknown },
      { where: 'container opts-mysql label backer.mysql.include_tables', message: 'include_tables needs exactly one database in backer.mysql.database' },
      { where: 'container opts-mysql label backer.mysql.options.result-file', message: expect.stringMatching(/^--result-file is managed by Backer/) as unknown },
      { where: 'container opts-mysql label backer.mysql.options.a b', message: '"a b" is not a valid long option name (letters, digits, "-" and "_")' },
      { where: 'container opts-mysql label backer.mysql.options.where', message: 'option values may not contain control characters such as newlines' },
    ]);
  });

  it('keeps its defaults and reads pass-through options', () => {
    expect(mysqlSource.parse({ database: 'shop', include_tables: 'orders, items', 'options.single_transaction': 'false', 'options.where': 'id>1' }, origin)).toEqual({
      user: { kind: 'text', value: 'root' },
      password: null,
      database: { kind: 'literal', value: 'shop' },
      ignoreTables: [],
      includeTables: ['orders', 'items'],
      ignoreData: [],
      options: new Map<string, string | boolean>([['single-transaction', false], ['where', 'id>1']]),
    });
  });

  it('reaches the mandate parser with every problem at its label, next to the mandate keys', () => {
    const { config } = parseConfigText('targets:\n  - { name: local, type: local, path: /b }\n', 'backer.yml', {}, '/etc/backer');
    const { mandate, problems } = parseMandate({
      name: 'opts-mysql',
      raw: labelsToRaw({ 'backer.type': 'mysql', 'backer.retention': '0', 'backer.mysql.database': '*', 'backer.mysql.include_tables': 'orders', 'backer.mysql.options.xml': 'true', 'backer.mysql.host': 'db' }),
      origin: 'labels',
      container: 'opts-mysql',
      describe: (key) => `container opts-mysql label backer.${key}`,
      config,
      sources,
    });
    expect(mandate).toBeUndefined();
    expect(problems.map((p) => p.where)).toEqual([
      'container opts-mysql label backer.retention',
      'container opts-mysql label backer.mysql.host',
      'container opts-mysql label backer.mysql.include_tables',
      'container opts-mysql label backer.mysql.options.xml',
    ]);
  });
});
