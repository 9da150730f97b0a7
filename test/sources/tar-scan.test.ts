/**
 * The one tar reader (src/sources/tar-scan.ts) that the files and the volume sources share: names
 * are raw bytes everywhere, so a name that is not UTF-8 gives the same `tree_sha256` through both.
 * First the reader on archives written by the real tar, then both sources through a real
 * `backer daemon` process: a files mandate and a volume mandate over the same files.
 */
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { link, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { callApi } from '../../src/cli/client.js';
import type { Manifest } from '../../src/manifests/schema.js';
import { treeStats } from '../../src/sources/files-restore.js';
import { TarError, TarScanner, TreeHasher, type TreeStats } from '../../src/sources/tar-scan.js';
import { TarStatsParser, tarStatsTap } from '../../src/sources/volume-stats.js';
import { spawnDaemon, waitForHealth } from '../helpers/daemon-proc.js';
import { createTestEnv, filesMandateYaml } from '../helpers/env.js';
import { backerCli, VOLUME_HELPER_YAML, volumeMandateYaml } from '../helpers/volume-config.js';
import { docker, HOST_IMAGE } from '../setup/services.js';

const host = (): string => inject('dockerHost');
const id = randomBytes(3).toString('hex');
const APP = `tscan-app-${id}`;
const VOLUME = `tscan-data-${id}`;
const FILES_MANDATE = `tscan-files-${id}`;
const VOLUME_MANDATE = `tscan-volume-${id}`;
const IDLE = 'trap "exit 0" TERM; while :; do sleep 1 & wait $!; done';

/** Two names that UTF-8 decoding would both turn into `\uFFFD\uFFFD-raw.bin`, a latin1 `é`, a long name with a raw byte. */
const RAW_A = Buffer.from([0xff, 0xfe, ...Buffer.from('-raw.bin')]);
const RAW_B = Buffer.from([0xfe, 0xff, ...Buffer.from('-raw.bin')]);
const LATIN1_DIR = Buffer.from('caf\xe9', 'latin1');
const LONG = Buffer.concat([Buffer.from('l'.repeat(120)), Buffer.from([0xe9]), Buffer.from('.txt')]);

const path = (...parts: (Buffer | string)[]): Buffer => Buffer.concat(parts.flatMap((p, i) => (i === 0 ? [Buffer.from(p)] : [Buffer.from('/'), Buffer.from(p)])));

/** Writes the test tree below `root` (a host directory): raw-byte names, a UTF-8 name, a hard link, an empty file. */
async function seedHost(root: string): Promise<void> {
  await mkdir(path(root, LATIN1_DIR), { recursive: true });
  await writeFile(path(root, RAW_A), 'first raw name\n');
  await writeFile(path(root, RAW_B), 'second raw name\n');
  await writeFile(path(root, LATIN1_DIR, 'menu.txt'), randomBytes(70_000));
  await writeFile(path(root, LONG), 'a long name\n');
  await writeFile(path(root, 'grüße.txt'), 'utf-8 name\n');
  await writeFile(path(root, 'empty'), '');
  await link(path(root, RAW_A), path(root, LATIN1_DIR, RAW_B));
}

/** The definition, computed independently: sha256 over byte-sorted `path NUL size NUL sha256 LF` of every regular file. */
async function expectedStats(root: string): Promise<TreeStats> {
  const lines: { path: Buffer; line: Buffer; size: number }[] = [];
  const walk = async (rel: Buffer | null): Promise<void> => {
    const dir = rel === null ? Buffer.from(root) : path(root, rel);
    for (const entry of await readdir(dir, { withFileTypes: true, encoding: 'buffer' })) {
      const relPath = rel === null ? entry.name : path(rel, entry.name);
      if (entry.isDirectory()) await walk(relPath);
      if (!entry.isFile()) continue;
      const data = await readFile(path(root, relPath));
      const line = Buffer.concat([relPath, Buffer.from(`\0${data.length}\0${createHash('sha256').update(data).digest('hex')}\n`)]);
      lines.push({ path: relPath, line, size: data.length });
    }
  };
  await walk(null);
  lines.sort((a, b) => Buffer.compare(a.path, b.path));
  const tree = createHash('sha256');
  for (const l of lines) tree.update(l.line);
  return { files: lines.length, bytes: lines.reduce((n, l) => n + l.size, 0), tree_sha256: tree.digest('hex') };
}

/** The real tar's archive of `root` (`-C root -cf - .`, as the files source runs it), with extra options such as a format. */
async function tarOf(root: string, options: string[] = []): Promise<Buffer> {
  const child = spawn('tar', [...options, '-C', root, '-cf', '-', '.'], { stdio: ['ignore', 'pipe', 'pipe'] });
  const chunks: Buffer[] = [];
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdout.on('data', (d: Buffer) => chunks.push(d));
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  if (code !== 0) throw new Error(`tar ${options.join(' ')} exited with ${code}: ${stderr}`);
  return Buffer.concat(chunks);
}

/** Feeds `tar` through a pass-through stream in small uneven chunks (headers split across chunks) and returns what came out. */
async function through(tar: Buffer, stream: NodeJS.ReadWriteStream): Promise<Buffer> {
  const chunks = Array.from({ length: Math.ceil(tar.length / 333) }, (_, i) => tar.subarray(i * 333, (i + 1) * 333));
  const out: Buffer[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, callback) {
      out.push(chunk);
      callback();
    },
  });
  await pipeline(Readable.from(chunks), stream, sink);
  return Buffer.concat(out);
}

