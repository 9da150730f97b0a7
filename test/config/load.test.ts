import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isBackerError } from '../../src/errors.js';
import { expandString } from '../../src/config/env.js';
import { findConfigPath, loadConfig, loadConfigOrThrow, parseConfigText } from '../../src/config/load.js';

const parse = (text: string, env: Record<string, string> = {}) => parseConfigText(text, 'backer.yml', env, '/etc/backer');
const wheres = (text: string, env: Record<string, string> = {}) => parse(text, env).problems.map((p) => p.where);

describe('parseConfigText', () => {
  it('fills every default for an empty file', () => {
    const { config, problems } = parse('');
    expect(problems).toEqual([]);
    expect(config).toEqual({
      data_dir: '/etc/backer/backer-data',
      log: { level: 'info', format: 'json' },
      docker: { enabled: true, socket_path: '/var/run/docker.sock' },
      api: { socket: '/etc/backer/backer-data/backer.sock', listen: null, tls: null, tokens: [] },
      queue: { concurrency: 2, retries: 3, retry_delay: 30_000, retry_delay_max: 900_000, stall_timeout: 1_800_000, aging: 600_000, nice: 10 },
      schedule: { catch_up: 'once', catch_up_window: 86_400_000 },
      state: { history_days: 90 },
      // No helper_image: the volume source picks its default at run time (sources/helper-image.ts).
      volume: { helper_binds: [] },
      // No interval: no scheduled verification unless a mandate asks for one.
      verify: { level: 'decode' },
      status: { check_interval: 60_000 },
      targets: [],
      middleware: [],
      mandates: {},
      notifications: [],
      metrics: {},
      ui: { enabled: true },
    });
  });

  it('resolves paths relative to the config file and takes the socket from DOCKER_HOST', () => {
    const text = 'data_dir: state\napi: { socket: /run/backer.sock }\ntargets:\n  - { name: disk, type: local, path: ./backups }\n';
    const { config, problems } = parse(text, { DOCKER_HOST: 'unix:///tmp/d/docker.sock' });
    expect(problems).toEqual([]);
    expect(config.data_dir).toBe('/etc/backer/state');
    expect(config.api.socket).toBe('/run/backer.sock');
    expect(config.docker.socket_path).toBe('/tmp/d/docker.sock');
    // the only target is the default one
    expect(config.targets).toEqual([{ name: 'disk', type: 'local', path: '/etc/backer/backups', default: true }]);
  });

  it('prefers docker.socket_path and rejects a tcp DOCKER_HOST only while discovery is on', () => {
    expect(parse('docker: { socket_path: /x.sock }', { DOCKER_HOST: 'tcp://h:2375' }).config.docker.socket_path).toBe('/x.sock');
    expect(parse('', { DOCKER_HOST: 'tcp://h:2375' }).problems).toEqual([
      {
        where: 'environment DOCKER_HOST',
        message: 'expected unix:///path/to/docker.sock, received "tcp://h:2375"; Backer reaches Docker through a unix socket: set docker.socket_path in backer.yml',
      },
    ]);
    expect(parse('docker: { enabled: false }', { DOCKER_HOST: 'tcp://h:2375' }).problems).toEqual([]);
  });

  it('flattens static mandates to label-like strings', () => {
    const text = `
targets: [{ name: s3, type: s3, bucket: backups }, { name: local, type: local, path: /b, default: true }]
middleware: [{ name: gz, type: gzip }]
mandates:
  shop:
    container: shop-db
    type: mysql
    interval: 0 3 * * *
    target: [s3, local]
    middleware: gz
    retention: 5
    mysql:
      user: Text:root
      password: Env:MYSQL_ROOT_PASSWORD
      options: { single-transaction: true }
`;
    const { config, problems } = parse(text);
    expect(problems).toEqual([]);
    expect(config.mandates).toEqual({
      shop: {
        container: 'shop-db',
        type: 'mysql',
        interval: '0 3 * * *',
        target: 's3,local',
        middleware: 'gz',
        retention: '5',
        'mysql.user': 'Text:root',
        'mysql.password': 'Env:MYSQL_ROOT_PASSWORD',
        'mysql.options.single-transaction': 'true',
      },
    });
  });

  it('reports YAML syntax errors with line and column', () => {
    const { problems } = parse('log:\n  level: info\n targets: [\n');
    expect(problems.length).toBeGreaterThan(0);
    expect(problems[0]?.where).toMatch(/^backer\.yml:\d+:\d+$/);
    expect(parse('a: 1\na: 2\n').problems).toEqual([{ where: 'backer.yml:2:1', message: 'Map keys must be unique' }]);
  });

  it('turns schema issues into path-precise, human messages', () => {
    const text = `
log: { level: loud, formt: json }
queue: { concurrency: 0 }
targets:
  - { name: disk, type: local, path: /b }
  - { name: s3, type: s3, bucket: ab, buckett: x }
  - { name: ftp, type: ftp }
middleware:
  - { name: gz, type: gzp }
`;
    expect(parse(text).problems).toEqual([
      { where: 'backer.yml: log.level', message: 'expected one of "trace", "debug", "info", "warn", "error", received "loud"' },
      { where: 'backer.yml: log.formt', message: 'unknown key formt (did you mean format?); known keys: level, format' },
      { where: 'backer.yml: queue.concurrency', message: 'expected a number at least 1' },
      { where: 'backer.yml: targets[1].bucket', message: 'expected at least 3 characters' },
      {
        where: 'backer.yml: targets[1].buckett',
        message:
          'unknown key buckett (did you mean bucket?); known keys: name, default, concurrency, type, bucket, prefix, endpoint, region, force_path_style, access_key_id, secret_access_key, part_size_mb, queue_size, storage_class, server_side_encryption',
      },
      { where: 'backer.yml: targets[2].type', message: 'expected one of "local", "s3", received "ftp"' },
      { where: 'backer.yml: middleware[0].type', message: 'expected one of "gzip", "ccrypt", "zstd", "gpg", "age", received "gzp"' },
    ]);
  });

  it('describes wrong types and missing keys', () => {
    expect(parse('data_dir: 5').problems).toEqual([{ where: 'backer.yml: data_dir', message: 'expected a string, received 5' }]);
    expect(parse('- a').problems).toEqual([{ where: 'backer.yml', message: 'expected a mapping, received a list' }]);
    expect(parse('targets: [{ name: x, type: local }]').problems).toEqual([
      { where: 'backer.yml: targets[0].path', message: 'required (expected a string)' },
    ]);
    expect(parse('mandates: { "bad name": { type: x }, shop: { mysql: { password: null } } }').problems).toEqual([
      {
        where: 'backer.yml: mandates["bad name"]',
        message: 'expected a name of letters, digits, "_", "." or "-" (starting with a letter or digit), received "bad name"',
      },
      {
        where: 'backer.yml: mandates.shop.mysql.password',
        message: 'expected a string, number, boolean, list or mapping, received null (write "" for an empty value)',
      },
    ]);
  });

  it('keeps the valid parts of an invalid config', () => {
    const text = 'queue: { concurrency: 0 }\ntargets:\n  - { name: a, type: local, path: /a }\n  - { name: b, type: s3, bucket: x }\n';
    const { config, problems } = parse(text);
    expect(problems.map((p) => p.where)).toEqual(['backer.yml: queue.concurrency', 'backer.yml: targets[1].bucket']);
    expect(config.queue.concurrency).toBe(2);
    expect(config.targets.map((t) => t.name)).toEqual(['a']);
  });

  it('applies the rules that span entries', () => {
    const text = `
targets:
  - { name: a, type: local, path: /a, default: true }
  - { name: a, type: local, path: /b }
  - { name: c, type: local, path: /c, default: true }
middleware: [{ name: gz, type: gzip }, { name: gz, type: gzip, level: 1 }]
mandates:
  shop: { type: mysql, target: 'a, nope', middleware: zip }
`;
    expect(parse(text).problems).toEqual([
      { where: 'backer.yml: targets[1].name', message: 'duplicate name "a": targets[0] has it too' },
      { where: 'backer.yml: middleware[1].name', message: 'duplicate name "gz": middleware[0] has it too' },
      { where: 'backer.yml: targets[2].default', message: 'only one target may have default: true; targets[0] already has it' },
      { where: 'backer.yml: mandates.shop.target', message: 'unknown target "nope"; known targets: a, c' },
      { where: 'backer.yml: mandates.shop.middleware', message: 'unknown middleware "zip"; known middleware: gz' },
    ]);
  });

  it('asks for a target when a static mandate names none and no target is the default', () => {
    const text = 'targets: [{ name: a, type: local, path: /a }, { name: b, type: local, path: /b }]\nmandates: { shop: { type: mysql } }';
    expect(parse(text).problems).toEqual([
      { where: 'backer.yml: mandates.shop.target', message: 'required: no target is marked default: true; name one of a, b' },
    ]);
  });
});

