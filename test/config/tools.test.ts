import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { callApi } from '../../src/cli/client.js';
import { cli } from '../helpers/cli.js';
import { spawnDaemon, waitForHealth } from '../helpers/daemon-proc.js';
import { AGE_RECIPIENT } from '../helpers/env.js';

/**
 * The programs a middleware needs, checked on the host before the first run: a real `config check`
 * process and a real daemon whose PATH is a directory holding only `node` (and `tar`, which the
 * files source needs), so `age` is not found there; with the normal PATH nothing is reported.
 */
let dir = '';
let config = '';
let bare = '';

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'backer-config-tools-'));
  bare = join(dir, 'bin');
  await mkdir(bare);
  await symlink(process.execPath, join(bare, 'node'));
  await mkdir(join(dir, 'site'));
  await writeFile(join(dir, 'site', 'index.html'), '<h1>tools</h1>\n');
  config = join(dir, 'backer.yml');
  await writeFile(
    config,
    [
      'data_dir: ./data',
      'docker:',
      '  enabled: false',
      'targets:',
      '  - name: local',
      '    type: local',
      '    path: ./backups',
      'middleware:',
      '  - name: zip',
      '    type: gzip',
      '  - name: sealed',
      '    type: age',
      `    recipients: [${AGE_RECIPIENT}]`,
      'mandates:',
      '  tools-site:',
      '    type: files',
      '    interval: "0 0 1 1 *"',
      '    middleware: zip,sealed',
      `    files: { path: ${join(dir, 'site')} }`,
      '',
    ].join('\n'),
  );
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const missingAge = (): string => `${config}: middleware[1] (sealed): the program age is not installed (not found on PATH)`;

describe('programs that middleware need', () => {
  it('config check reports a middleware whose program is not on PATH, and exits 1', async () => {
    const r = await cli(['config', 'check', '--config', config], { PATH: bare });
    expect(r.stdout.split('\n')).toEqual([missingAge(), '1 problem found', '']);
    expect(r.code).toBe(1);
    const json = await cli(['config', 'check', '--json', '--config', config], { PATH: bare });
    expect(JSON.parse(json.stdout)).toMatchObject({
      ok: false,
      problems: [{ where: `${config}: middleware[1] (sealed)`, message: 'the program age is not installed (not found on PATH)' }],
    });
    expect(json.code).toBe(1);
  });

  it('config check reports nothing when the program is on PATH', async () => {
    const r = await cli(['config', 'check', '--config', config]);
    expect(r.stdout).toBe(`${config}: OK (1 mandate: tools-site)\n`);
    expect(r.code).toBe(0);
  });

  it('the daemon warns at start, runs, and only the backup that uses the program fails, with a clear reason', async () => {
    await symlink(execFileSync('sh', ['-c', 'command -v tar'], { encoding: 'utf8' }).trim(), join(bare, 'tar'));
    const daemon = spawnDaemon(config, { env: { PATH: bare } });
    const socket = join(dir, 'data', 'backer.sock');
    try {
      await waitForHealth(daemon, socket);
      const warning = daemon
        .output()
        .split('\n')
        .find((line) => line.includes('the program age is not installed'));
      expect(warning).toBeDefined();
      expect(JSON.parse(warning ?? '{}')).toMatchObject({ level: 40, msg: `${missingAge()}; the backups that use it will fail` });

      const backup = await cli(['backup', 'tools-site', '--wait', '--config', config]);
      expect(backup.code).toBe(1);
      expect(backup.stdout + backup.stderr).toMatch(/age is not installed \(not found in PATH\)/);
      expect(await callApi<{ status: string }>(socket, 'GET', '/v1/health')).toMatchObject({ status: 'ok' });
      const list = await cli(['mandates', 'list', '--json', '--config', config]);
      expect(list.code).toBe(0);
    } finally {
      expect(await daemon.stop()).toBe(0);
    }
  });
});
