/**
 * `backer config schema`: the JSON Schema of backer.yml generated from the zod schemas, checked
 * with a real validator (ajv) against the README's example, against configs with mistakes
 * (which the config loader refuses too), and as printed by the CLI process.
 */
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import ajvFormats from 'ajv-formats';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { configJsonSchema } from '../../src/config/json-schema.js';
import { sourceOptionKeys } from '../../src/cli/commands/config-schema.js';
import { sources } from '../../src/sources/index.js';
import { parseConfigText } from '../../src/config/load.js';
import { middlewareSchema } from '../../src/config/schema.js';
import { cli } from '../helpers/cli.js';
import { configExample } from '../helpers/readme.js';

// ajv-formats is CommonJS with `exports.default`: under NodeNext its function is `.default`.
const addFormats = ajvFormats.default;
const env = { S3_KEY: 'k', S3_SECRET: 's', CCRYPT_KEY: 'c', GPG_PASSPHRASE: 'g', HOME: '/root', LEVEL: '5' };

function compile(schema: object): ValidateFunction {
  const ajv = new Ajv({ allErrors: true, strict: true });
  addFormats(ajv);
  return ajv.compile(schema);
}

const full = configJsonSchema(sourceOptionKeys());
const validate = compile(full);

function errorsOf(yaml: string): ErrorObject[] {
  return validate(parseYaml(yaml) ?? {}) ? [] : (validate.errors ?? []);
}

const TARGET = 'targets:\n  - name: local\n    type: local\n    path: /srv/backups\n';

describe('backer config schema', () => {
  it("accepts the README's config example", () => {
    expect(errorsOf(configExample())).toEqual([]);
  });

  it('accepts an empty file, ${VAR} where a number is wanted, and nested static mandates', () => {
    expect(errorsOf('')).toEqual([]);
    expect(errorsOf(`queue:\n  concurrency: \${CONCURRENCY:-2}\n${TARGET}middleware:\n  - name: z\n    type: zstd\n    level: \${LEVEL}\n`)).toEqual([]);
    const mandate = `${TARGET}mandates:\n  m:\n    type: mysql\n    retention: 7\n    target: [local]\n    mysql:\n      options:\n        single-transaction: true\n`;
    expect(errorsOf(mandate)).toEqual([]);
  });

  const invalid: [string, string, string][] = [
    ['an unknown top-level key', 'colour: red\n', ''],
    ['an unknown key in log', 'log:\n  colour: red\n', '/log'],
    ['a wrong type in queue', 'queue:\n  concurrency: two\n', '/queue/concurrency'],
    ['a number below the minimum', 'queue:\n  concurrency: 0\n', '/queue/concurrency'],
    ['an unknown log level', 'log:\n  level: loud\n', '/log/level'],
    ['a target without its path', 'targets:\n  - name: local\n    type: local\n', '/targets/0'],
    ['an unknown key in a target', `${TARGET}    colour: red\n`, '/targets/0'],
    ['a mode written as a YAML number', `${TARGET}    file_mode: 640\n`, '/targets/0/file_mode'],
    ['a gzip level out of range', 'middleware:\n  - name: gz\n    type: gzip\n    level: 12\n', '/middleware/0/level'],
    ['an unknown middleware type', 'middleware:\n  - name: x\n    type: rot13\n', '/middleware/0/type'],
    ['an age passphrase', 'middleware:\n  - name: a\n    type: age\n    recipients: [age1x]\n    passphrase: p\n', '/middleware/0/passphrase'],
    ['a null in a static mandate', 'mandates:\n  m:\n    type: files\n    files:\n      path:\n', '/mandates/m/files/path'],
    ['a mapping in a list of a static mandate', 'mandates:\n  m:\n    target:\n      - a: b\n', '/mandates/m/target/0'],
    ['a bad mandate name', 'mandates:\n  "-m":\n    type: files\n', '/mandates'],
    ['a verify interval that is no 5- or 6-field cron', 'verify:\n  interval: "@daily"\n', '/verify/interval'],
    ['an unknown verify level', 'verify:\n  level: full\n', '/verify/level'],
    ['an unknown key in verify', 'verify:\n  every: "0 5 * * *"\n', '/verify'],
    ['an unknown source option in a static mandate', 'mandates:\n  m:\n    type: sqlite\n    container: app\n    sqlite:\n      path: /data/app.db\n      colour: red\n', '/mandates/m/sqlite'],
    ['an unknown source type in a static mandate', 'mandates:\n  m:\n    type: oracle\n    container: app\n', '/mandates/m/type'],
  ];

  it.each(invalid)('refuses %s, at its path, as the config loader does', (_label, yaml, path) => {
    const errors = errorsOf(yaml);
    expect(errors.length).toBeGreaterThan(0);
    expect(errors.map((e) => e.instancePath)).toContain(path);
    expect(parseConfigText(yaml, 'backer.yml', env, '/etc/backer').problems).not.toEqual([]);
  });

  it("describes each source's options from the schema the mandate parser reads them with", () => {
    const mandate = (full as { properties: { mandates: { additionalProperties: { properties: Record<string, { properties?: Record<string, unknown> }> } } } }).properties.mandates
      .additionalProperties;
    for (const [type, definition] of sources) {
      if (!definition.options) continue;
      expect(Object.keys(mandate.properties[type]?.properties ?? {}).filter((k) => k !== 'options').sort(), type).toEqual([...definition.options.keys].sort());
    }
  });

  it('is generated from the schemas: every middleware type is in it', () => {
    // A discriminated union: exactly one member matches (oneOf).
    const items = (configJsonSchema() as { properties: { middleware: { items: { oneOf: { properties: { type: { const: string } } }[] } } } }).properties.middleware.items;
    const types = items.oneOf.map((m) => m.properties.type.const);
    expect(types).toEqual(middlewareSchema.options.map((m) => m.shape.type.value));
  });

  it('is printed by the CLI as JSON, exit 0', async () => {
    const result = await cli(['config', 'schema']);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const printed = JSON.parse(result.stdout) as object;
    expect(printed).toEqual(full);
    expect(compile(printed)(parseYaml(configExample()))).toBe(true);
  });
});
