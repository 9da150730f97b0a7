/**
 * Discovery and scheduling at scale (issue 11, benchmark 8 in bench/containers.ts measures the
 * times): 100 labelled `sleep` containers on the private engine. A real `backer daemon` process
 * schedules every one of them and reconciles a relabelled container without touching the others'
 * schedules; in process, discovery inspects and parses each container once at start, only the
 * container an event names after that event, and nothing on its periodic re-list. Correctness
 * only: no timing is asserted. Only this file's containers (a random id in their names) count:
 * the engine is shared with other test files.
 */
import Docker from 'dockerode';
import { Writable } from 'node:stream';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { callApi } from '../src/cli/client.js';
import { loadConfigOrThrow } from '../src/config/load.js';
import { createDiscovery, type Discovery } from '../src/discovery/discovery.js';
import { createLogger, SecretRegistry } from '../src/logging/logger.js';
import { sources } from '../src/sources/index.js';
import type { SourceRegistry } from '../src/sources/registry.js';
import type { OptionOrigin, SourceDefinition } from '../src/sources/types.js';
import { spawnDaemon, waitForHealth, type DaemonProcess } from './helpers/daemon-proc.js';
import { createTestEnv, testProcessEnv, type TestEnv } from './helpers/env.js';
import { sleep, until } from './helpers/poll.js';
import { HOST_IMAGE } from './setup/services.js';

