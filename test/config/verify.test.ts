/**
 * Scheduled verification keys: `backer.verify` / `backer.verify_level` on labels, `verify` /
 * `verify_level` on static mandates, and the config's `verify` default for every mandate.
 * Every bad value is reported at the label or config path where it was written.
 */
import { describe, expect, it } from 'vitest';
import { configJsonSchema } from '../../src/config/json-schema.js';
import { parseConfigText } from '../../src/config/load.js';
import { labelsToRaw, parseMandate, parseStaticMandates } from '../../src/mandates/parse.js';
import { sources } from '../../src/sources/index.js';

const TARGET = 'targets: [{ name: local, type: local, path: /b }]\n';
const load = (text: string) => parseConfigText(`${TARGET}${text}`, 'backer.yml', {}, '/etc/backer');

function fromLabels(labels: Record<string, string>, configText = '') {
  const { config, problems } = load(configText);
  expect(problems).toEqual([]);
  return parseMandate({
    name: 'shop-db',
    raw: labelsToRaw({ 'backer.type': 'redis', ...labels }),
    origin: 'labels',
    container: 'shop-db',
    describe: (key) => `container shop-db label backer.${key}`,
    config,
    sources,
  });
}

const CRON_5_OR_6 = 'expected a cron expression of 5 fields (minute hour day month weekday) or 6 (seconds first)';

describe('scheduled verification on labels', () => {
  it('has none by default, at level decode', () => {
    expect(fromLabels({}).mandate?.verify).toEqual({ interval: null, level: 'decode' });
    expect(fromLabels({ 'backer.verify_level': 'size' }).mandate?.verify).toEqual({ interval: null, level: 'size' });
  });

  it('reads a 5- or 6-field cron and every level', () => {
    expect(fromLabels({ 'backer.verify': ' 0 5 * * 0 ' }).mandate?.verify).toEqual({ interval: '0 5 * * 0', level: 'decode' });
    for (const level of ['size', 'hash', 'decode', 'drill']) {
      expect(fromLabels({ 'backer.verify': '*/5 * * * * *', 'backer.verify_level': level }).mandate?.verify).toEqual({ interval: '*/5 * * * * *', level });
    }
  });

  it("takes the config's default, which a label overrides or switches off", () => {
    const config = 'verify: { interval: "0 5 * * 0", level: hash }\n';
    expect(fromLabels({}, config).mandate?.verify).toEqual({ interval: '0 5 * * 0', level: 'hash' });
    expect(fromLabels({ 'backer.verify': '0 6 * * *' }, config).mandate?.verify).toEqual({ interval: '0 6 * * *', level: 'hash' });
    expect(fromLabels({ 'backer.verify_level': 'drill' }, config).mandate?.verify).toEqual({ interval: '0 5 * * 0', level: 'drill' });
    expect(fromLabels({ 'backer.verify': 'off' }, config).mandate?.verify).toEqual({ interval: null, level: 'hash' });
    expect(fromLabels({ 'backer.verify': 'False' }, config).mandate?.verify).toEqual({ interval: null, level: 'hash' });
  });

  it('reports bad values at their label, each with what was expected', () => {
    const { mandate, problems } = fromLabels({ 'backer.verify': 'daily', 'backer.verify_level': 'full' });
    expect(mandate).toBeUndefined();
    expect(problems).toEqual([
      { where: 'container shop-db label backer.verify', message: `${CRON_5_OR_6}, received "daily"; or off for no scheduled verification` },
      { where: 'container shop-db label backer.verify_level', message: 'expected one of size, hash, decode, drill, received "full"' },
    ]);
    expect(fromLabels({ 'backer.verify': '0 25 * * *' }).problems).toEqual([
      { where: 'container shop-db label backer.verify', message: 'invalid cron expression "0 25 * * *": Invalid value for hour: 25; or off for no scheduled verification' },
    ]);
    expect(fromLabels({ 'backer.verify': '0 0 31 2 *' }).problems).toEqual([
      { where: 'container shop-db label backer.verify', message: '"0 0 31 2 *" never fires; or off for no scheduled verification' },
    ]);
    expect(fromLabels({ 'backer.verify': 'yes' }).problems.map((p) => p.where)).toEqual(['container shop-db label backer.verify']);
  });

  it('suggests backer.verify for a misspelled label', () => {
    expect(fromLabels({ 'backer.verfy': '0 5 * * *' }).problems).toEqual([
      {
        where: 'container shop-db label backer.verfy',
        message: expect.stringMatching(/^unknown label backer\.verfy \(did you mean backer\.verify\?\); known: .*backer\.verify, backer\.verify_level, backer\.max_age, backer\.min_size, backer\.size_change_alert, backer\.redis\.\*$/) as unknown,
      },
    ]);
  });
});

