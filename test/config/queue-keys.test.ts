/**
 * The queue's config keys (queue.retries, retry_delay, retry_delay_max, stall_timeout, aging, nice,
 * docker.concurrency, targets[].concurrency, schedule.catch_up, catch_up_window,
 * state.history_days) and the mandate key `priority` (label backer.priority, static mandates):
 * defaults, bad values at their path, the JSON Schema, and a real daemon process that skips a
 * container with a bad priority label and keeps answering.
 */
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { callApi } from '../../src/cli/client.js';
import { configJsonSchema } from '../../src/config/json-schema.js';
import { parseConfigText } from '../../src/config/load.js';
import type { SkippedMandate } from '../../src/discovery/snapshot.js';
import { labelsToRaw, parseMandate, parseStaticMandates } from '../../src/mandates/parse.js';
import { sources } from '../../src/sources/index.js';
import { cli, spawnCli } from '../helpers/cli.js';
import { createTestEnv, filesMandateYaml, type TestEnv } from '../helpers/env.js';
import { docker, HOST_IMAGE } from '../setup/services.js';

const TARGET = 'targets: [{ name: local, type: local, path: /b }]\n';
const load = (text: string) => parseConfigText(text, 'backer.yml', {}, '/etc/backer');
const MIN = 60_000;

describe('queue, docker, schedule and state keys', () => {
  it('have their defaults, durations in milliseconds', () => {
    const { config, problems } = load('');
    expect(problems).toEqual([]);
    expect(config.queue).toEqual({ concurrency: 2, retries: 3, retry_delay: 30_000, retry_delay_max: 15 * MIN, stall_timeout: 30 * MIN, aging: 10 * MIN, nice: 10 });
    expect(config.schedule).toEqual({ catch_up: 'once', catch_up_window: 24 * 60 * MIN });
    expect(config.state).toEqual({ history_days: 90 });
    expect(config.docker.concurrency).toBeUndefined();
  });

  it('give an S3 target 5 MiB parts, 2 at once (15 MiB of part buffers per upload)', () => {
    const { config, problems } = load('targets: [{ name: s3, type: s3, bucket: bkt }]\n');
    expect(problems).toEqual([]);
    expect(config.targets[0]).toMatchObject({ part_size_mb: 5, queue_size: 2 });
  });

  it('read every key', () => {
    const { config, problems } = load(
      `queue: { retries: 0, retry_delay: 5s, retry_delay_max: 2m, stall_timeout: 1h, aging: 1m, nice: 0 }\ndocker: { enabled: false, concurrency: 3 }\nschedule: { catch_up: skip, catch_up_window: 2d }\nstate: { history_days: 7 }\n` +
        'targets:\n  - { name: nas, type: local, path: /nas, concurrency: 1 }\n  - { name: s3, type: s3, bucket: bkt, concurrency: 4 }\n  - { name: plain, type: local, path: /plain }\n',
    );
    expect(problems).toEqual([]);
    expect(config.queue).toEqual({ concurrency: 2, retries: 0, retry_delay: 5000, retry_delay_max: 2 * MIN, stall_timeout: 60 * MIN, aging: MIN, nice: 0 });
    expect(config.docker.concurrency).toBe(3);
    expect(config.schedule).toEqual({ catch_up: 'skip', catch_up_window: 2 * 24 * 60 * MIN });
    expect(config.state.history_days).toBe(7);
    expect(config.targets.map((t) => [t.name, t.concurrency])).toEqual([['nas', 1], ['s3', 4], ['plain', undefined]]);
  });

  it('report bad values at their path, all at once', () => {
    const { problems } = load(
      'queue: { retries: -1, aging: 10, nice: 20 }\ndocker: { concurrency: 0 }\nschedule: { catch_up: always }\nstate: { history_days: 0 }\ntargets:\n  - { name: nas, type: local, path: /nas, concurrency: 1.5 }\n',
    );
    expect(problems.map((p) => p.where).sort()).toEqual([
      'backer.yml: docker.concurrency',
      'backer.yml: queue.aging',
      'backer.yml: queue.nice',
      'backer.yml: queue.retries',
      'backer.yml: schedule.catch_up',
      'backer.yml: state.history_days',
      'backer.yml: targets[0].concurrency',
    ]);
    expect(problems).toHaveLength(7);
    expect(problems.find((p) => p.where.endsWith('queue.aging'))?.message).toBe('expected a duration like 30s, 5m, 26h or 7d, got 10');
    expect(problems.find((p) => p.where.endsWith('schedule.catch_up'))?.message).toMatch(/"skip", "once"/);
    expect(problems.find((p) => p.where.endsWith('queue.nice'))?.message).toMatch(/19/);
    expect(load('schedule: { every: 1h }\n').problems).toEqual([{ where: 'backer.yml: schedule.every', message: 'unknown key every; known keys: catch_up, catch_up_window' }]);
  });

  it('are described in the JSON Schema, with their defaults', () => {
    const properties = configJsonSchema().properties as Record<string, { properties?: Record<string, Record<string, unknown>> }>;
    expect(properties.queue?.properties?.retry_delay).toMatchObject({ type: 'string', pattern: expect.any(String) as unknown, default: '30s' });
    expect(properties.queue?.properties?.aging).toMatchObject({ default: '10m' });
    expect(Object.keys(properties.queue?.properties ?? {}).sort()).toEqual(['aging', 'concurrency', 'nice', 'retries', 'retry_delay', 'retry_delay_max', 'stall_timeout']);
    expect(properties.queue?.properties?.nice).toMatchObject({ anyOf: expect.arrayContaining([{ type: 'integer', minimum: 0, maximum: 19 }]) as unknown, default: 10 });
    expect(properties.schedule?.properties?.catch_up).toMatchObject({ enum: ['skip', 'once'], default: 'once' });
    expect(properties.schedule?.properties?.catch_up_window).toMatchObject({ default: '24h' });
    expect(properties.state?.properties?.history_days).toBeDefined();
    expect(properties.docker?.properties?.concurrency).toBeDefined();
  });
});

