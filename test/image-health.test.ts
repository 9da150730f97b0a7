/**
 * What the container image relies on, against a real daemon process: `backer health` (the image's
 * HEALTHCHECK) and the volume helper image's default (Backer's own image inside a container).
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createLogger, SecretRegistry } from '../src/logging/logger.js';
import type { Job } from '../src/queue/types.js';
import { defaultHelperImage, FALLBACK_HELPER_IMAGE, ownContainerId } from '../src/sources/helper-image.js';
import { cli } from './helpers/cli.js';
import { spawnDaemon, waitForHealth, type DaemonProcess } from './helpers/daemon-proc.js';
import { createTestEnv, type TestEnv } from './helpers/env.js';
import { docker, HOST_IMAGE } from './setup/services.js';

const host = (): string => inject('dockerHost');
const APP = `bk-imghealth-app-${randomBytes(3).toString('hex')}`;
const ID = 'a'.repeat(52) + '0123456789ab';

let env: TestEnv;
let daemon: DaemonProcess;

beforeAll(async () => {
  env = await createTestEnv('imghealth');
  const args = ['run', '-d', '--name', APP, '--network', 'none', '-v', '/usr:/usr:ro', '-v', '/etc:/etc:ro', '-v', '/data'];
  args.push('--label', 'backer.enabled=true', '--label', 'backer.type=volume', '--label', 'backer.target=local', '--label', 'backer.middleware=');
  await docker(host(), [...args, HOST_IMAGE, 'bash', '-c', 'trap "exit 0" TERM; while :; do sleep 1 & wait $!; done']);
  // No volume.helper_image in the config: the default applies, here an image the engine lacks.
  daemon = spawnDaemon(env.configPath, { env: { BACKER_HELPER_IMAGE: 'bk-imghealth-missing:none' } });
  await waitForHealth(daemon, join(env.dir, 'data', 'backer.sock'));
});

afterAll(async () => {
  await daemon.stop();
  await docker(host(), ['rm', '-f', '-v', APP]).catch(() => undefined);
});

describe('backer health', () => {
  it('exits 0 and prints ok while the daemon answers on its socket', async () => {
    const text = await cli(['health', '--config', env.configPath]);
    expect(text).toMatchObject({ code: 0 });
    expect(text.stdout).toMatch(/^ok \(backer \d+\.\d+\.\d+/);
    const json = await cli(['health', '--json', '--config', env.configPath]);
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout)).toMatchObject({ status: 'ok' });
  });

  it('exits 3 with the socket in the message when no daemon answers', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'bk-imghealth-none-'));
    await writeFile(join(dir, 'backer.yml'), `data_dir: ${dir}/data\ndocker:\n  enabled: false\n`);
    const result = await cli(['health', '--config', join(dir, 'backer.yml')]);
    expect(result.code).toBe(3);
    expect(result.stderr).toContain(`cannot reach the Backer daemon at ${dir}/data/backer.sock`);
  });
});

describe('the volume helper image default', () => {
  it('finds the container id in mountinfo, else in a container-style hostname', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'bk-imghealth-mi-'));
    const mountinfo = join(dir, 'mountinfo');
    await writeFile(mountinfo, `612 600 254:1 /var/lib/docker/containers/${ID}/hostname /etc/hostname rw,relatime - ext4 /dev/vda rw\n`);
    expect(await ownContainerId(mountinfo, 'my-host')).toBe(ID);
    await writeFile(mountinfo, '25 1 254:1 / / rw,relatime - ext4 /dev/vda rw\n');
    expect(await ownContainerId(mountinfo, '0123456789ab')).toBe('0123456789ab');
    expect(await ownContainerId(mountinfo, 'my-host')).toBeNull();
    expect(await ownContainerId(join(dir, 'missing'), 'my-host')).toBeNull();
  });

  it('is BACKER_HELPER_IMAGE when set, else busybox:stable outside a container of this engine', async () => {
    const engine = new Docker({ socketPath: host().replace(/^unix:\/\//, '') });
    const logger = createLogger({ level: 'error', secrets: new SecretRegistry() });
    expect(await defaultHelperImage(engine, logger, { BACKER_HELPER_IMAGE: 'my/helper:1' })).toBe('my/helper:1');
    // The test process runs in no container of the private engine (maybe in one of another engine).
    expect(await defaultHelperImage(engine, logger, {})).toBe(FALLBACK_HELPER_IMAGE);
  });

  it('fails the job with a clear reason when the default image is missing, and the daemon keeps answering', async () => {
    const result = await cli(['backup', APP, '--wait', '--json', '--config', env.configPath]);
    expect(result.code).toBe(1);
    const job = JSON.parse(result.stdout) as Job;
    expect(job.state).toBe('failed');
    expect(job.error).toMatchObject({ code: 'TOOL_MISSING' });
    expect(job.error?.message).toContain(`helper image bk-imghealth-missing:none for the volumes of container ${APP} is not on the Docker engine`);
    expect((await cli(['health', '--config', env.configPath])).code).toBe(0);
    expect(await docker(host(), ['ps', '-aq', '--filter', `label=backer.helper.container=${APP}`])).toBe('');
  });
});