const COUNT = 100;
const NEVER = '0 0 29 2 *';
const RELABELLED = '15 4 29 2 *';
const rid = Math.random().toString(36).slice(2, 7);
const names = Array.from({ length: COUNT }, (_, i) => `scale-${rid}-${String(i).padStart(3, '0')}`);
const mine = new Set(names);
const api = new Docker({ socketPath: inject('dockerHost').replace(/^unix:\/\//, '') });
let env: TestEnv;

async function runContainer(name: string, interval: string): Promise<void> {
  const Labels = { 'backer.enabled': 'true', 'backer.type': 'sqlite', 'backer.sqlite.path': '/data/app.db', 'backer.interval': interval };
  const c = await api.createContainer({ name, Image: HOST_IMAGE, Cmd: ['sleep', 'infinity'], Labels, HostConfig: { Binds: ['/usr:/usr:ro'], NetworkMode: 'none' } });
  await c.start();
}

/** Runs `task` over `items`, 8 at a time. */
async function eachLimited<T>(items: readonly T[], task: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    for (let i = next++; i < items.length; i = next++) await task(items[i] as T);
  };
  await Promise.all(Array.from({ length: 8 }, worker));
}

beforeAll(async () => {
  env = await createTestEnv('scale');
  await eachLimited(names, (name) => runContainer(name, NEVER));
}, 110_000);

afterAll(async () => {
  await eachLimited(names, (name) => api.getContainer(name).remove({ force: true }).catch(() => undefined));
}, 110_000);

interface ListedMandate {
  name: string;
  interval: string;
  next_run: string | null;
}

describe('a backer daemon with 100 labelled containers', () => {
  let daemon: DaemonProcess;
  let socket: string;
  const listed = async (): Promise<ListedMandate[]> => (await callApi<{ mandates: ListedMandate[] }>(socket, 'GET', '/v1/mandates')).mandates.filter((m) => mine.has(m.name));

  beforeAll(async () => {
    daemon = spawnDaemon(env.configPath);
    socket = join(env.dir, 'data', 'backer.sock');
    await waitForHealth(daemon, socket, 90_000);
  }, 100_000);

  afterAll(async () => {
    await daemon?.stop();
  });

  it('schedules every one, and reconciles a relabelled container without touching the others', async () => {
    const before = await until(listed, (l) => l.length === COUNT && l.every((m) => m.next_run !== null), `all ${COUNT} mandates scheduled`, 60_000);
    const nextFeb29 = before[0]?.next_run;
    expect(nextFeb29).toMatch(/^\d{4}-02-29T00:00:00\.000Z$/);
    expect(before.every((m) => m.interval === NEVER && m.next_run === nextFeb29)).toBe(true);

    const changed = names[42] ?? '';
    await api.getContainer(changed).remove({ force: true });
    await runContainer(changed, RELABELLED);
    const after = await until(listed, (l) => l.find((m) => m.name === changed)?.interval === RELABELLED, 'the relabelled mandate', 30_000);
    expect(after).toHaveLength(COUNT);
    expect(after.find((m) => m.name === changed)?.next_run).toBe(nextFeb29?.replace('T00:00', 'T04:15'));
    expect(after.filter((m) => m.name !== changed)).toEqual(before.filter((m) => m.name !== changed));

    const gone = names[7] ?? '';
    await api.getContainer(gone).remove({ force: true });
    const fewer = await until(listed, (l) => !l.some((m) => m.name === gone), 'the removed mandate gone', 30_000);
    expect(fewer.map((m) => m.name).sort()).toEqual(names.filter((n) => n !== gone));
    await runContainer(gone, NEVER);
    await until(listed, (l) => l.some((m) => m.name === gone && m.next_run === nextFeb29), 'the recreated mandate scheduled', 30_000);
  }, 120_000);
});

describe('discovery with 100 labelled containers', () => {
  let discovery: Discovery;
  const inspects = new Map<string, number>();
  const parses = new Map<string, number>();
  const ids = new Map<string, string>();
  /** Inspections and parses of this file's containers (by name) since the counters were cleared. */
  const counts = (counter: Map<string, number>, byId: boolean): Record<string, number> =>
    Object.fromEntries([...counter].flatMap(([key, n]) => {
      const name = byId ? ids.get(key) : key;
      return name !== undefined && mine.has(name) ? [[name, n]] : [];
    }));

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

  /** The source registry with sqlite's option parser counted per container. */
  function countingSources(): SourceRegistry {
    const registry = new Map<string, SourceDefinition<unknown>>(sources);
    const sqlite = sources.get('sqlite');
    if (sqlite === undefined) throw new Error('no sqlite source');
    registry.set('sqlite', {
      ...sqlite,
      parse: (raw: Record<string, string>, origin: OptionOrigin) => {
        if (origin.container !== null) parses.set(origin.container, (parses.get(origin.container) ?? 0) + 1);
        return sqlite.parse(raw, origin);
      },
    });
    return registry;
  }

  beforeAll(async () => {
    for (const c of await api.listContainers({ all: true, filters: { name: [`scale-${rid}-`] } })) ids.set(c.Id, (c.Names[0] ?? '').replace(/^\//, ''));
    const config = await loadConfigOrThrow(env.configPath, testProcessEnv());
    const logger = createLogger({ level: 'warn', format: 'json', secrets: new SecretRegistry(), destination: new Writable({ write: (_c, _e, cb) => cb() }) });
    discovery = createDiscovery({ docker: countingDocker(api), config, configFile: env.configPath, sources: countingSources(), logger, onSnapshot: () => undefined, resyncMs: 1000 });
    await discovery.start();
  }, 60_000);

  afterAll(async () => {
    await discovery?.close();
  });

  it('inspects and parses each container once at start, only the named one after an event, nothing on a re-list', async () => {
    const once = Object.fromEntries(names.map((n) => [n, 1]));
    expect(discovery.current().mandates.filter((m) => mine.has(m.name))).toHaveLength(COUNT);
    expect(counts(inspects, true)).toEqual(once);
    expect(counts(parses, false)).toEqual(once);

    // Periodic re-lists (every second here): no inspection, no parse.
    inspects.clear();
    parses.clear();
    await sleep(3500);
    expect(counts(inspects, true)).toEqual({});
    expect(counts(parses, false)).toEqual({});

    // An event: only the container it names.
    const killed = names[3] ?? '';
    await api.getContainer(killed).kill();
    await until(() => Promise.resolve(counts(inspects, true)), (c) => c[killed] === 1, `${killed} inspected again`);
    await sleep(1500);
    expect(counts(inspects, true)).toEqual({ [killed]: 1 });
    expect(counts(parses, false)).toEqual({ [killed]: 1 });
  }, 60_000);
});