describe('the shared tar reader on archives of the real tar', () => {
  let root: string;

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'bk-tscan-'));
    await seedHost(root);
  });

  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });

  for (const format of ['gnu', 'pax', 'ustar']) {
    it(`computes the same stats for raw-byte names through the files and the volume reader (${format} format)`, async () => {
      // ustar cannot store names over 100 bytes without a `/` to split at: its archive leaves LONG out
      // (by a pattern: argv is UTF-8, the name is not).
      const options = format === 'ustar' ? [`--format=${format}`, '--exclude=llll*'] : [`--format=${format}`];
      const tar = await tarOf(root, options);
      const expected = await expectedStats(root);
      const files = format === 'ustar' ? expected.files - 1 : expected.files;
      if (format !== 'ustar') expect(expected.files).toBe(7);

      const tree = new TreeHasher();
      expect((await through(tar, new TarScanner(undefined, tree))).equals(tar)).toBe(true);
      const parser = new TarStatsParser();
      parser.push(tar);
      const tapped = new TarStatsParser();
      expect((await through(tar, tarStatsTap(tapped))).equals(tar)).toBe(true);

      const fromFiles = tree.stats();
      expect(fromFiles.files).toBe(files);
      expect(parser.result()).toEqual(fromFiles);
      expect(tapped.result()).toEqual(fromFiles);
      if (format !== 'ustar') {
        expect(fromFiles).toEqual(expected);
        // What the files drill recomputes from a restored directory agrees too.
        expect(await treeStats(root)).toEqual(expected);
      }
    });
  }

  it('refuses a stream whose header checksum is wrong, in both readers', async () => {
    const tar = await tarOf(root);
    const broken = Buffer.from(tar);
    broken[0] = (broken[0] ?? 0) ^ 0x01;
    expect(() => new TarStatsParser().push(broken)).toThrow(TarError);
    await expect(through(broken, tarStatsTap(new TarStatsParser()))).rejects.toThrow(/header checksum is wrong/);
    await expect(through(broken, new TarScanner())).rejects.toThrow(TarError);
  });
});

describe('files and volume sources through a real daemon process', () => {
  let hostDir: string;

  beforeAll(async () => {
    hostDir = await mkdtemp(join(tmpdir(), 'bk-tscan-host-'));
    // The files mandate archives hostDir, whose data/ holds what the volume at /data holds: same member names.
    await seedHost(join(hostDir, 'data'));
    const system = ['--network', 'none', '-v', '/usr:/usr:ro', '-v', '/etc:/etc:ro', '-v', `${VOLUME}:/data`];
    // A one-off container fills the volume (cp -a keeps the hard link and the raw names); APP itself mounts only the volume.
    await docker(host(), ['run', '--rm', ...system, '-v', `${hostDir}:/seed:ro`, HOST_IMAGE, 'cp', '-a', '/seed/data/.', '/data/']);
    await docker(host(), ['run', '-d', '--name', APP, ...system, HOST_IMAGE, 'bash', '-c', IDLE]);
  }, 120_000);

  afterAll(async () => {
    await docker(host(), ['rm', '-f', APP]).catch(() => undefined);
    await docker(host(), ['volume', 'rm', '-f', VOLUME]).catch(() => undefined);
    await rm(hostDir, { recursive: true, force: true });
  });

  it('records the same tree_sha256 for the same raw-byte names, and both drills pass', async () => {
    const yaml = `${VOLUME_HELPER_YAML}mandates:\n${volumeMandateYaml(VOLUME_MANDATE, APP)}${filesMandateYaml(FILES_MANDATE, 'TSCAN_DIR', { target: 'local' })}`;
    const env = await createTestEnv(`ts${id}`, yaml);
    const daemon = spawnDaemon(env.configPath, { env: { TSCAN_DIR: hostDir } });
    const socket = join(env.dir, 'data', 'backer.sock');
    const backer = backerCli(env.configPath, { TSCAN_DIR: hostDir });
    const stats = async (mandate: string): Promise<unknown> => {
      const list = await backer(['backups', 'list', '--mandate', mandate, '--json']);
      expect(list.code, list.out).toBe(0);
      const backups = (JSON.parse(list.stdout) as { backups: Manifest[] }).backups;
      expect(backups).toHaveLength(1);
      return backups[0]?.source.stats;
    };
    try {
      await waitForHealth(daemon, socket);
      for (const mandate of [FILES_MANDATE, VOLUME_MANDATE]) {
        const backup = await backer(['backup', mandate, '--wait']);
        expect(backup.code, backup.out).toBe(0);
      }
      // Both archives name the members data/…: the volume's mount point, the files mandate's subdirectory.
      const expected = await expectedStats(hostDir);
      expect(expected.files).toBe(7);
      expect(await stats(VOLUME_MANDATE)).toEqual(expected);
      expect(await stats(FILES_MANDATE)).toEqual(expected);

      // The drills restore the raw names into a scratch volume or directory and recompute the same stats.
      for (const mandate of [FILES_MANDATE, VOLUME_MANDATE]) {
        const drill = await backer(['verify', mandate, 'latest', '--level', 'drill']);
        expect(drill.code, drill.out).toBe(0);
        expect(drill.out).toMatch(/^ok +\S+ on local \(drill, \d+ checks/m);
      }
      expect((await callApi<{ status: string }>(socket, 'GET', '/v1/health')).status).toBe('ok');
    } finally {
      await daemon.stop();
      await rm(env.dir, { recursive: true, force: true });
    }
  });
});