describe('environment expansion', () => {
  it('expands ${VAR} and ${VAR:-default} in values, not keys, and keeps $${ literal', () => {
    expect(expandString('a${X}b${Y:-dflt}c$${Z}d$e', { X: '1', Y: '' })).toEqual({ value: 'a1bdfltc${Z}d$e', errors: [] });
    const text = 'data_dir: ${DIR}\nqueue:\n  concurrency: ${N:-3}\nlog: { level: "${LEVEL:-debug}" }\n';
    const { config, problems } = parse(text, { DIR: '/var/lib/backer' });
    expect(problems).toEqual([]);
    expect(config.data_dir).toBe('/var/lib/backer');
    // an unquoted lone reference is typed like the value written in its place
    expect(config.queue.concurrency).toBe(3);
    expect(config.log.level).toBe('debug');
    expect(wheres('${X}: 1', { X: 'data_dir' })).toEqual(['backer.yml: ["${X}"]']);
  });

  it('reports an unset variable at the path of its value', () => {
    const text = 'middleware:\n  - { name: gz, type: gzip }\n  - { name: enc, type: ccrypt, key: "${CCRYPT_KEY}" }\n';
    expect(parse(text).problems).toEqual([{ where: 'backer.yml: middleware[1].key', message: 'environment variable CCRYPT_KEY is not set' }]);
    expect(wheres('data_dir: ${bad name}')).toEqual(['backer.yml: data_dir']);
    expect(parse('data_dir: ${OPEN').problems[0]?.message).toBe('unterminated ${ (write $${ for a literal ${)');
  });
});

