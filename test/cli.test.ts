import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { Manifest } from '../src/manifests/schema.js';
import { cli, spawnCli } from './helpers/cli.js';
import { createTestEnv, type TestEnv } from './helpers/env.js';
import { ROOT_PASSWORD, seedShop, startMariaDb } from './helpers/mariadb.js';
import { docker } from './setup/services.js';

const host = (): string => inject('dockerHost');
let env: TestEnv;
let filesDir: string;

beforeAll(async () => {
  env = await createTestEnv(
    'cli',
    `mandates:
  static-shop:
    container: static-db
    type: mysql
    interval: "0 0 29 2 *"        # never during a test run: backups here are triggered by hand
    target: [local, s3]
    middleware: compression
    retention: 3
    mysql:
      password: Env:MYSQL_ROOT_PASSWORD
      database: shop
      options:
        single-transaction: true
  host-files:
    type: files
    interval: "0 0 29 2 *"
    target: local
    files:
      path: \${TEST_FILES_DIR}
`,
  );
  filesDir = join(env.dir, 'files');
  await mkdir(join(filesDir, 'sub'), { recursive: true });
  await writeFile(join(filesDir, 'a.txt'), 'alpha\n');
  await writeFile(join(filesDir, 'sub', 'b.txt'), 'beta\n');
  // Not labelled for Backer: the static mandate supplies everything.
  await startMariaDb(host(), { name: 'static-db', labels: { 'com.example.app': 'shop' } });
  await seedShop(host(), 'static-db', 50);
});

afterAll(async () => {
  await docker(host(), ['rm', '-f', 'static-db']).catch(() => undefined);
});

const extraEnv = (): Record<string, string> => ({ TEST_FILES_DIR: filesDir });

describe('backer CLI', () => {
  it('config check accepts the config and lists the mandates', async () => {
    // Other test files' containers (some with bad labels on purpose) share the engine:
    // only problems of this config and its containers count here.
    const r = await cli(['config', 'check', '--json', '--config', env.configPath], extraEnv());
    const report = JSON.parse(r.stdout) as { problems: { where: string }[]; mandates: string[] };
    const ours = report.problems.filter((p) => p.where.includes(env.configPath) || p.where.includes('static-db'));
    expect(ours).toEqual([]);
    expect(report.mandates).toEqual(expect.arrayContaining(['static-shop', 'host-files']));
  });

  it('config check names the file, the path and what was expected, and exits non-zero', async () => {
    const bad = join(env.dir, 'bad.yml');
    await writeFile(bad, 'targets:\n  - name: s3\n    type: s3\n    region: 5\nqueue:\n  concurency: 3\n');
    const r = await cli(['config', 'check', '--config', bad]);
    expect(r.code).not.toBe(0);
    expect(r.stdout).toMatch(/bad\.yml: targets\[0\]\.bucket: .*/);
    expect(r.stdout).toMatch(/bad\.yml: queue.*concurency/);
    const daemon = await cli(['daemon', '--config', bad]);
    expect(daemon.code).toBe(2);
    expect(daemon.stderr).toMatch(/targets\[0\]\.bucket/);
  });

  it('backs up a static files mandate in-process with --once', async () => {
    const r = await cli(['backup', 'host-files', '--once', '--json', '--config', env.configPath], extraEnv());
    expect(r.code).toBe(0);
    const result = JSON.parse(r.stdout) as { status: string; targets: { artifact_key: string }[] };
    expect(result.status).toBe('succeeded');
    expect(result.targets[0]?.artifact_key).toMatch(/^host-files\/.*-host-files\.tar$/);
  });

  it('reports a tampered manifest instead of trusting it', async () => {
    const dir = join(env.dir, 'backups', 'host-files');
    const file = (await readdir(dir)).find((f) => f.endsWith('.manifest.json')) ?? '';
    const manifest = JSON.parse(await readFile(join(dir, file), 'utf8')) as Manifest;
    const tampered = { ...manifest, artifact: { ...manifest.artifact, size: manifest.artifact.size + 1 } };
    await writeFile(join(dir, file), JSON.stringify(tampered));
    const r = await cli(['backups', 'list', '--mandate', 'host-files', '--config', env.configPath], extraEnv());
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('no backups');
    expect(r.stderr).toMatch(/invalid manifest: artifact: artifact checksums differ from the last step/);
  });

  it('exits 3 when the daemon is not running', async () => {
    const r = await cli(['backup', 'static-shop', '--config', env.configPath], extraEnv());
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/cannot reach the Backer daemon/);
  });

  it('runs the daemon, backs up a static mandate over the socket, lists and shows it, stops on SIGTERM', async () => {
    const daemon = spawnCli(['daemon', '--config', env.configPath], extraEnv());
    const socket = join(env.dir, 'data', 'backer.sock');
    try {
      for (let i = 0; i < 200 && !existsSync(socket); i++) await new Promise((r) => setTimeout(r, 100));
      expect(existsSync(socket)).toBe(true);

      const second = await cli(['daemon', '--config', env.configPath], extraEnv());
      // The data_dir's state database is taken: refused (exit 5) before any socket is touched.
      expect(second.code).toBe(5);
      expect(second.stderr).toMatch(/another Backer daemon \(pid \d+\) uses data_dir /);

      const backup = await cli(['backup', 'static-shop', '--wait', '--config', env.configPath], extraEnv());
      expect(backup.stdout).toMatch(/succeeded/);
      expect(backup.code).toBe(0);

      const missing = await cli(['backup', 'nope', '--wait', '--config', env.configPath], extraEnv());
      expect(missing.code).toBe(4);
      expect(missing.stderr).toMatch(/no mandate named nope/);

      const list = await cli(['backups', 'list', '--mandate', 'static-shop', '--json', '--config', env.configPath], extraEnv());
      expect(list.code).toBe(0);
      const { backups } = JSON.parse(list.stdout) as { backups: Manifest[] };
      expect(backups.map((b) => b.target.name).sort()).toEqual(['local', 's3']);
      expect(backups[0]?.source).toMatchObject({ type: 'mysql', container: 'static-db', databases: ['shop'] });

      const show = await cli(['backups', 'show', backups[0]?.name ?? '', '--target', 's3', '--json', '--config', env.configPath], extraEnv());
      expect(show.code).toBe(0);
      expect((JSON.parse(show.stdout) as Manifest).artifact.key).toMatch(/^static-shop\/.*\.sql\.gz$/);

      const human = await cli(['backups', 'list', '--config', env.configPath], extraEnv());
      expect(human.stdout).toMatch(/NAME\s+MANDATE\s+TARGET/);
    } finally {
      daemon.child.kill('SIGTERM');
      const code = await new Promise<number | null>((resolve) => daemon.child.on('close', resolve));
      expect(code).toBe(0);
    }
    expect(existsSync(socket)).toBe(false);
    expect(daemon.output()).toContain('backer daemon stopped');
    expect(daemon.output()).not.toContain(ROOT_PASSWORD);
  });
});
