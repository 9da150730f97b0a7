/**
 * The postgres options are one schema: every problem is reported at once, each at its label, the
 * cross-field rules (custom format) and the `options.*` pass-through included.
 */
import { describe, expect, it } from 'vitest';
import { BackerError } from '../../src/errors.js';
import { postgresSource } from '../../src/sources/postgres.js';
import type { OptionOrigin } from '../../src/sources/types.js';

const origin: OptionOrigin = { container: 'opts-pg', describe: (key) => `backer.yml: mandates.opts-pg.postgres.${key}` };
const where = (key: string): string => origin.describe(key);

function problems(raw: Record<string, string>): unknown {
  try {
    postgresSource.parse(raw, origin);
  } catch (err) {
    expect(err).toBeInstanceOf(BackerError);
    expect((err as BackerError).code).toBe('LABEL_INVALID');
    return (err as BackerError).details.problems;
  }
  throw new Error(`accepted ${JSON.stringify(raw)}`);
}

describe('postgres options schema', () => {
  it('reports two bad options together, each at its label', () => {
    expect(problems({ exec_user: 'root; rm', socket_dir: 'tmp' })).toEqual([
      { where: where('exec_user'), message: 'expected a user name or id, optionally with :group, received "root; rm"' },
      { where: where('socket_dir'), message: 'expected the absolute path of the directory of the server\'s unix socket, received "tmp"' },
    ]);
  });

  it('reports the custom-format rules next to bad values and refused pass-through options', () => {
    expect(problems({ format: 'custom', globals: 'true', database: 'a,b', host: 'db', 'options.fil': 'x', 'options.jobs': '4', 'options.compress': '9' })).toEqual([
      { where: where('host'), message: expect.stringMatching(/^unknown postgres option; known: user, password, .*, options\.<pg_dump option>$/) as unknown },
      { where: where('globals'), message: expect.stringMatching(/^globals are SQL and cannot go into a custom-format archive/) as unknown },
      { where: where('database'), message: expect.stringMatching(/^format custom holds exactly one database/) as unknown },
      { where: where('options.fil'), message: '--fil abbreviates --file, which is managed by Backer and cannot be set' },
      { where: where('options.jobs'), message: expect.stringMatching(/^--jobs is managed by Backer/) as unknown },
    ]);
  });

  it('checks only what every format refuses when the format is not valid', () => {
    expect(problems({ format: 'directory', globals: 'maybe', 'options.compress': '9', 'options.fil': 'x' })).toEqual([
      { where: where('format'), message: 'expected plain or custom, received "directory"' },
      { where: where('globals'), message: 'expected true or false (also yes/no, on/off, 1/0), received "maybe"' },
      { where: where('options.fil'), message: '--fil abbreviates --file, which is managed by Backer and cannot be set' },
    ]);
  });

  it('reads a valid custom mandate', () => {
    expect(postgresSource.parse({ format: ' custom ', database: 'shop', exec_user: 'postgres', socket_dir: ' /tmp ', 'options.compress': '0', 'options.if_exists': 'true' }, origin)).toEqual({
      user: { kind: 'text', value: 'postgres' },
      password: null,
      database: { kind: 'literal', value: 'shop' },
      format: 'custom',
      globals: false,
      execUser: 'postgres',
      socketDir: '/tmp',
      options: new Map<string, string | boolean>([['compress', '0'], ['if-exists', true]]),
    });
  });
});