describe('scheduled verification on static mandates', () => {
  const mandates = (text: string) => {
    const loaded = load(`verify: { level: size }\nmandates:\n${text}`);
    expect(loaded.problems).toEqual([]);
    return parseStaticMandates(loaded.config, sources, 'backer.yml');
  };

  it('reads verify and verify_level, and the config default for the rest', () => {
    const { mandates: parsed, problems } = mandates(
      '  a: { type: files, files: { path: /srv/a }, verify: "*/5 * * * * *", verify_level: drill }\n  b: { type: files, files: { path: /srv/b } }\n  c: { type: files, files: { path: /srv/c }, verify: false }\n',
    );
    expect(problems).toEqual([]);
    expect(parsed.map((m) => [m.name, m.verify])).toEqual([
      ['a', { interval: '*/5 * * * * *', level: 'drill' }],
      ['b', { interval: null, level: 'size' }],
      ['c', { interval: null, level: 'size' }],
    ]);
  });

  it('reports bad values at their config path', () => {
    const { mandates: parsed, problems } = mandates('  a: { type: files, files: { path: /srv/a }, verify: "every day", verify_level: 3 }\n');
    expect(parsed).toEqual([]);
    expect(problems).toEqual([
      { where: 'backer.yml: mandates.a.verify', message: `${CRON_5_OR_6}, received "every day"; or off for no scheduled verification` },
      { where: 'backer.yml: mandates.a.verify_level', message: 'expected one of size, hash, decode, drill, received "3"' },
    ]);
  });
});

describe('the config default (verify)', () => {
  it('is no schedule at level decode when absent', () => {
    expect(load('').config.verify).toEqual({ level: 'decode' });
  });

  it('reports a bad interval, level or key at its path, and keeps the rest of the config', () => {
    const { config, problems } = load('verify: { interval: "0 0 * *", level: full }\nqueue: { concurrency: 3 }\n');
    expect(problems.map((p) => p.where)).toEqual(['backer.yml: verify.interval', 'backer.yml: verify.level']);
    expect(problems[0]?.message).toBe(`${CRON_5_OR_6}, received "0 0 * *"`);
    expect(problems[1]?.message).toBe('expected one of "size", "hash", "decode", "drill", received "full"');
    expect(config.verify).toEqual({ level: 'decode' });
    expect(config.queue.concurrency).toBe(3);
    expect(load('verify: { every: "0 5 * * *" }\n').problems).toEqual([{ where: 'backer.yml: verify.every', message: 'unknown key every; known keys: interval, level' }]);
  });

  it('is described in the JSON Schema', () => {
    const properties = configJsonSchema().properties as Record<string, { properties?: Record<string, unknown>; additionalProperties?: unknown }>;
    expect(properties.verify?.additionalProperties).toBe(false);
    expect(properties.verify?.properties).toMatchObject({ interval: { type: 'string', pattern: expect.any(String) as unknown }, level: { enum: ['size', 'hash', 'decode', 'drill'], default: 'decode' } });
  });
});
