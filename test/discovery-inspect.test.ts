/**
 * Discovery against the private engine, through a dockerode whose inspect() is counted: an event
 * re-inspects only the container it names; a full refresh (SIGHUP) all of them, the periodic re-list
 * none (test/scale-containers.test.ts).
 */
import Docker from 'dockerode';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, expect, inject, it } from 'vitest';
import { loadConfigOrThrow } from '../src/config/load.js';
import { createDiscovery, type Discovery } from '../src/discovery/discovery.js';
import { createLogger, SecretRegistry } from '../src/logging/logger.js';
import { sources } from '../src/sources/index.js';
import { createTestEnv, testProcessEnv } from './helpers/env.js';
import { docker, HOST_IMAGE } from './setup/services.js';

const host = (): string => inject('dockerHost');
const NAMES = [0, 1, 2, 3, 4, 5].map((i) => `dinsp-${i}`);
const inspects = new Map<string, number>();
const ids = new Map<string, string>();
let discovery: Discovery;

function countingDocker(real: Docker): Docker {
  const wrapped = Object.create(real) as Docker;
  wrapped.getContainer = (id: string) => {
    const container = real.getContainer(id);
    const inspect = container.inspect.bind(container) as () => Promise<Docker.ContainerInspectInfo>;
    container.inspect = (() => {
      inspects.set(id, (inspects.get(id) ?? 0) + 1);
      return inspect();
    }) as typeof container.inspect;
    return container;
  };
  return wrapped;
}

async function run(name: string): Promise<string> {
  const args = ['run', '-d', '--name', name, '--network', 'none', '-v', '/usr:/usr:ro', '-e', 'MYSQL_ROOT_PASSWORD=x'];
  const labels = ['backer.enabled=true', 'backer.type=mysql', 'backer.interval=0 0 29 2 *', 'backer.mysql.password=Env:MYSQL_ROOT_PASSWORD'];
  const id = (await docker(host(), [...args, ...labels.flatMap((l) => ['--label', l]), HOST_IMAGE, 'sleep', 'infinity'])).trim();
  ids.set(name, id);
  return id;
}

/** Inspect calls per container of this file since `inspects` was cleared. */
const mine = (): Record<string, number> => Object.fromEntries([...ids].map(([name, id]) => [name, inspects.get(id) ?? 0]));

async function until(check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`condition not met in time: ${JSON.stringify(mine())}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const settle = (): Promise<void> => new Promise((r) => setTimeout(r, 1000));
const names = (): string[] => discovery.current().mandates.map((m) => m.name);

beforeAll(async () => {
  for (const name of NAMES) await run(name);
  const env = await createTestEnv('dinsp');
  const config = await loadConfigOrThrow(env.configPath, testProcessEnv());
  const logger = createLogger({ level: 'warn', format: 'json', secrets: new SecretRegistry(), destination: new Writable({ write: (_c, _e, cb) => cb() }) });
  discovery = createDiscovery({
    docker: countingDocker(new Docker({ socketPath: host().replace(/^unix:\/\//, '') })),
    config,
    configFile: env.configPath,
    sources,
    logger,
    onSnapshot: () => undefined,
  });
  await discovery.start();
}, 60_000);

afterAll(async () => {
  await discovery?.close();
  await docker(host(), ['rm', '-f', ...NAMES, 'dinsp-new']).catch(() => undefined);
});

it('inspects every labelled container once at start', () => {
  expect(names()).toEqual(expect.arrayContaining(NAMES));
  expect(mine()).toEqual(Object.fromEntries(NAMES.map((n) => [n, 1])));
});

it('re-inspects only the container an event names', async () => {
  inspects.clear();
  await docker(host(), ['kill', 'dinsp-3']);
  await until(() => mine()['dinsp-3'] === 1);
  await settle();
  expect(mine()).toEqual({ ...Object.fromEntries(NAMES.map((n) => [n, 0])), 'dinsp-3': 1 });

  inspects.clear();
  await run('dinsp-new');
  await until(() => names().includes('dinsp-new'));
  await settle();
  expect(mine()).toEqual({ ...Object.fromEntries(NAMES.map((n) => [n, 0])), 'dinsp-new': 1 });
});

it('re-inspects every container on a full refresh, and forgets removed ones', async () => {
  inspects.clear();
  await discovery.refresh();
  expect(mine()).toEqual(Object.fromEntries([...NAMES, 'dinsp-new'].map((n) => [n, 1])));
  await docker(host(), ['rm', '-f', 'dinsp-new']);
  await until(() => !names().includes('dinsp-new'));
  expect(names()).toEqual(expect.arrayContaining(NAMES));
});
