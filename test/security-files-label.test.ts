import { execFileSync } from 'node:child_process';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { callApi } from '../src/cli/client.js';
import { parseConfigText } from '../src/config/load.js';
import type { ConfigProblem } from '../src/config/problems.js';
import { parseMandate } from '../src/mandates/parse.js';
import { sources } from '../src/sources/index.js';
import { cli } from './helpers/cli.js';
import { spawnDaemon, waitForHealth } from './helpers/daemon-proc.js';
import { createTestEnv, localFiles, type TestEnv } from './helpers/env.js';
import { docker, HOST_IMAGE } from './setup/services.js';

// `backer.type=files` on a container label would let anyone who can start a container read any
// host file (backer.files.path=/etc → /etc/shadow in the artifact). Only the config may ask for it.

const host = (): string => inject('dockerHost');
const LABELLED = 'secfl-label-etc';
const OVERLAID = 'secfl-overlay-etc';
const STATIC_CONTAINER = 'secfl-static-host';
let env: TestEnv;
let hostDir: string;

async function startIdle(name: string, labels: Record<string, string>): Promise<void> {
  const args = ['run', '-d', '--name', name, '--network', 'none', '-v', '/usr:/usr:ro', '-v', '/etc:/etc:ro'];
  for (const [k, v] of Object.entries(labels)) args.push('--label', `${k}=${v}`);
  await docker(host(), [...args, HOST_IMAGE, 'sleep', '600']);
}

beforeAll(async () => {
  env = await createTestEnv(
    'secfl',
    `mandates:
  secfl-static-files:
    container: ${STATIC_CONTAINER}
    type: files
    target: local
    interval: "0 0 29 2 *"
    files:
      path: \${SECFL_HOST_DIR}
  secfl-overlay:
    container: ${OVERLAID}
    target: local
    interval: "0 0 29 2 *"
`,
  );
  hostDir = join(env.dir, 'host-dir');
  await mkdir(hostDir, { recursive: true });
  await writeFile(join(hostDir, 'data.txt'), 'config-chosen data\n');
  await Promise.all([
    // A label mandate asking for a host directory: refused.
    startIdle(LABELLED, { 'backer.enabled': 'true', 'backer.type': 'files', 'backer.files.path': '/etc', 'backer.target': 'local' }),
    // A static mandate over a container whose labels pick files and /etc: the labels may not decide that.
    startIdle(OVERLAID, { 'backer.type': 'files', 'backer.files.path': '/etc' }),
    // A static files mandate that names a container (and labels it too): the config says files, so it runs.
    startIdle(STATIC_CONTAINER, { 'backer.enabled': 'true', 'backer.type': 'files', 'backer.files.path': '/etc' }),
  ]);
});

afterAll(async () => {
  await docker(host(), ['rm', '-f', LABELLED, OVERLAID, STATIC_CONTAINER]).catch(() => undefined);
});

const extraEnv = (): Record<string, string> => ({ SECFL_HOST_DIR: hostDir });
const ours = (problems: ConfigProblem[]): ConfigProblem[] =>
  problems.filter((p) => [LABELLED, OVERLAID, STATIC_CONTAINER, 'secfl-'].some((name) => p.where.includes(name)));

const LABEL_REFUSED = /source type files reads the Docker host's files and is refused on container labels .*static mandate/;
const OVERLAY_REFUSED = /a files mandate reads the Docker host's files: its type and files\.\* options are taken only from the config/;

