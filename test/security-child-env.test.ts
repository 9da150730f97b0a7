import { open, mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { callApi } from '../src/cli/client.js';
import { childEnv, DEFAULT_PATH } from '../src/util/child-env.js';
import { cli } from './helpers/cli.js';
import { spawnDaemon, waitForHealth } from './helpers/daemon-proc.js';
import { CCRYPT_KEY, createTestEnv, filesMandateYaml, localFiles, type TestEnv } from './helpers/env.js';
import { allCommandLines } from './helpers/proc.js';

// Every program Backer starts on the host gets PATH and its own secret, never Backer's
// environment (cloud keys, the keys of every middleware, whatever the config expands).

const AWS_SECRET = 'aws-secret-Zq8vT1pLw0';
const MY_SECRET = 'my-secret-Kd73hFq2';
const MANDATE = 'secenv-files';
let env: TestEnv;
let filesDir: string;

beforeAll(async () => {
  env = await createTestEnv(
    'secenv',
    `mandates:\n${filesMandateYaml(MANDATE, 'SECENV_FILES', { target: 'local', middleware: 'zstd,encryption' })}`,
  );
  filesDir = join(env.dir, 'files');
  await mkdir(filesDir, { recursive: true });
  await writeFile(join(filesDir, 'a.txt'), 'alpha\n');
  // A sparse file: tar reads 1 GiB of zeros (no disk used) and stays alive long enough to be looked at.
  const big = await open(join(filesDir, 'sparse.bin'), 'w');
  await big.truncate(1024 * 1024 * 1024);
  await big.close();
});

interface ChildSeen {
  pid: number;
  comm: string;
  env: Record<string, string>;
}

async function childrenOf(parent: number): Promise<ChildSeen[]> {
  const out: ChildSeen[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = await readFile(`/proc/${entry}/stat`, 'utf8').catch(() => '');
    // pid (comm) state ppid ...: comm may hold spaces, so split after the last ')'.
    const close = stat.lastIndexOf(')');
    const ppid = Number(stat.slice(close + 2).split(' ')[1]);
    if (close < 0 || ppid !== parent) continue;
    const raw = await readFile(`/proc/${entry}/environ`, 'utf8').catch(() => undefined);
    if (raw === undefined) continue;
    const vars = Object.fromEntries(raw.split('\0').filter((v) => v !== '').map((v) => [v.slice(0, v.indexOf('=')), v.slice(v.indexOf('=') + 1)]));
    out.push({ pid: Number(entry), comm: stat.slice(stat.indexOf('(') + 1, close), env: vars });
  }
  return out;
}

describe('environment of child processes', () => {
  it('childEnv holds PATH and the given variables only', () => {
    expect(childEnv({}, { PATH: '/p', AWS_SECRET_ACCESS_KEY: 'x', HOME: '/root', LANG: 'C.UTF-8' })).toEqual({ PATH: '/p' });
    expect(childEnv({ BACKER_CCRYPT_KEY: 'k' }, { PATH: '/p', MY_SECRET: 's' })).toEqual({ PATH: '/p', BACKER_CCRYPT_KEY: 'k' });
    expect(childEnv({}, {})).toEqual({ PATH: DEFAULT_PATH });
    expect(childEnv({}, { PATH: '' })).toEqual({ PATH: DEFAULT_PATH });
  });

  it('tar, zstd and ccrypt started by a daemon process see none of its variables', async () => {
    const daemon = spawnDaemon(env.configPath, { env: { SECENV_FILES: filesDir, AWS_SECRET_ACCESS_KEY: AWS_SECRET, MY_SECRET } });
    const socket = join(env.dir, 'data', 'backer.sock');
    const pid = daemon.child.pid ?? -1;
    const seen = new Map<string, ChildSeen>();
    const argvs = new Set<string>();
    try {
      await waitForHealth(daemon, socket);
      const backup = cli(['backup', MANDATE, '--wait', '--config', env.configPath], { SECENV_FILES: filesDir });
      let finished = false;
      void backup.finally(() => (finished = true));
      while (!finished) {
        for (const child of await childrenOf(pid)) if (!seen.has(child.comm)) seen.set(child.comm, child);
        for (const p of await allCommandLines()) argvs.add(p.argv);
        await new Promise((r) => setTimeout(r, 5));
      }
      const result = await backup;
      expect(result.stdout).toMatch(/succeeded/);
      expect(result.code).toBe(0);
      expect((await localFiles(env, MANDATE)).some((f) => f.endsWith('.tar.zst.cpt'))).toBe(true);
      expect((await callApi<{ status: string }>(socket, 'GET', '/v1/health')).status).toBe('ok');
    } finally {
      expect(await daemon.stop()).toBe(0);
    }

    // esbuild is the child of tsx, which runs the daemon from source in tests; Backer starts the rest.
    expect([...seen.keys()].filter((comm) => comm !== 'esbuild').sort()).toEqual(['ccrypt', 'tar', 'zstd']);
    const path = process.env['PATH'];
    expect(seen.get('tar')?.env).toEqual({ PATH: path });
    expect(seen.get('zstd')?.env).toEqual({ PATH: path });
    // ccrypt -E wipes the key from its own environment once read: the variable is there, maybe emptied.
    expect(Object.keys(seen.get('ccrypt')?.env ?? {}).sort()).toEqual(['BACKER_CCRYPT_KEY', 'PATH']);
    expect(seen.get('ccrypt')?.env['PATH']).toBe(path);
    expect(['', CCRYPT_KEY]).toContain(seen.get('ccrypt')?.env['BACKER_CCRYPT_KEY']);
    // Neither in argv of any process on the host, nor in the daemon's log.
    const s3Secret = inject('s3').secretAccessKey;
    for (const secret of [AWS_SECRET, MY_SECRET, CCRYPT_KEY, s3Secret]) {
      expect([...argvs].filter((argv) => argv.includes(secret))).toEqual([]);
      expect(daemon.output()).not.toContain(secret);
    }
  });
});
