import { afterAll, beforeAll, expect, inject, it } from 'vitest';
import type { Daemon } from '../src/daemon/daemon.js';
import { createTestEnv, startDaemon } from './helpers/env.js';
import { docker, HOST_IMAGE } from './setup/services.js';

const host = (): string => inject('dockerHost');
let daemon: Daemon;

async function until(check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 100));
  }
}

const names = (): string[] => daemon.services.discovery.current().mandates.map((m) => m.name);

beforeAll(async () => {
  daemon = await startDaemon(await createTestEnv('disc'));
});

afterAll(async () => {
  await daemon?.close();
  await docker(host(), ['rm', '-f', 'disc-late']).catch(() => undefined);
});

it('follows Docker events: a labelled container appears on start and its mandate goes on destroy', async () => {
  expect(names()).not.toContain('disc-late');
  await docker(host(), [
    'run', '-d', '--name', 'disc-late', '--network', 'none', '-v', '/usr:/usr:ro',
    '-e', 'MYSQL_ROOT_PASSWORD=x',
    '--label', 'backer.enabled=true', '--label', 'backer.type=mysql',
    '--label', 'backer.interval=*/10 * * * *', '--label', 'backer.mysql.password=Env:MYSQL_ROOT_PASSWORD',
    HOST_IMAGE, 'sleep', 'infinity',
  ]);
  await until(() => names().includes('disc-late'));
  expect(daemon.scheduler.nextRun('disc-late')).toBeInstanceOf(Date);
  const mandate = daemon.services.discovery.current().mandates.find((m) => m.name === 'disc-late');
  expect(mandate).toMatchObject({ interval: '*/10 * * * *', targets: ['local'], retention: 10, origin: 'labels' });

  await docker(host(), ['rm', '-f', 'disc-late']);
  await until(() => !names().includes('disc-late'));
  expect(daemon.scheduler.nextRun('disc-late')).toBeNull();
});
