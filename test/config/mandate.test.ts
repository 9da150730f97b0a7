import { describe, expect, it } from 'vitest';
import { BackerError } from '../../src/errors.js';
import { parseConfigText } from '../../src/config/load.js';
import { checkCron, labelsToRaw, parseMandate, parseStaticMandates, type ParseMandateInput } from '../../src/mandates/parse.js';
import type { BackerConfig } from '../../src/config/schema.js';
import { sources as realSources } from '../../src/sources/index.js';
import type { SourceRegistry } from '../../src/sources/registry.js';
import type { OptionOrigin, SourceDefinition } from '../../src/sources/types.js';

interface FakeOptions {
  path: string;
}

/** A source whose only option `fake.path` is required, to see option errors flow through. */
const fake: SourceDefinition<FakeOptions> = {
  type: 'fake',
  needsContainer: true,
  parse(raw: Record<string, string>, origin: OptionOrigin): FakeOptions {
    const path = raw.path;
    if (path === undefined) {
      throw new BackerError('LABEL_INVALID', 'required: the path to dump', { component: 'source:fake', details: { key: 'path' } });
    }
    for (const key of Object.keys(raw)) {
      if (key !== 'path') {
        throw new BackerError('LABEL_INVALID', `${origin.describe(key)}: unknown option`, { component: 'source:fake', details: { where: origin.describe(key) } });
      }
    }
    return { path };
  },
  dump() {
    return Promise.reject(new Error('not used'));
  },
};
const files: SourceDefinition<unknown> = { ...fake, type: 'files', needsContainer: false, parse: () => ({}) };
const sources: SourceRegistry = new Map<string, SourceDefinition<unknown>>([
  ['fake', fake],
  ['files', files],
]);

const configText = `
targets:
  - { name: s3, type: s3, bucket: backups, default: true }
  - { name: local, type: local, path: /b }
middleware: [{ name: gz, type: gzip }, { name: enc, type: ccrypt, key: k }]
`;
const { config } = parseConfigText(configText, 'backer.yml', {}, '/etc/backer');

function fromLabels(labels: Record<string, string>, extra: Partial<ParseMandateInput> = {}) {
  return parseMandate({
    name: 'shop-db',
    raw: labelsToRaw(labels),
    origin: 'labels',
    container: 'shop-db',
    describe: (key) => `container shop-db label backer.${key}`,
    config,
    sources,
    ...extra,
  });
}

describe('labelsToRaw', () => {
  it('keeps backer.* labels without the prefix', () => {
    expect(labelsToRaw({ 'backer.type': 'fake', 'backer.fake.path': '/x', 'com.docker.compose.project': 'shop', backer: 'x' })).toEqual({
      type: 'fake',
      'fake.path': '/x',
    });
  });
});

