/**
 * The example Prometheus files (examples/prometheus/): the alert rules pass `promtool check rules`
 * and their own unit tests (`promtool test rules`), and the scrape config passes `promtool check config`.
 * A broken rule is caught: the unit tests fail when the stale rule loses its max_age exception.
 */
import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { capture } from './helpers/cli.js';
import { readme } from './helpers/readme.js';

const DIR = new URL('../examples/prometheus/', import.meta.url).pathname;
let scratch: string;

beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'mx-rules-'));
});

afterAll(async () => {
  await rm(scratch, { recursive: true, force: true });
});

describe('examples/prometheus', () => {
  it('alerts.yml passes promtool check rules', async () => {
    const r = await capture('promtool', ['check', 'rules', join(DIR, 'alerts.yml')]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toContain('SUCCESS: 7 rules found');
  });

  it('alerts.test.yml passes promtool test rules', async () => {
    const r = await capture('promtool', ['test', 'rules', join(DIR, 'alerts.test.yml')]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toContain('SUCCESS');
  });

  it('prometheus.yml passes promtool check config (with its rule file)', async () => {
    const r = await capture('promtool', ['check', 'config', join(DIR, 'prometheus.yml')]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toContain('SUCCESS: 1 rule files found');
  });

  it('covers every rule: a stale rule without its max_age exception fails the unit tests', async () => {
    const rules = await readFile(join(DIR, 'alerts.yml'), 'utf8');
    const broken = rules.replace(' unless backer_backup_max_age_seconds', '');
    expect(broken).not.toBe(rules);
    await writeFile(join(scratch, 'alerts.yml'), broken);
    await copyFile(join(DIR, 'alerts.test.yml'), join(scratch, 'alerts.test.yml'));
    const r = await capture('promtool', ['test', 'rules', join(scratch, 'alerts.test.yml')]);
    expect(r.code).toBe(1);
    expect(r.stdout + r.stderr).toMatch(/alertname: BackerBackupStale, time: 2h/);
  });

  it('names every alert the README promises', async () => {
    const rules = await readFile(join(DIR, 'alerts.yml'), 'utf8');
    const names = [...rules.matchAll(/- alert: (\w+)/g)].map((m) => m[1]);
    expect(names).toEqual(['BackerBackupStale', 'BackerBackupNeverSucceeded', 'BackerBackupFailed', 'BackerVerificationFailing', 'BackerMandateSkipped', 'BackerDown', 'BackerNotReady']);
    const section = readme.slice(readme.indexOf('### Metrics'), readme.indexOf('### Notifications'));
    for (const name of names) expect(section, name).toContain(`\`${name ?? ''}\``);
  });
});
