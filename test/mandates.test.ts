/**
 * A mandate skipped for its problems exists: `backup` says so and why (exit 2, HTTP 409), and
 * `backer mandates list` / `GET /v1/mandates` list it with its problems. Real daemon process,
 * private Docker engine.
 */
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { callApi } from '../src/cli/client.js';
import type { SkippedMandate } from '../src/discovery/snapshot.js';
import { cli, spawnCli } from './helpers/cli.js';
import { createTestEnv, filesMandateYaml, type TestEnv } from './helpers/env.js';
import { docker, HOST_IMAGE } from './setup/services.js';

const host = (): string => inject('dockerHost');
const BAD = `mandates-badlabels-${Math.random().toString(36).slice(2, 8)}`;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface MandatesReply {
  mandates: { name: string; type: string; container: string | null }[];
  skipped: SkippedMandate[];
  problems: { where: string; message: string }[];
}

let env: TestEnv;
let filesDir: string;

beforeAll(async () => {
  env = await createTestEnv(
    'mandates',
    `mandates:\n${filesMandateYaml('mandates-files', 'TEST_FILES_DIR', { target: 'local' })}`,
  );
  filesDir = join(env.dir, 'files');
  await mkdir(filesDir, { recursive: true });
  await writeFile(join(filesDir, 'a.txt'), 'alpha\n');
  await docker(host(), [
    'run', '-d', '--name', BAD, '--network', 'none', '-v', '/usr:/usr:ro', '-v', '/etc:/etc:ro',
    '--label', 'backer.enabled=true', '--label', 'backer.type=sqlite', '--label', 'backer.sqlite.path=/data/app.db', '--label', 'backer.interval=bogus',
    HOST_IMAGE, '/usr/bin/sleep', 'infinity',
  ]);
});

afterAll(async () => {
  await docker(host(), ['rm', '-f', BAD]).catch(() => undefined);
});

const run = (args: string[]): ReturnType<typeof cli> => cli([...args, '--config', env.configPath], { TEST_FILES_DIR: filesDir });

describe('skipped mandates', () => {
  it('mandates list exits 3 without a daemon', async () => {
    const r = await run(['mandates', 'list']);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/cannot reach the Backer daemon/);
  });

  it('are listed with their problems, and a backup of one says why it is skipped (exit 2)', async () => {
    const daemon = spawnCli(['daemon', '--config', env.configPath], { TEST_FILES_DIR: filesDir });
    const socket = join(env.dir, 'data', 'backer.sock');
    try {
      for (let i = 0; i < 300 && !existsSync(socket); i++) await sleep(100);
      expect(existsSync(socket), daemon.output()).toBe(true);

      let reply: MandatesReply | undefined;
      for (let i = 0; i < 100; i++) {
        reply = await callApi<MandatesReply>(socket, 'GET', '/v1/mandates');
        if (reply.skipped.some((m) => m.name === BAD)) break;
        await sleep(200);
      }
      const skipped = reply?.skipped.find((m) => m.name === BAD);
      expect(skipped).toEqual({
        name: BAD,
        origin: 'labels',
        container: BAD,
        problems: [{ where: `container ${BAD} label backer.interval`, message: expect.stringMatching(/cron/) as unknown }],
        status: 'skipped',
        last_backup: null,
        recent_sizes: [],
      });
      expect(reply?.mandates.map((m) => m.name)).toContain('mandates-files');
      expect(reply?.mandates.map((m) => m.name)).not.toContain(BAD);

      const backup = await run(['backup', BAD, '--wait']);
      expect(backup.code).toBe(2);
      expect(backup.stderr).toContain(`mandate ${BAD} exists but is skipped`);
      expect(backup.stderr).toContain(`container ${BAD} label backer.interval`);
      expect(backup.stderr).not.toMatch(/no mandate named/);
      const asJson = await run(['backup', BAD, '--wait', '--json']);
      expect(asJson.code).toBe(2);
      expect(JSON.parse(asJson.stdout)).toEqual({ error: { code: 'MANDATE_SKIPPED', message: expect.stringContaining('backer.interval') as unknown } });

      const raw = await callApi(socket, 'POST', `/v1/mandates/${BAD}/backups`).then(
        () => 'accepted',
        (err: Error & { code?: string }) => err.code,
      );
      expect(raw).toBe('MANDATE_SKIPPED');

      const list = await run(['mandates', 'list']);
      expect(list.code).toBe(0);
      expect(list.stdout).toMatch(/^NAME\s+TYPE\s+CONTAINER\s+INTERVAL\s+NEXT_RUN\s+NEXT_VERIFY\s+TARGETS\s+LAST_BACKUP\s+AGE\s+STATUS$/m);
      expect(list.stdout).toMatch(/^mandates-files\s+files\s+-\s+0 0 29 2 \*\s+\S+\s+-\s+local\s+-\s+-\s+never_succeeded$/m);
      const row = list.stdout.split('\n').find((l) => l.startsWith(BAD)) ?? '';
      expect(row).toMatch(new RegExp(`^${BAD}\\s+-\\s+${BAD}\\s+-\\s+-\\s+-\\s+-\\s+-\\s+-\\s+skipped: container ${BAD} label backer.interval: .*cron`));

      const json = await run(['mandates', 'list', '--json']);
      expect(json.code).toBe(0);
      expect((JSON.parse(json.stdout) as MandatesReply).skipped.find((m) => m.name === BAD)).toEqual(skipped);

      // Unknown names are still "not found"; the good mandate still runs; the daemon still answers.
      const missing = await run(['backup', 'mandates-nope', '--wait']);
      expect(missing.code).toBe(4);
      const good = await run(['backup', 'mandates-files', '--wait']);
      expect(good.code).toBe(0);
      expect(await callApi<{ status: string }>(socket, 'GET', '/v1/health')).toMatchObject({ status: 'ok' });
    } finally {
      daemon.child.kill('SIGTERM');
      const code = await new Promise<number | null>((resolve) => daemon.child.on('close', resolve));
      expect(code).toBe(0);
    }
  });

  it('backup --once of a skipped mandate also exits 2 with the problem', async () => {
    const r = await run(['backup', BAD, '--once']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`mandate ${BAD} exists but is skipped`);
    expect(r.stderr).toContain('backer.interval');
  });
});
