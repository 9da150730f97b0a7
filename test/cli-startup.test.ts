/**
 * What the CLI does at start to start faster and hold less (issue 11, benchmark 6): Node's compile
 * cache in a private directory (src/cli/compile-cache.ts), which never fails or slows a command
 * when it cannot be used, and bin/backer.js's Node flags.
 */
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { capture, cliArgs } from './helpers/cli.js';

const BIN = fileURLToPath(new URL('../bin/backer.js', import.meta.url));
const DOCKER_CLIENT = fileURLToPath(new URL('../src/daemon/docker-client.ts', import.meta.url));
const uid = process.getuid?.() ?? -1;
let dir: string;
let configPath: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cli-startup-'));
  await mkdir(join(dir, 'files', 'sub'), { recursive: true });
  for (let i = 0; i < 4; i++) await writeFile(join(dir, 'files', i % 2 ? 'sub' : '', `f${i}.txt`), `file ${i}\n`.repeat(50));
  configPath = join(dir, 'backer.yml');
  await writeFile(
    configPath,
    `data_dir: ${dir}/data
log: { level: warn }
docker: { enabled: false }
targets:
  - { name: local, type: local, path: ${dir}/local }
mandates:
  tiny:
    type: files
    interval: "0 0 29 2 *"
    target: local
    files: { path: ${dir}/files }
`,
  );
});

/** `backup --once` of the tiny mandate with TMPDIR (Node's tmpdir()) set to `tmp`; must succeed. */
async function backupOnce(tmp: string, env: Record<string, string> = {}): Promise<void> {
  const { NODE_COMPILE_CACHE: _cache, NODE_DISABLE_COMPILE_CACHE: _disabled, ...inherited } = process.env;
  const r = await capture(process.execPath, cliArgs(['--config', configPath, 'backup', 'tiny', '--once']), { ...inherited, TMPDIR: tmp, ...env });
  expect(r.stderr).toBe('');
  // Two runs in one second: the second id gets the collision suffix (`-2`), as run-backup documents.
  expect(r.stdout).toMatch(/^backup \S+-tiny(-\d+)?: succeeded\n {2}local: succeeded tiny\/\S+\.tar\n$/);
  expect(r.code).toBe(0);
}

describe('compile cache', () => {
  it('is written to a private backer-compile-cache-UID in the temp dir, and a second run uses it', async () => {
    const tmp = await mkdtemp(join(tmpdir(), 'cli-cc-'));
    await backupOnce(tmp);
    const cache = join(tmp, `backer-compile-cache-${uid}`);
    expect((await stat(cache)).mode & 0o777).toBe(0o700);
    const [version] = await readdir(cache);
    expect(version).toMatch(/^v\d+/);
    const entries = await readdir(join(cache, version ?? ''));
    // Every module after the entry: commander, the config's zod and yaml, the pipeline…
    expect(entries.length).toBeGreaterThan(100);
    await backupOnce(tmp);
    expect((await readdir(join(cache, version ?? ''))).length).toBeGreaterThanOrEqual(entries.length);
  });

  it('is not used in a directory others can write, and the command runs as usual', async () => {
    const tmp = await mkdtemp(join(tmpdir(), 'cli-cc-'));
    const cache = join(tmp, `backer-compile-cache-${uid}`);
    await mkdir(cache);
    await chmod(cache, 0o777);
    await backupOnce(tmp);
    expect(await readdir(cache)).toEqual([]);
  });

  it('never fails a command: a temp dir that cannot be created, or NODE_DISABLE_COMPILE_CACHE=1', async () => {
    // Under a regular file: nothing can be created there, even by root (tsx, which runs the
    // sources here, would put its own cache there too: TSX_DISABLE_CACHE).
    const unusable = join(dir, 'backer.yml', 'tmp');
    await backupOnce(unusable, { TSX_DISABLE_CACHE: '1' });
    expect(existsSync(unusable)).toBe(false);
    const tmp = await mkdtemp(join(tmpdir(), 'cli-cc-'));
    await backupOnce(tmp, { NODE_DISABLE_COMPILE_CACHE: '1' });
    expect(existsSync(join(tmp, `backer-compile-cache-${uid}`))).toBe(false);
  });
});

describe('bin/backer.js', () => {
  it("runs Node with a 1 MiB young generation semi-space through its shebang (env -S)", async () => {
    const first = (await readFile(BIN, 'utf8')).split('\n', 1)[0];
    expect(first).toBe('#!/usr/bin/env -S node --max-semi-space-size=1');
    // Executed as users do (its shebang, `node` from PATH); a preload prints the flags Node got.
    const preload = join(dir, 'print-flags.cjs');
    await writeFile(preload, "process.stderr.write(JSON.stringify(process.execArgv) + '\\n');\n");
    const r = await capture(BIN, ['--version'], { ...process.env, PATH: `${dirname(process.execPath)}:${process.env.PATH ?? ''}`, NODE_OPTIONS: `--require ${preload}` });
    expect(r.stderr).toBe('["--max-semi-space-size=1"]\n');
    expect(r.stdout).toMatch(/^\d+\.\d+\.\d+/);
    expect(r.code).toBe(0);
  });
});

describe("Docker's client", () => {
  it('talks to the engine without loading gRPC, protobufjs (BuildKit sessions) or ssh2, says so when a session would be needed, and loads ssh2 when ssh is used', async () => {
    // A process of its own: the require cache of this test worker is shared with other test files.
    const script = `
      import { createRequire } from 'node:module';
      const { dockerClient } = await import(${JSON.stringify(DOCKER_CLIENT)});
      const docker = dockerClient(process.env.SOCKET);
      const ping = String(await docker.ping());
      const require = createRequire(import.meta.url);
      const heavy = () => Object.keys(require.cache).filter((k) => /@grpc|protobufjs|[/]ssh2[/]/.test(k)).length;
      const loaded = heavy();
      const session = await new Promise((resolve) => docker.buildImage('/nonexistent', { version: '2' }, (err) => resolve(err?.message ?? null)));
      // docker-modem's ssh agent (DOCKER_HOST=ssh://…), as modem.js calls it: the real one, ssh2 loaded now.
      const sshModule = createRequire(require.resolve('dockerode')).resolve('docker-modem/lib/ssh.js');
      const agent = require.cache[sshModule].exports({ host: 'localhost' });
      console.log(JSON.stringify({ ping, loaded, session, agent: typeof agent.createConnection, ssh2: heavy() > 0 }));`;
    const r = await capture(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { ...process.env, SOCKET: inject('dockerHost').replace(/^unix:\/\//, '') });
    expect(r.stderr).toBe('');
    expect(JSON.parse(r.stdout)).toEqual({ ping: 'OK', loaded: 0, session: 'BuildKit sessions (buildImage with version "2") are not available in Backer', agent: 'function', ssh2: true });
    expect(r.code).toBe(0);
  });
});