describe('priority', () => {
  function fromLabels(labels: Record<string, string>) {
    const { config } = load(TARGET);
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

  it('is normal (5) by default; reads high, normal, low and 0-9', () => {
    expect(fromLabels({}).mandate?.priority).toBe(5);
    const cases: [string, number][] = [['high', 8], ['normal', 5], ['low', 2], [' HIGH ', 8], ['0', 0], ['9', 9], ['7', 7]];
    for (const [raw, value] of cases) expect(fromLabels({ 'backer.priority': raw }).mandate?.priority, raw).toBe(value);
  });

  it('reports a bad value at its label', () => {
    for (const raw of ['urgent', '10', '-1', '5.5', '', 'hi gh']) {
      const { mandate, problems } = fromLabels({ 'backer.priority': raw });
      expect(mandate, raw).toBeUndefined();
      expect(problems).toEqual([
        { where: 'container shop-db label backer.priority', message: `expected high, normal, low or a whole number 0-9 (higher runs first), received ${JSON.stringify(raw)}` },
      ]);
    }
  });

  it('is a key of static mandates, as a word or a YAML number', () => {
    const { config, problems } = load(`${TARGET}mandates:\n  a: { type: files, files: { path: /a }, priority: high }\n  b: { type: files, files: { path: /b }, priority: 1 }\n  c: { type: files, files: { path: /c } }\n  d: { type: files, files: { path: /d }, priority: top }\n`);
    expect(problems).toEqual([]);
    const parsed = parseStaticMandates(config, sources, 'backer.yml');
    expect(parsed.mandates.map((m) => [m.name, m.priority])).toEqual([['a', 8], ['b', 1], ['c', 5]]);
    expect(parsed.problems).toEqual([{ where: 'backer.yml: mandates.d.priority', message: 'expected high, normal, low or a whole number 0-9 (higher runs first), received "top"' }]);
  });
});

describe('a bad backer.priority label on a running daemon', () => {
  const BAD = `queuekeys-badprio-${Math.random().toString(36).slice(2, 8)}`;
  let env: TestEnv;
  let filesDir: string;

  beforeAll(async () => {
    env = await createTestEnv('queuekeys', `mandates:\n${filesMandateYaml('queuekeys-files', 'TEST_FILES_DIR', { target: 'local' })}    priority: high\n`);
    filesDir = join(env.dir, 'files');
    await mkdir(filesDir, { recursive: true });
    await writeFile(join(filesDir, 'a.txt'), 'alpha\n');
    await docker(inject('dockerHost'), [
      'run', '-d', '--name', BAD, '--network', 'none', '-v', '/usr:/usr:ro', '-v', '/etc:/etc:ro',
      '--label', 'backer.enabled=true', '--label', 'backer.type=sqlite', '--label', 'backer.sqlite.path=/data/app.db', '--label', 'backer.priority=urgent',
      HOST_IMAGE, '/usr/bin/sleep', 'infinity',
    ]);
  });

  afterAll(async () => {
    await docker(inject('dockerHost'), ['rm', '-f', BAD]).catch(() => undefined);
  });

  it('skips that mandate with the problem; the others run and the daemon answers', async () => {
    const daemon = spawnCli(['daemon', '--config', env.configPath], { TEST_FILES_DIR: filesDir });
    const socket = join(env.dir, 'data', 'backer.sock');
    try {
      for (let i = 0; i < 300 && !existsSync(socket); i++) await new Promise((r) => setTimeout(r, 100));
      expect(existsSync(socket), daemon.output()).toBe(true);
      let skipped: SkippedMandate | undefined;
      for (let i = 0; i < 100 && skipped === undefined; i++) {
        const reply = await callApi<{ skipped: SkippedMandate[] }>(socket, 'GET', '/v1/mandates');
        skipped = reply.skipped.find((m) => m.name === BAD);
        if (skipped === undefined) await new Promise((r) => setTimeout(r, 200));
      }
      expect(skipped?.problems).toEqual([
        { where: `container ${BAD} label backer.priority`, message: 'expected high, normal, low or a whole number 0-9 (higher runs first), received "urgent"' },
      ]);
      const backup = await cli(['backup', BAD, '--wait', '--config', env.configPath], { TEST_FILES_DIR: filesDir });
      expect(backup.code).toBe(2);
      expect(backup.stderr).toContain(`container ${BAD} label backer.priority`);
      const good = await cli(['backup', 'queuekeys-files', '--wait', '--config', env.configPath], { TEST_FILES_DIR: filesDir });
      expect(good.code, good.stderr).toBe(0);
      expect(await callApi<{ status: string }>(socket, 'GET', '/v1/health')).toMatchObject({ status: 'ok' });
    } finally {
      daemon.child.kill('SIGTERM');
      const code = await new Promise<number | null>((resolve) => daemon.child.on('close', resolve));
      expect(code).toBe(0);
    }
  });
});
