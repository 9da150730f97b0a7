/**
 * One duration parser (src/config/duration.ts) for labels and backer.yml: `30s`, `5m`, `26h`,
 * `7d`, `2w`, combined `1h30m`; bare numbers and everything else refused with one message. The
 * config's duration keys read through it (milliseconds in the parsed config), and `backer config
 * check` (a real CLI process) reports a bad one at its path.
 */
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { DURATION_PATTERN, durationMs, durationProblem, durationSchema, formatDuration, parseDuration } from '../../src/config/duration.js';
import { parseConfigText } from '../../src/config/load.js';
import { cli } from '../helpers/cli.js';

const S = 1000;
const M = 60 * S;
const H = 60 * M;
const D = 24 * H;

describe('parseDuration', () => {
  const good: [string, number][] = [
    ['30s', 30 * S],
    ['5m', 5 * M],
    ['26h', 26 * H],
    ['7d', 7 * D],
    ['2w', 14 * D],
    ['1h30m', 90 * M],
    ['1d12h', 36 * H],
    ['1w2d3h4m5s', 7 * D + 2 * D + 3 * H + 4 * M + 5 * S],
    [' 90s ', 90 * S],
    ['0h15m', 15 * M],
  ];
  it.each(good)('reads %j', (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
    expect(durationMs(text)).toBe(ms);
    expect(new RegExp(DURATION_PATTERN).test(text)).toBe(true);
  });

  const bad = ['', ' ', '30', '0', '0s', '0h0m', '-5m', '1.5h', '5 m', '5M', '5min', '3y', '1m1h', '1h1h', 'h', 'PT5M', '99999999999999w'];
  it.each(bad)('refuses %j with the one message', (text) => {
    expect(durationMs(text)).toBeUndefined();
    expect(() => parseDuration(text)).toThrow(`expected a duration like 30s, 5m, 26h or 7d, got ${JSON.stringify(text)}`);
  });

  it('formats milliseconds back to the shortest text it reads', () => {
    for (const [, ms] of good) expect(parseDuration(formatDuration(ms))).toBe(ms);
    expect(formatDuration(90 * M)).toBe('1h30m');
    expect(formatDuration(14 * D)).toBe('2w');
    expect(formatDuration(0)).toBe('0s');
    expect(durationProblem(30)).toBe('expected a duration like 30s, 5m, 26h or 7d, got 30');
  });
});

describe('durationSchema', () => {
  const schema = z.object({ wait: durationSchema.prefault('30s'), limit: durationSchema.optional() }).strict();

  it('outputs milliseconds, for a default too', () => {
    expect(schema.parse({})).toEqual({ wait: 30 * S });
    expect(schema.parse({ wait: '1h30m', limit: '2w' })).toEqual({ wait: 90 * M, limit: 14 * D });
  });

  it('refuses a YAML number and a bad string with the same message', () => {
    const issues = schema.safeParse({ wait: 30, limit: 'soon' }).error?.issues.map((i) => [i.path.join('.'), i.message]);
    expect(issues).toEqual([
      ['wait', 'expected a duration like 30s, 5m, 26h or 7d, got 30'],
      ['limit', 'expected a duration like 30s, 5m, 26h or 7d, got "soon"'],
    ]);
  });
});

describe('duration keys in backer.yml', () => {
  const load = (text: string) => parseConfigText(text, 'backer.yml', {}, '/etc/backer');

  it('are milliseconds in the loaded config', () => {
    const { config, problems } = load('queue:\n  retry_delay: 1m\n  retry_delay_max: 1h30m\n  stall_timeout: 2h\n  aging: 5m\nschedule:\n  catch_up_window: 2d\n');
    expect(problems).toEqual([]);
    expect(config.queue).toMatchObject({ retry_delay: M, retry_delay_max: 90 * M, stall_timeout: 2 * H, aging: 5 * M });
    expect(config.schedule.catch_up_window).toBe(2 * D);
  });

  it('report a bad value at its path, every one at once', () => {
    const { problems } = load('queue:\n  retry_delay: 30\n  stall_timeout: half an hour\nschedule:\n  catch_up_window: 1y\n');
    expect(problems).toEqual([
      { where: 'backer.yml: queue.retry_delay', message: 'expected a duration like 30s, 5m, 26h or 7d, got 30' },
      { where: 'backer.yml: queue.stall_timeout', message: 'expected a duration like 30s, 5m, 26h or 7d, got "half an hour"' },
      { where: 'backer.yml: schedule.catch_up_window', message: 'expected a duration like 30s, 5m, 26h or 7d, got "1y"' },
    ]);
  });

  it('read ${VAR} like any string', () => {
    const { config, problems } = parseConfigText('queue:\n  retry_delay: ${DELAY:-45s}\n', 'backer.yml', { DELAY: '2m' }, '/etc/backer');
    expect(problems).toEqual([]);
    expect(config.queue.retry_delay).toBe(2 * M);
  });

  it('a bad one makes `backer config check` (a real CLI process) exit 1 (problems found), naming it', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'bk-duration-'));
    const file = join(dir, 'backer.yml');
    await writeFile(file, `data_dir: ${dir}/data\ndocker:\n  enabled: false\nqueue:\n  retry_delay: 30\n`);
    const bad = await cli(['config', 'check', '--config', file]);
    expect(bad.code).toBe(1);
    expect(bad.stdout + bad.stderr).toContain(`${file}: queue.retry_delay: expected a duration like 30s, 5m, 26h or 7d, got 30`);
    await writeFile(file, `data_dir: ${dir}/data\ndocker:\n  enabled: false\nqueue:\n  retry_delay: 30s\n`);
    const good = await cli(['config', 'check', '--config', file]);
    expect(good.stderr).toBe('');
    expect(good.code).toBe(0);
  });
});
