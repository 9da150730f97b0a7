/**
 * The stall watchdog through a real `backer daemon` process: a volume copy whose helper container
 * is frozen (`docker pause`: no byte moves, nothing fails) is stopped after queue.stall_timeout,
 * fails with JOB_STALLED, leaves no helper and no stopped container behind, and the mandate's next
 * backup runs.
 */
import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { callApi } from '../src/cli/client.js';
import type { AnyJob, JobEvent } from '../src/queue/types.js';
import { spawnDaemon, waitForHealth, type DaemonProcess } from './helpers/daemon-proc.js';
import { createTestEnv, type TestEnv } from './helpers/env.js';
import { VOLUME_HELPER_YAML, volumeMandateYaml } from './helpers/volume-config.js';
import { docker, HOST_IMAGE } from './setup/services.js';

const ID = randomBytes(3).toString('hex');
const APP = `stall-app-${ID}`;
const VOLUME = `stall-data-${ID}`;
const IDLE = 'trap "exit 0" TERM; while :; do sleep 1 & wait $!; done';
const host = (): string => inject('dockerHost');
let env: TestEnv;
let daemon: DaemonProcess;
let socket: string;

const helpers = (): Promise<string> => docker(host(), ['ps', '-aq', '--filter', 'label=backer.helper=true', '--filter', `label=backer.helper.container=${APP}`]);
const waitJob = (id: string): Promise<{ job: AnyJob; history: JobEvent[] }> => callApi(socket, 'GET', `/v1/jobs/${id}?wait=120`);
const trigger = async (): Promise<AnyJob> => (await callApi<{ job: AnyJob }>(socket, 'POST', `/v1/mandates/${APP}/backups`)).job;

beforeAll(async () => {
  await docker(host(), ['run', '-d', '--name', APP, '--network', 'none', '-v', '/usr:/usr:ro', '-v', '/etc:/etc:ro', '-v', `${VOLUME}:/data`, HOST_IMAGE, 'bash', '-c', IDLE]);
  await docker(host(), ['exec', APP, 'bash', '-c', 'head -c 64M /dev/urandom > /data/big.bin']);
  env = await createTestEnv('stall', `mandates:\n${volumeMandateYaml(APP, APP)}    volume:\n      stop: true\n${VOLUME_HELPER_YAML}`);
  const yaml = await readFile(env.configPath, 'utf8');
  if (!yaml.includes('queue:\n  concurrency: 2\n')) throw new Error('the test config no longer has its queue section');
  await writeFile(env.configPath, yaml.replace('queue:\n  concurrency: 2\n', 'queue:\n  concurrency: 2\n  stall_timeout: 3s\n'));
  socket = join(env.dir, 'data', 'backer.sock');
  daemon = spawnDaemon(env.configPath);
  await waitForHealth(daemon, socket);
}, 60_000);

afterAll(async () => {
  expect(await daemon.stop()).toBe(0);
  await docker(host(), ['rm', '-f', APP]).catch(() => undefined);
  await docker(host(), ['volume', 'rm', '-f', VOLUME]).catch(() => undefined);
});

describe('queue.stall_timeout', () => {
  it('fails a copy whose bytes stopped moving, cleans up, and the next backup of the mandate runs', async () => {
    const job = await trigger();
    // The helper runs once the container is stopped for the copy: freeze it.
    let helper = '';
    for (let i = 0; i < 200 && helper === ''; i++) {
      helper = await docker(host(), ['ps', '-q', '--filter', 'status=running', '--filter', 'label=backer.helper=true', '--filter', `label=backer.helper.container=${APP}`]);
      if (helper === '') await new Promise((r) => setTimeout(r, 50));
    }
    expect(helper).not.toBe('');
    await docker(host(), ['pause', helper]);

    const { job: done, history } = await waitJob(job.id);
    expect(done.state, JSON.stringify(history)).toBe('failed');
    expect(done.error?.code).toBe('JOB_STALLED');
    expect(done.error?.message).toMatch(/no progress for 3s \(queue\.stall_timeout\): the job was stopped/);
    // Stalled is permanent: one attempt, no retry of a hang.
    expect(done.attempts).toBe(1);
    expect(await helpers()).toBe('');
    expect(await docker(host(), ['inspect', '-f', '{{.State.Running}}', APP])).toBe('true');
    expect((await callApi<{ status: string }>(socket, 'GET', '/v1/health')).status).toBe('ok');

    const next = await waitJob((await trigger()).id);
    expect(next.job.state).toBe('succeeded');
  }, 120_000);
});
