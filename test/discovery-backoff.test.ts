import { existsSync } from 'node:fs';
import { readFile, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import Docker from 'dockerode';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { callApi } from '../src/cli/client.js';
import { loadConfigOrThrow } from '../src/config/load.js';
import { createDiscovery } from '../src/discovery/discovery.js';
import { createLogger, SecretRegistry } from '../src/logging/logger.js';
import { sources } from '../src/sources/index.js';
import { cli, spawnCli } from './helpers/cli.js';
import { createTestEnv, testProcessEnv, type TestEnv } from './helpers/env.js';

const engineSocket = (): string => inject('dockerHost').replace(/^unix:\/\//, '');
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const envs: TestEnv[] = [];

async function waitFor(check: () => boolean, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

/** A test env whose docker section is replaced (`docker:` block of createTestEnv). */
async function envWithDocker(label: string, docker: string): Promise<TestEnv> {
  const env = await createTestEnv(label);
  envs.push(env);
  const yaml = await readFile(env.configPath, 'utf8');
  const replaced = yaml.replace(/^docker:\n {2}socket_path: .*$/m, `docker:\n${docker}`);
  expect(replaced).not.toBe(yaml);
  await writeFile(env.configPath, replaced);
  return env;
}

/** Points `link` at `target` atomically (a new symlink renamed over the old one). */
async function pointLink(link: string, target: string): Promise<void> {
  await rm(`${link}.new`, { force: true });
  await symlink(target, `${link}.new`);
  await rename(`${link}.new`, link);
}

/** How many log lines of level info or above match (the test config logs debug lines too). */
function count(text: string, pattern: RegExp): number {
  const level = (line: string): number => {
    try {
      return (JSON.parse(line) as { level?: number }).level ?? 100;
    } catch {
      return 100; // not a log line (a crash trace): always counts
    }
  };
  return text.split('\n').filter((line) => line.trim() !== '' && level(line) >= 30 && pattern.test(line)).length;
}

afterAll(async () => {
  for (const env of envs) await rm(env.dir, { recursive: true, force: true });
});

describe('without Docker', () => {
  it('backs off from 5 s doubling (here scaled down), logs the state once, and recovers when the engine appears', async () => {
    const env = await envWithDocker('backoff', '  socket_path: ./engine.sock');
    const link = join(env.dir, 'engine.sock');
    await pointLink(link, join(env.dir, 'nothing-listens-here.sock'));
    const config = await loadConfigOrThrow(env.configPath, testProcessEnv());
    const lines: string[] = [];
    const destination = new Writable({
      write(chunk: Buffer, _enc, cb) {
        lines.push(chunk.toString());
        cb();
      },
    });
    const logger = createLogger({ level: 'debug', secrets: new SecretRegistry(), destination });
    const discovery = createDiscovery({
      docker: new Docker({ socketPath: config.docker.socket_path }),
      config,
      configFile: env.configPath,
      sources,
      logger,
      onSnapshot: () => undefined,
      retryBaseMs: 100,
      retryMaxMs: 800,
    });
    await discovery.start();
    try {
      await sleep(2500);
      const delays = lines.filter((l) => l.includes('subscribing to Docker events again later')).map((l) => (JSON.parse(l) as { retry_in_ms: number }).retry_in_ms);
      expect(delays.slice(0, 5)).toEqual([100, 200, 400, 800, 800]);
      expect(count(lines.join(''), /Docker is not reachable/)).toBe(1);
      expect(discovery.current().docker_error).toMatch(/nothing-listens-here\.sock|ENOENT|connect/);

      await pointLink(link, engineSocket());
      await waitFor(() => lines.join('').includes('Docker is reachable again'), 'Docker to be reachable again');
      // Re-listed right away, not at the next resync a minute later.
      await waitFor(() => discovery.current().docker_error === null, 'the snapshot to see Docker', 5000);
      await sleep(1000);
      const all = lines.join('');
      expect(count(all, /Docker is reachable again/)).toBe(1);
      expect(count(all, /Docker is not reachable/)).toBe(1);
    } finally {
      await discovery.close();
    }
  });

  it('a daemon process logs the unreachable state once in 12 s and "reachable again" once when the engine appears', async () => {
    const env = await envWithDocker('backoffd', '  socket_path: ./engine.sock');
    const link = join(env.dir, 'engine.sock');
    await pointLink(link, join(env.dir, 'nothing-listens-here.sock'));
    const daemon = spawnCli(['daemon', '--config', env.configPath]);
    try {
      await waitFor(() => daemon.output().includes('backer daemon started'), 'the daemon to start');
      await sleep(12_000);
      // Before the fix: "cannot subscribe to Docker events" every 5 s.
      expect(count(daemon.output(), /docker/i), daemon.output()).toBe(1);
      expect(daemon.output()).toMatch(/"level":40.*"msg":"Docker is not reachable; only static mandates without containers are available; retrying with backoff"/);

      // The next try is 15 s after start (5 s, then 10 s).
      await pointLink(link, engineSocket());
      await waitFor(() => daemon.output().includes('Docker is reachable again'), 'Docker to be reachable again', 30_000);
      await sleep(500);
      expect(count(daemon.output(), /Docker is reachable again/)).toBe(1);
      expect(count(daemon.output(), /Docker is not reachable/)).toBe(1);
      const socket = join(env.dir, 'data', 'backer.sock');
      expect((await callApi<{ status: string }>(socket, 'GET', '/v1/health')).status).toBe('ok');
      let dockerError: string | null = 'not asked yet';
      for (let i = 0; i < 50 && dockerError !== null; i++) {
        ({ docker_error: dockerError } = await callApi<{ docker_error: string | null }>(socket, 'GET', '/v1/mandates'));
        if (dockerError !== null) await sleep(100);
      }
      expect(dockerError).toBeNull();
    } finally {
      const closed = new Promise<number | null>((resolve) => daemon.child.once('close', resolve));
      daemon.child.kill('SIGTERM');
      expect(await closed).toBe(0);
    }
  });
});

describe('with docker.enabled: false', () => {
  it('config check and the daemon say nothing about Docker', async () => {
    const env = await envWithDocker('nodk', '  enabled: false');
    const check = await cli(['config', 'check', '--config', env.configPath]);
    expect(check.code, check.stdout + check.stderr).toBe(0);
    expect(check.stdout + check.stderr).not.toMatch(/docker/i);
    const json = await cli(['config', 'check', '--json', '--config', env.configPath]);
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout)).toMatchObject({ ok: true, docker_error: null });

    const daemon = spawnCli(['daemon', '--config', env.configPath]);
    try {
      await waitFor(() => daemon.output().includes('backer daemon started'), 'the daemon to start');
      const socket = join(env.dir, 'data', 'backer.sock');
      expect(existsSync(socket)).toBe(true);
      expect((await callApi<{ status: string }>(socket, 'GET', '/v1/health')).status).toBe('ok');
      await sleep(6000);
      expect(count(daemon.output(), /docker/i)).toBe(0);
    } finally {
      const closed = new Promise<number | null>((resolve) => daemon.child.once('close', resolve));
      daemon.child.kill('SIGTERM');
      expect(await closed).toBe(0);
    }
    expect(count(daemon.output(), /docker/i)).toBe(0);
  });
});