describe('loading files', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'backer-config-'));
    await mkdir(join(dir, 'sub'));
    await writeFile(join(dir, 'backer.yml'), 'data_dir: data\n');
    await writeFile(join(dir, 'sub', 'custom.yml'), 'queue: { concurrency: nope }\n');
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('finds the config from --config, BACKER_CONFIG or the working directory', async () => {
    expect(await findConfigPath(undefined, {}, dir)).toBe(join(dir, 'backer.yml'));
    expect(await findConfigPath(undefined, { BACKER_CONFIG: 'sub/custom.yml' }, dir)).toBe(join(dir, 'sub', 'custom.yml'));
    expect(await findConfigPath('sub/custom.yml', { BACKER_CONFIG: 'nope.yml' }, dir)).toBe(join(dir, 'sub', 'custom.yml'));
  });

  it('names the paths it tried when there is no config', async () => {
    const err: unknown = await findConfigPath(undefined, {}, join(dir, 'sub')).catch((e: unknown) => e);
    expect(isBackerError(err, 'CONFIG_NOT_FOUND')).toBe(true);
    expect((err as Error).message).toContain(`tried ${join(dir, 'sub', 'backer.yml')}, ${join(dir, 'sub', 'backer.yaml')}`);
    const explicit: unknown = await findConfigPath('missing.yml', {}, dir).catch((e: unknown) => e);
    expect((explicit as Error).message).toContain(`tried ${join(dir, 'missing.yml')} (from --config)`);
  });

  it('loads a file relative to its directory', async () => {
    const { config, problems } = await loadConfig(join(dir, 'backer.yml'), {});
    expect(problems).toEqual([]);
    expect(config.data_dir).toBe(join(dir, 'data'));
  });

  it('throws CONFIG_INVALID listing every problem', async () => {
    const path = join(dir, 'sub', 'custom.yml');
    const err: unknown = await loadConfigOrThrow(path, {}).catch((e: unknown) => e);
    expect(isBackerError(err, 'CONFIG_INVALID')).toBe(true);
    expect((err as Error).message).toBe(`${path} has 1 problem:\n  ${path}: queue.concurrency: expected a number, received "nope"`);
    expect(isBackerError(err) && err.details.problems).toEqual([{ where: `${path}: queue.concurrency`, message: 'expected a number, received "nope"' }]);
    const missing: unknown = await loadConfig(join(dir, 'nope.yml'), {}).catch((e: unknown) => e);
    expect(isBackerError(missing, 'CONFIG_NOT_FOUND')).toBe(true);
  });
});