describe('parseMandate', () => {
  it('builds a mandate with defaults', () => {
    expect(fromLabels({ 'backer.type': 'fake', 'backer.fake.path': '/data' })).toEqual({
      problems: [],
      mandate: {
        name: 'shop-db',
        origin: 'labels',
        source: { type: 'fake', container: 'shop-db', options: { path: '/data' } },
        interval: '0 0 * * *',
        targets: ['s3'],
        middleware: [],
        retention: 10,
        priority: 5,
        name_pattern: '<DATE>-<CONTAINER_NAME>',
        verify: { interval: null, level: 'decode' },
        alerts: { max_age_ms: null, min_size_bytes: null, size_change_percent: null },
        describe: expect.any(Function) as unknown,
        settings_sources: expect.objectContaining({ type: { from: 'label', label: 'backer.type' }, interval: { from: 'default' } }) as unknown,
      },
    });
  });

  it('reads every mandate key', () => {
    const { mandate, problems } = fromLabels({
      'backer.type': 'fake',
      'backer.enabled': 'true',
      'backer.interval': '30 0 3 * * *',
      'backer.target': 'local, s3',
      'backer.middleware': 'gz,enc',
      'backer.retention': '3',
      'backer.name_pattern': 'shop_<DATE>_<UUID>',
      'backer.verify': '*/5 * * * * *',
      'backer.verify_level': 'hash',
      'backer.fake.path': '/data',
    });
    expect(problems).toEqual([]);
    expect(mandate).toMatchObject({
      interval: '30 0 3 * * *',
      targets: ['local', 's3'],
      middleware: ['gz', 'enc'],
      retention: 3,
      name_pattern: 'shop_<DATE>_<UUID>',
      verify: { interval: '*/5 * * * * *', level: 'hash' },
    });
  });

  it('skips a disabled mandate without judging it', () => {
    expect(fromLabels({ 'backer.enabled': 'false', 'backer.interval': 'never' })).toEqual({ problems: [], disabled: true });
  });

  it('reports every bad label with its location and what was expected', () => {
    const { mandate, problems } = fromLabels({
      'backer.type': 'fake',
      'backer.enabled': 'maybe',
      'backer.intervall': '0 3 * * *',
      'backer.interval': '0 25 * * *',
      'backer.target': 's3,nas',
      'backer.middleware': 'gzip',
      'backer.retention': '0',
      'backer.name_pattern': '<DATE>/<HOST>',
      'backer.files.root': '/',
    });
    expect(mandate).toBeUndefined();
    expect(problems).toEqual([
      { where: 'container shop-db label backer.enabled', message: 'expected true or false (also yes/no, on/off, 1/0), received "maybe"' },
      { where: 'container shop-db label backer.interval', message: 'invalid cron expression "0 25 * * *": Invalid value for hour: 25' },
      { where: 'container shop-db label backer.target', message: 'unknown target "nas"; known targets: s3, local' },
      { where: 'container shop-db label backer.middleware', message: 'unknown middleware "gzip" (did you mean gz?); known middleware: gz, enc' },
      { where: 'container shop-db label backer.retention', message: 'expected a whole number of backups to keep, at least 1, received "0"' },
      { where: 'container shop-db label backer.name_pattern', message: 'unknown placeholder <HOST>; known: <DATE>, <CONTAINER_NAME>, <MANDATE>, <UUID>' },
      {
        where: 'container shop-db label backer.intervall',
        message: 'unknown label backer.intervall (did you mean backer.interval?); known: backer.type, backer.enabled, backer.interval, backer.target, backer.middleware, backer.retention, backer.priority, backer.name_pattern, backer.verify, backer.verify_level, backer.max_age, backer.min_size, backer.size_change_alert, backer.fake.*',
      },
      { where: 'container shop-db label backer.files.root', message: 'backer.files.root is an option of source type files, but backer.type is "fake"' },
      { where: 'container shop-db label backer.fake.path', message: 'required: the path to dump' },
    ]);
  });

  it('requires a known type and lists the known ones', () => {
    expect(fromLabels({}).problems).toEqual([{ where: 'container shop-db label backer.type', message: 'required: the source type, one of fake, files' }]);
    expect(fromLabels({ 'backer.type': 'fakr', 'backer.fakr.path': '/x' }).problems).toEqual([
      { where: 'container shop-db label backer.type', message: 'unknown source type "fakr" (did you mean fake?); known: fake, files' },
    ]);
  });

  it('lets the source describe its own options with the type prefix', () => {
    expect(fromLabels({ 'backer.type': 'fake', 'backer.fake.path': '/x', 'backer.fake.user': 'root' }).problems).toEqual([
      { where: 'container shop-db label backer.fake.user', message: 'unknown option' },
    ]);
  });

  it("reports every problem of the source's options at once, not just the first", () => {
    const { mandate, problems } = fromLabels({ 'backer.type': 'fake', 'backer.fake.path': '/x', 'backer.fake.user': 'root', 'backer.fake.host': 'db', 'backer.retention': 'x' });
    expect(mandate).toBeUndefined();
    expect(problems).toEqual([
      { where: 'container shop-db label backer.retention', message: 'expected a whole number of backups to keep, at least 1, received "x"' },
      { where: 'container shop-db label backer.fake.user', message: 'unknown option' },
      { where: 'container shop-db label backer.fake.host', message: 'unknown option' },
    ]);
  });

  it('reports every problem of a real source (mysql) at once, each at its label', () => {
    const { problems } = parseMandate({
      name: 'shop-db',
      raw: labelsToRaw({ 'backer.type': 'mysql', 'backer.mysql.usr': 'root', 'backer.mysql.database': 'bad name', 'backer.mysql.ignore_tables': 'a b', 'backer.interval': 'daily' }),
      origin: 'labels',
      container: 'shop-db',
      describe: (key) => `container shop-db label backer.${key}`,
      config,
      sources: realSources,
    });
    expect(problems.map((p) => p.where)).toEqual([
      'container shop-db label backer.interval',
      'container shop-db label backer.mysql.usr',
      'container shop-db label backer.mysql.database',
      'container shop-db label backer.mysql.ignore_tables',
    ]);
    expect(problems[1]?.message).toMatch(/^unknown mysql option; known: /);
    expect(problems[2]?.message).toBe('"bad name" is not a valid database name');
  });

  it('reports every problem of redis options at once, each at its label, the cross-field rule included', () => {
    const { mandate, problems } = fromLabels(
      { 'backer.type': 'redis', 'backer.redis.socket': 'redis.sock', 'backer.redis.port': '99999', 'backer.redis.user': ' ' },
      { sources: realSources },
    );
    expect(mandate).toBeUndefined();
    expect(problems).toEqual([
      { where: 'container shop-db label backer.redis.port', message: 'set either backer.redis.socket or backer.redis.port, not both' },
      { where: 'container shop-db label backer.redis.socket', message: 'expected the absolute path of the unix socket inside the container, received "redis.sock"' },
      { where: 'container shop-db label backer.redis.port', message: 'expected a TCP port 1..65535, received "99999"' },
      { where: 'container shop-db label backer.redis.user', message: 'expected an ACL user name without control characters' },
    ]);
  });

  it('does not repeat a problem at an option set aside, and rethrows what is not bad input', () => {
    // `path` is required: after its bad value is set aside, its absence is the same problem.
    const strict: SourceDefinition<FakeOptions> = {
      ...fake,
      parse(raw, origin) {
        if (raw.path === undefined) throw new BackerError('LABEL_INVALID', 'required: the path to dump', { component: 'source:fake', details: { key: 'path' } });
        if (!raw.path.startsWith('/')) throw new BackerError('LABEL_INVALID', `${origin.describe('path')}: expected an absolute path`, { component: 'source:fake', details: { where: origin.describe('path') } });
        return fake.parse(raw, origin);
      },
    };
    const registry: SourceRegistry = new Map<string, SourceDefinition<unknown>>([['fake', strict]]);
    expect(fromLabels({ 'backer.type': 'fake', 'backer.fake.path': 'data' }, { sources: registry }).problems).toEqual([
      { where: 'container shop-db label backer.fake.path', message: 'expected an absolute path' },
    ]);
    const buggy: SourceDefinition<FakeOptions> = { ...fake, parse: () => { throw new TypeError('a bug'); } };
    expect(() => fromLabels({ 'backer.type': 'fake' }, { sources: new Map<string, SourceDefinition<unknown>>([['fake', buggy]]) })).toThrow(TypeError);
  });

  it('checks Env: references against the container environment', () => {
    const labels = { 'backer.type': 'fake', 'backer.fake.path': 'Env:DATA_PATH' };
    expect(fromLabels(labels, { containerEnv: { DATA_PATH: '/data' } }).problems).toEqual([]);
    expect(fromLabels(labels, { containerEnv: { OTHER: 'x' } }).problems).toEqual([
      { where: 'container shop-db label backer.fake.path', message: 'environment variable DATA_PATH (from Env:DATA_PATH) is not set in container shop-db' },
    ]);
    // without a known environment only the syntax is checked
    expect(fromLabels(labels).problems).toEqual([]);
  });

  it('needs a target when none is the default', () => {
    const twoPlain: BackerConfig = { ...config, targets: config.targets.map((t) => ({ ...t, default: false })) };
    expect(fromLabels({ 'backer.type': 'fake', 'backer.fake.path': '/x' }, { config: twoPlain }).problems).toEqual([
      { where: 'container shop-db label backer.target', message: 'required: no target is marked default: true; name one of s3, local' },
    ]);
  });

  it('refuses the container key on labels', () => {
    expect(fromLabels({ 'backer.type': 'fake', 'backer.fake.path': '/x', 'backer.container': 'x' }).problems[0]?.where).toBe(
      'container shop-db label backer.container',
    );
  });
});