describe('files source on container labels', () => {
  it('parseMandate refuses type files from labels and accepts it from the config', () => {
    const { config } = parseConfigText('targets: [{ name: local, type: local, path: /b }]', 'backer.yml', {}, '/');
    const input = { name: 'x', raw: { type: 'files', 'files.path': '/etc' }, container: 'x', config, sources };
    const labels = parseMandate({ ...input, origin: 'labels', describe: (k) => `container x label backer.${k}` });
    expect(labels.mandate).toBeUndefined();
    expect(labels.problems).toEqual([{ where: 'container x label backer.type', message: expect.stringMatching(LABEL_REFUSED) as string }]);
    const fromConfig = parseMandate({ ...input, origin: 'config', describe: (k) => `backer.yml: mandates.x.${k}` });
    expect(fromConfig.problems).toEqual([]);
    expect(fromConfig.mandate?.source).toMatchObject({ type: 'files', options: { path: '/etc' } });
    const overlaid = parseMandate({ ...input, origin: 'config', labelKeys: new Set(['files.path']), describe: (k) => `container x label backer.${k}` });
    expect(overlaid.problems).toEqual([{ where: 'container x label backer.files.path', message: expect.stringMatching(OVERLAY_REFUSED) as string }]);
  });

  it('config check names the container and the label, and exits 1', async () => {
    const r = await cli(['config', 'check', '--json', '--config', env.configPath], extraEnv());
    expect(r.code).toBe(1);
    const report = JSON.parse(r.stdout) as { problems: ConfigProblem[]; mandates: string[] };
    expect(ours(report.problems)).toEqual(
      expect.arrayContaining([
        { where: `container ${LABELLED} label backer.type`, message: expect.stringMatching(LABEL_REFUSED) as string },
        { where: `container ${OVERLAID} label backer.type`, message: expect.stringMatching(OVERLAY_REFUSED) as string },
        { where: `container ${OVERLAID} label backer.files.path`, message: expect.stringMatching(OVERLAY_REFUSED) as string },
      ]),
    );
    expect(ours(report.problems)).toHaveLength(3);
    expect(report.mandates).toContain('secfl-static-files');
    expect(report.mandates).not.toContain(LABELLED);
    expect(report.mandates).not.toContain('secfl-overlay');
    const human = await cli(['config', 'check', '--config', env.configPath], extraEnv());
    expect(human.stdout).toContain(`container ${LABELLED} label backer.type: source type files reads the Docker host's files`);
  });

  it('a running daemon reports it in GET /v1/mandates and its log, runs no backup of it, and keeps the static files mandate', async () => {
    const daemon = spawnDaemon(env.configPath, { env: extraEnv() });
    const socket = join(env.dir, 'data', 'backer.sock');
    try {
      await waitForHealth(daemon, socket);
      const listing = await callApi<{ mandates: { name: string }[]; problems: ConfigProblem[] }>(socket, 'GET', '/v1/mandates');
      expect(listing.mandates.map((m) => m.name)).toContain('secfl-static-files');
      expect(listing.mandates.map((m) => m.name)).not.toContain(LABELLED);
      expect(listing.problems).toContainEqual({ where: `container ${LABELLED} label backer.type`, message: expect.stringMatching(LABEL_REFUSED) as string });
      expect(listing.problems).toContainEqual({ where: `container ${OVERLAID} label backer.files.path`, message: expect.stringMatching(OVERLAY_REFUSED) as string });
      expect(daemon.output()).toContain(`container ${LABELLED} label backer.type`);

      for (const refused of [LABELLED, 'secfl-overlay']) {
        const r = await cli(['backup', refused, '--wait', '--config', env.configPath], extraEnv());
        expect(r.code).not.toBe(0);
        expect(r.stderr).toMatch(new RegExp(refused));
        expect(await localFiles(env, refused)).toEqual([]);
      }

      const ok = await cli(['backup', 'secfl-static-files', '--wait', '--config', env.configPath], extraEnv());
      expect(ok.stdout).toMatch(/succeeded/);
      expect(ok.code).toBe(0);
      const artifact = (await localFiles(env, 'secfl-static-files')).find((f) => f.endsWith('.tar')) ?? '';
      // The config's directory, not the /etc that the container's labels name.
      const members = execFileSync('tar', ['-tf', join(env.dir, 'backups', 'secfl-static-files', artifact)], { encoding: 'utf8' });
      expect(members.split('\n').filter((m) => m !== '').sort()).toEqual(['./', './data.txt']);

      const health = await callApi<{ status: string }>(socket, 'GET', '/v1/health');
      expect(health.status).toBe('ok');
    } finally {
      expect(await daemon.stop()).toBe(0);
    }
    // Nothing of the refused mandates anywhere under the target.
    expect((await readdir(join(env.dir, 'backups'))).sort()).toEqual(['secfl-static-files']);
  });
});
