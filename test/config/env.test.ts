import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseConfigText } from '../../src/config/load.js';
import { parseStaticMandates } from '../../src/mandates/parse.js';
import { sources } from '../../src/sources/index.js';
import { cli } from '../helpers/cli.js';

// A `${VAR}` value keeps its string type where the schema takes a string (a key of digits stays a
// key), and no config problem prints a value that came from the environment: it names the variable.

const DIGITS = '8675309123';
const parse = (text: string, env: Record<string, string>) => parseConfigText(text, 'backer.yml', env, '/etc/backer');
const TARGET = 'targets:\n  - name: local\n    type: local\n    path: /b\n';

describe('${VAR} values keep their type', () => {
  it('an all-digit secret stays a string where a string is wanted', () => {
    const { config, problems } = parse(`${TARGET}middleware:\n  - name: enc\n    type: ccrypt\n    key: \${KEY}\n`, { KEY: DIGITS });
    expect(problems).toEqual([]);
    expect(config.middleware[0]).toMatchObject({ type: 'ccrypt', key: DIGITS });
  });

  it('numbers and booleans still come from the environment where the schema wants them', () => {
    const text = `queue:\n  concurrency: \${N}\ntargets:\n  - name: s3\n    type: s3\n    bucket: bkt\n    force_path_style: \${FPS}\n    part_size_mb: \${PS:-8}\n`;
    const { config, problems } = parse(text, { N: '3', FPS: 'true' });
    expect(problems).toEqual([]);
    expect(config.queue.concurrency).toBe(3);
    expect(config.targets[0]).toMatchObject({ force_path_style: true, part_size_mb: 8 });
  });

  it('a static mandate keeps the exact text (leading zeros, fractions)', () => {
    const text = `${TARGET}mandates:\n  m:\n    type: files\n    retention: \${KEEP}\n    files:\n      path: /srv/\${SUB}\n      exclude: \${EX}\n`;
    const { config, problems } = parse(text, { KEEP: '007', SUB: '0123', EX: '1.50' });
    expect(problems).toEqual([]);
    expect(config.mandates.m).toMatchObject({ retention: '007', 'files.path': '/srv/0123', 'files.exclude': '1.50' });
  });
});

describe('config problems never print an expanded value', () => {
  it('names the variable instead of the value in schema problems, also for long values and inside unions', () => {
    const long = `secret-${'x'.repeat(80)}`;
    const text = `queue:\n  concurrency: \${CONC}\n${TARGET}middleware:\n  - name: z\n    type: zstd\n    level: \${LEVEL}\n  - name: g\n    type: gzip\n    level: "\${QUOTED}"\n`;
    const { problems } = parse(text, { CONC: long, LEVEL: 'lvl-8675309123', QUOTED: '4' });
    expect(problems).toEqual([
      { where: 'backer.yml: queue.concurrency', message: 'expected a number, received the value of ${CONC}' },
      { where: 'backer.yml: middleware[0].level', message: 'expected a number, received the value of ${LEVEL}' },
      { where: 'backer.yml: middleware[1].level', message: 'expected a number, received the value of ${QUOTED}' },
    ]);
  });

  it('conceals values in cross-entry rules and in the static mandates parsed later', () => {
    const text = `${TARGET}  - name: \${DUP}\n    type: local\n    path: /c\nmandates:\n  m:\n    type: files\n    target: \${WRONG}\n    retention: \${KEEP}\n    files:\n      path: pre-\${P}\n`;
    const env = { DUP: 'local', WRONG: 'missing-target-name', KEEP: 'keep-8675309123', P: DIGITS };
    const loaded = parse(text, env);
    expect(loaded.problems).toEqual(
      expect.arrayContaining([
        { where: 'backer.yml: targets[1].name', message: 'duplicate name the value of ${DUP}: targets[0] has it too' },
        { where: 'backer.yml: mandates.m.target', message: expect.stringMatching(/^unknown target the value of \$\{WRONG\}/) as string },
      ]),
    );
    const { problems } = parseStaticMandates(loaded.config, sources, 'backer.yml');
    expect(problems).toContainEqual({
      where: 'backer.yml: mandates.m.retention',
      message: 'expected a whole number of backups to keep, at least 1, received the value of ${KEEP}',
    });
    expect(problems).toContainEqual({ where: 'backer.yml: mandates.m.files.path', message: 'expected an absolute path, got the value of ${P}' });
    const all = JSON.stringify([...loaded.problems, ...problems]);
    for (const value of Object.values(env).filter((v) => v !== 'local')) expect(all).not.toContain(value);
  });

  it('backer config check and backer daemon print the variable, never its value', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'cfgenv-'));
    const file = join(dir, 'backer.yml');
    await writeFile(
      file,
      `data_dir: ${dir}/data\ndocker:\n  enabled: false\n${TARGET}middleware:\n  - name: enc\n    type: ccrypt\n    key: \${CFGENV_KEY}\n  - name: z\n    type: zstd\n    level: \${CFGENV_LEVEL}\n`,
    );
    const env = { CFGENV_KEY: DIGITS, CFGENV_LEVEL: '5551234567' + 'x' };
    const human = await cli(['config', 'check', '--config', file], env);
    expect(human.code).toBe(1);
    expect(human.stdout).toContain(`${file}: middleware[1].level: expected a number, received the value of \${CFGENV_LEVEL}`);
    expect(human.stdout).not.toContain('middleware[0]');
    const json = await cli(['config', 'check', '--json', '--config', file], env);
    expect(JSON.parse(json.stdout)).toMatchObject({ ok: false, problems: [{ where: `${file}: middleware[1].level`, message: 'expected a number, received the value of ${CFGENV_LEVEL}' }] });
    const daemon = await cli(['daemon', '--config', file], env);
    expect(daemon.code).toBe(2);
    expect(daemon.stderr).toContain('the value of ${CFGENV_LEVEL}');
    for (const r of [human, json, daemon]) {
      expect(r.stdout + r.stderr).not.toContain(DIGITS);
      expect(r.stdout + r.stderr).not.toContain(env.CFGENV_LEVEL);
    }
    const fixed = await cli(['config', 'check', '--config', file], { ...env, CFGENV_LEVEL: '3' });
    expect(fixed.stdout).toMatch(/OK/);
    expect(fixed.code).toBe(0);
  });
});
