/**
 * `metrics.listen`: loopback addresses only, checked when the config is loaded (`backer config
 * check` and `backer daemon` refuse any other address, naming the key and the alternative); a port
 * that is taken stops the daemon at start with the reason, and a daemon that runs keeps answering
 * on its socket and on the metrics port while scrapes come in.
 */
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { callApi } from '../src/cli/client.js';
import { metricsConfigSchema, parseListen } from '../src/metrics/schema.js';
import { cli } from './helpers/cli.js';
import { spawnDaemon, waitForHealth, type DaemonProcess } from './helpers/daemon-proc.js';
import { createTestEnv } from './helpers/env.js';
import { freePort, httpText } from './helpers/metrics.js';

/** The exit code of a daemon that is expected to stop by itself. */
const exited = (daemon: DaemonProcess): Promise<number | null> =>
  daemon.child.exitCode !== null ? Promise.resolve(daemon.child.exitCode) : new Promise((resolve) => daemon.child.once('exit', (c) => resolve(c)));
const withListen = (listen: string): Promise<{ configPath: string; dir: string }> => createTestEnv('mx-listen', `metrics:\n  listen: "${listen}"\n`);

describe('parseListen', () => {
  it('accepts loopback HOST:PORT forms', () => {
    expect(parseListen('127.0.0.1:9464')).toEqual({ host: '127.0.0.1', port: 9464 });
    expect(parseListen('127.0.0.53:1')).toEqual({ host: '127.0.0.53', port: 1 });
    expect(parseListen('[::1]:9464')).toEqual({ host: '::1', port: 9464 });
    expect(parseListen('localhost:65535')).toEqual({ host: 'localhost', port: 65535 });
  });

  it('refuses other addresses, naming the API with a read token as the way', () => {
    for (const text of ['0.0.0.0:9464', '192.168.1.5:9464', '[::]:9464', 'backup-host:9464']) {
      expect(parseListen(text), text).toMatch(/is not a loopback address: .*use GET \/metrics of the API \(api\.listen\) with a read token instead$/);
    }
  });

  it('refuses what is no HOST:PORT', () => {
    for (const text of ['9464', '127.0.0.1', '127.0.0.1:0', '127.0.0.1:70000', '::1:9464', '127.0.0.1:94x']) {
      expect(parseListen(text), text).toBe(`expected HOST:PORT such as 127.0.0.1:9464, got ${JSON.stringify(text)}`);
    }
    expect(metricsConfigSchema.safeParse({ listen: '127.0.0.1:9464', port: 1 }).success).toBe(false);
  });
});

describe('a non-loopback metrics.listen', () => {
  it('is a config problem for backer config check, naming metrics.listen (exit 1: problems found)', async () => {
    const env = await withListen('0.0.0.0:9464');
    const r = await cli(['config', 'check', '--config', env.configPath]);
    expect(r.code, r.stdout + r.stderr).toBe(1);
    expect(r.stdout + r.stderr).toContain(`${env.configPath}: metrics.listen: 0.0.0.0 is not a loopback address`);
    expect(r.stdout + r.stderr).toContain('with a read token instead');
  });

  it('stops backer daemon before it binds anything (CONFIG_INVALID, exit 2)', async () => {
    const env = await withListen('0.0.0.0:9464');
    const daemon = spawnDaemon(env.configPath);
    expect(await exited(daemon)).toBe(2);
    expect(daemon.output()).toContain('metrics.listen: 0.0.0.0 is not a loopback address');
  }, 60_000);
});

describe('a metrics.listen port that is taken', () => {
  let blocker: Server;
  let port: number;

  beforeAll(async () => {
    port = await freePort();
    blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(port, '127.0.0.1', resolve));
  });

  afterAll(async () => {
    await new Promise<void>((resolve) => blocker.close(() => resolve()));
  });

  it('stops the daemon at start with the reason; with the port free it starts and answers', async () => {
    const env = await createTestEnv('mx-taken', `metrics:\n  listen: 127.0.0.1:${port}\n`);
    const taken = spawnDaemon(env.configPath);
    const code = await exited(taken);
    expect(code, taken.output()).not.toBe(0);
    expect(taken.output()).toMatch(new RegExp(`metrics\\.listen 127\\.0\\.0\\.1:${port}: cannot listen \\(.*EADDRINUSE`));
    await new Promise<void>((resolve) => blocker.close(() => resolve()));
    blocker = createServer();
    const socket = join(env.dir, 'data', 'backer.sock');
    const daemon = spawnDaemon(env.configPath);
    try {
      await waitForHealth(daemon, socket, 60_000);
      const scrapes = await Promise.all([1, 2, 3].map(() => httpText({ port }, '/metrics')));
      for (const s of scrapes) expect(s.status).toBe(200);
      expect((await callApi<{ status: string }>(socket, 'GET', '/v1/health')).status).toBe('ok');
    } finally {
      expect(await daemon.stop()).toBe(0);
    }
    // Closed with the daemon: nothing answers on the port any more.
    await expect(httpText({ port }, '/metrics')).rejects.toThrow(/ECONNREFUSED/);
  }, 120_000);
});
