/**
 * The `notifications` config: defaults, url_file read relative to the config file, problems at
 * their path saying what is expected and never quoting the URL (nor a ${VAR} behind it), the JSON
 * Schema, and `backer config check` as a process.
 */
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Ajv } from 'ajv';
import ajvFormats from 'ajv-formats';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { configJsonSchema } from '../src/config/json-schema.js';
import { parseConfigText } from '../src/config/load.js';
import { compileNameGlob } from '../src/notify/glob.js';
import { cli } from './helpers/cli.js';

const SECRET = 'pw-Notify-9f2c';
const load = (text: string, dir = '/etc/backer') => parseConfigText(text, 'backer.yml', { HOOK_URL: `slack://hook:AAA-${SECRET}@webhook` }, dir);

describe('notifications config', () => {
  it('fills the defaults: name <scheme>-<index>, every event but backup_succeeded, all mandates, info, 24h', () => {
    const { config, problems } = load('notifications:\n  - url: ntfy://ntfy.example.org/backups\n  - url: generic+https://h.example/x\n    name: ops\n    events: [backup_succeeded]\n    mandates: ["shop-*"]\n    min_level: warning\n    repeat: 6h\n  - url: generic+http://h.example/y\n');
    expect(problems).toEqual([]);
    expect(config.notifications).toEqual([
      { name: 'ntfy-0', url: 'ntfy://ntfy.example.org/backups', events: ['backup_failed', 'backup_recovered', 'stale', 'size_anomaly', 'verification_failed', 'restore_started', 'restore_finished'], mandates: null, min_level: 'info', repeat: 24 * 3_600_000, templates: {} },
      { name: 'ops', url: 'generic+https://h.example/x', events: ['backup_succeeded'], mandates: ['shop-*'], min_level: 'warning', repeat: 6 * 3_600_000, templates: {} },
      expect.objectContaining({ name: 'generic-2' }),
    ]);
  });

  it('reads url_file relative to the config file', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'notify-config-'));
    await writeFile(join(dir, 'hook.url'), `generic+https://h.example/hooks/${SECRET}\n`);
    const { config, problems } = load('notifications:\n  - url_file: hook.url\n', dir);
    expect(problems).toEqual([]);
    expect(config.notifications[0]).toMatchObject({ name: 'generic-0', url: `generic+https://h.example/hooks/${SECRET}` });
    await writeFile(join(dir, 'bad.url'), `smtp://u:${SECRET}@mail.example.org/\n`);
    const bad = load('notifications:\n  - url_file: bad.url\n  - url_file: missing.url\n', dir);
    expect(bad.problems).toEqual([
      { where: 'backer.yml: notifications[0].url_file', message: expect.stringMatching(new RegExp(`^the URL in ${join(dir, 'bad.url')}: expected smtp://`)) as unknown },
      { where: 'backer.yml: notifications[1].url_file', message: `cannot read ${join(dir, 'missing.url')}: ENOENT` },
    ]);
  });

  it('bad entries are problems at their path, without the URL or the value of its ${VAR}', () => {
    const { problems } = load(`notifications:
  - url: smtp://u:${SECRET}@mail.example.org/?to=a@example.org
  - url: \${HOOK_URL}
  - url: generic+https://h.example/x
    url_file: x.url
  - url: pager://${SECRET}@x
  - url: ntfy://h.example/t
    mandates: ["[a"]
    events: [backup_exploded]
    min_level: critical
    repeat: often
  - url: ntfy://h.example/t
    name: ntfy-0
`);
    expect(problems.map((p) => p.where)).toEqual([
      'backer.yml: notifications[0].url',
      'backer.yml: notifications[1].url',
      'backer.yml: notifications[2]',
      'backer.yml: notifications[3].url',
      'backer.yml: notifications[4].events[0]',
      'backer.yml: notifications[4].mandates[0]',
      'backer.yml: notifications[4].min_level',
      'backer.yml: notifications[4].repeat',
    ]);
    expect(problems[1]?.message).toMatch(/^expected slack:\/\/hook:TOKEN-A-TOKEN-B-TOKEN-C@webhook/);
    expect(problems[2]?.message).toBe('expected exactly one of url and url_file');
    expect(problems[3]?.message).toMatch(/^expected a URL with one of the schemes smtp, smtps, slack, discord, teams, ntfy, gotify, telegram, generic\+https, generic\+http; received scheme "pager"$/);
    expect(JSON.stringify(problems)).not.toContain(SECRET);
  });

  it('mandate globs: * ? [a-z] [!a] {a,b} and escapes, whole names only', () => {
    const match = (glob: string, names: string[]): string[] => names.filter((n) => compileNameGlob(glob).test(n));
    const names = ['shop-db', 'shop-eu', 'shop.db', 'crm', 'blog1', 'blog2', 'a*b'];
    expect(match('shop-*', names)).toEqual(['shop-db', 'shop-eu']);
    expect(match('shop?db', names)).toEqual(['shop-db', 'shop.db']);
    expect(match('blog[!1]', names)).toEqual(['blog2']);
    expect(match('{crm,blog[0-9]}', names)).toEqual(['crm', 'blog1', 'blog2']);
    expect(match('a\\*b', names)).toEqual(['a*b']);
    expect(match('shop', names)).toEqual([]);
    expect(() => compileNameGlob('{a,b')).toThrow('unclosed "{" in "{a,b"');
  });

  it('two destinations with one name are a problem', () => {
    const { problems } = load('notifications:\n  - url: ntfy://h.example/t\n  - url: ntfy://h.example/u\n    name: ntfy-0\n');
    expect(problems).toEqual([{ where: 'backer.yml: notifications[1].name', message: 'duplicate name "ntfy-0": notifications[0] has it too' }]);
  });

  it('the JSON Schema accepts a destination and refuses unknown keys and events', () => {
    const ajv = new Ajv({ allErrors: true, strict: true });
    ajvFormats.default(ajv);
    const validate = ajv.compile(configJsonSchema());
    const yaml = (entry: string): unknown => parseYaml(`notifications:\n  - ${entry}\n`);
    expect(validate(yaml('url: ntfy://h/t\n    events: [stale]\n    repeat: 12h\n    templates:\n      stale: { title: "{{mandate}} is stale" }'))).toBe(true);
    expect(validate(yaml('url: ntfy://h/t\n    colour: red'))).toBe(false);
    expect(validate(yaml('url: ntfy://h/t\n    events: [exploded]'))).toBe(false);
  });

  it('backer config check names the problem and never prints the URL', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'notify-check-'));
    const path = join(dir, 'backer.yml');
    await writeFile(path, `docker:\n  enabled: false\nnotifications:\n  - url: smtp://u:${SECRET}@mail.example.org/?from=a@example.org\n`);
    const r = await cli(['config', 'check', '--config', path]);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain(`${path}: notifications[0].url: expected smtp://[USER:PASSWORD@]HOST[:PORT]/?from=ADDRESS&to=ADDRESS`);
    expect(r.stdout + r.stderr).not.toContain(SECRET);
  });

  it('backer daemon refuses to start on a bad URL: CONFIG_INVALID (exit 2) naming the path, without the URL', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'notify-daemon-bad-'));
    const path = join(dir, 'backer.yml');
    await writeFile(path, `data_dir: ${dir}/data\ndocker:\n  enabled: false\nnotifications:\n  - url: discord://${SECRET}@not-an-id\n`);
    const r = await cli(['daemon', '--config', path, '--json']);
    expect(r.code).toBe(2);
    const { error } = JSON.parse(r.stdout) as { error: { code: string; message: string } };
    expect(error.code).toBe('CONFIG_INVALID');
    expect(error.message).toContain(`${path}: notifications[0].url: expected discord://TOKEN@WEBHOOK_ID`);
    expect(r.stdout + r.stderr).not.toContain(SECRET);
  });
});