describe('parseStaticMandates', () => {
  const text = `${configText}
mandates:
  shop:
    container: shop-db
    type: fake
    target: [local]
    fake: { path: /data }
  notes:
    type: files
  broken:
    type: fake
    interval: daily
    fake: { path: /x }
`;

  it('parses static mandates with the label parser and YAML paths', () => {
    const loaded = parseConfigText(text, 'backer.yml', {}, '/etc/backer');
    expect(loaded.problems).toEqual([]);
    const { mandates, problems } = parseStaticMandates(loaded.config, sources, 'backer.yml');
    expect(mandates.map((m) => [m.name, m.origin, m.source.container, m.targets, m.name_pattern])).toEqual([
      ['shop', 'config', 'shop-db', ['local'], '<DATE>-<CONTAINER_NAME>'],
      ['notes', 'config', null, ['s3'], '<DATE>-<MANDATE>'],
    ]);
    // Problems found only while running (an Env: value) name the key where it was written.
    expect(mandates[0]?.describe?.('fake.path')).toBe('backer.yml: mandates.shop.fake.path');
    expect(problems).toEqual([
      { where: 'backer.yml: mandates.broken.container', message: 'source type fake needs a container: set container' },
      { where: 'backer.yml: mandates.broken.interval', message: 'expected a cron expression of 5 fields (minute hour day month weekday) or 6 (seconds first), received "daily"' },
    ]);
  });

  it('says "key" rather than "label" for static mandates', () => {
    const loaded = parseConfigText('targets: [{ name: a, type: local, path: /a }]\nmandates: { n: { type: files, retension: 3 } }', 'backer.yml', {}, '/');
    expect(parseStaticMandates(loaded.config, sources, 'backer.yml').problems).toEqual([
      {
        where: 'backer.yml: mandates.n.retension',
        message: 'unknown key retension (did you mean retention?); known: type, enabled, interval, target, middleware, retention, priority, name_pattern, verify, verify_level, max_age, min_size, size_change_alert, container, files.*',
      },
    ]);
  });

  it('reports every problem of volume options in backer.yml at once, each at its key', () => {
    const yaml = `${configText}\nmandates:\n  app:\n    type: volume\n    container: app\n    volume: { paths: [data, /srv/../etc], stop: maybe, path: /x }\n`;
    const loaded = parseConfigText(yaml, 'backer.yml', {}, '/etc/backer');
    const { mandates, problems } = parseStaticMandates(loaded.config, realSources, 'backer.yml');
    expect(mandates).toEqual([]);
    expect(problems).toEqual([
      { where: 'backer.yml: mandates.app.volume.path', message: 'unknown volume option; known: paths, stop' },
      { where: 'backer.yml: mandates.app.volume.paths', message: 'expected absolute paths inside the container, got "data"' },
      { where: 'backer.yml: mandates.app.volume.paths', message: '"/srv/../etc" contains "." or ".." segments: write the plain absolute path' },
      { where: 'backer.yml: mandates.app.volume.stop', message: 'expected true or false (also yes/no, on/off, 1/0), received "maybe"' },
    ]);
  });
});

describe('checkCron', () => {
  it('accepts 5 and 6 fields and nothing else', () => {
    expect(checkCron('0 3 * * *')).toBeNull();
    expect(checkCron('*/10 0 3 * * mon-fri')).toBeNull();
    expect(checkCron('@daily')).toMatch(/^expected a cron expression of 5 fields/);
    expect(checkCron('0 0 3 * * * 2030')).toMatch(/^expected a cron expression of 5 fields/);
    expect(checkCron('0 0 31 2 *')).toBe('"0 0 31 2 *" never fires');
  });
});
