import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { access, chmod, constants, mkdir, mkdtemp, readdir, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join, posix } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { BackerError, describeError } from '../errors.js';
import { cancelledError } from '../util/abort.js';
import { childEnv } from '../util/child-env.js';
import { lastLines, TailBuffer } from './docker-exec.js';
import type { FilesOptions } from './files.js';
import { normalizeMember, TarError, TarScanner, TreeHasher, type TarEntry, type TreeStats } from './tar-scan.js';
import type { DrillCheck, DumpContext, RestorePlan, RestoreRequest } from './types.js';

/*
 * Files restore: the archive is extracted by the host's tar into a staging directory inside the
 * destination while a TarScanner in front of tar refuses unsafe members (absolute paths, `..`,
 * symlinks out of the tree, members below a symlink, devices) before tar sees them. Only a
 * complete extraction replaces the destination's content; a failure removes the staging directory
 * and leaves the destination as it was.
 */

const COMPONENT = 'source files';
const STAGING_PREFIX = '.backer-restore-';
/** File, hard link, symlink, directory, fifo (and the contiguous-file flag GNU tar never writes). */
const RESTORED_TYPES = new Set(['0', '\0', '7', '1', '2', '5', '6']);

function refused(message: string, details: Record<string, unknown> = {}): BackerError {
  return new BackerError('RESTORE_REFUSED', message, { component: COMPONENT, details, permanent: true });
}

function failed(message: string, details: Record<string, unknown> = {}, cause?: unknown): BackerError {
  return new BackerError('RESTORE_FAILED', message, { component: COMPONENT, details, cause });
}

function underLink(path: string, links: ReadonlySet<string>): boolean {
  const parts = path.split('/');
  for (let i = 1; i < parts.length; i++) if (links.has(parts.slice(0, i).join('/'))) return true;
  return false;
}

/** Why a member may not be extracted, or null. */
function unsafeReason(e: TarEntry, seen: ReadonlySet<string>, links: ReadonlySet<string>): string | null {
  if (e.raw.startsWith('/')) return 'is an absolute path';
  if (e.path.split('/').includes('..')) return 'leaves the directory ("..")';
  if (!RESTORED_TYPES.has(e.type)) return `is of tar type ${JSON.stringify(e.type)} (devices and other special members are not restored)`;
  if (e.path !== '' && seen.has(e.path)) return 'appears twice';
  if (underLink(e.path, links)) return 'lies below a symbolic link of the archive';
  if (e.type === '2') {
    if (e.linkpath.startsWith('/')) return `is a symbolic link to the absolute path ${JSON.stringify(e.linkpath)}`;
    const resolved = posix.normalize(posix.join(posix.dirname(e.path), e.linkpath));
    if (resolved === '..' || resolved.startsWith('../')) return `is a symbolic link pointing out of the directory (${JSON.stringify(e.linkpath)})`;
  }
  if (e.type === '1') {
    const target = normalizeMember(e.linkpath);
    if (e.linkpath.startsWith('/') || target.split('/').includes('..') || underLink(target, links) || !seen.has(target)) {
      return `is a hard link to ${JSON.stringify(e.linkpath)}, which is not an earlier member of the archive`;
    }
  }
  return null;
}

/** A TarScanner callback that refuses unsafe members (RESTORE_REFUSED naming the member). */
export function memberGuard(): (entry: TarEntry) => void {
  const seen = new Set<string>();
  const links = new Set<string>();
  return (e) => {
    const why = unsafeReason(e, seen, links);
    if (why !== null) throw refused(`the archive's member ${JSON.stringify(e.raw)} ${why}: nothing was restored`, { member: e.raw });
    seen.add(e.path);
    if (e.type === '2') links.add(e.path);
  };
}

interface TargetDir {
  path: string;
  exists: boolean;
  entries: number;
}

/** The destination directory: absolute; a directory or missing (below a writable one); empty unless confirmed. */
async function targetDir(request: RestoreRequest): Promise<TargetDir> {
  const to = request.destination;
  if (to.kind !== 'file') throw refused('files backups restore into a host directory: --to file:PATH');
  const path = to.path;
  if (!isAbsolute(path)) throw refused(`--to file:${path}: expected an absolute directory path`, { path });
  const info = await stat(path).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return null;
    throw refused(`cannot read ${path}: ${describeError(err)}`, { path });
  });
  if (info === null) {
    let parent = dirname(path);
    let found = await stat(parent).catch(() => null);
    while (found === null) {
      parent = dirname(parent);
      found = await stat(parent).catch(() => null);
    }
    if (!found.isDirectory()) throw refused(`${path} cannot be created: ${parent} is not a directory`, { path });
    await access(parent, constants.W_OK).catch(() => {
      throw refused(`${path} does not exist and cannot be created: ${parent} is not writable`, { path });
    });
    return { path, exists: false, entries: 0 };
  }
  if (!info.isDirectory()) throw refused(`${path} exists and is not a directory`, { path });
  const entries = (await readdir(path)).length;
  if (entries > 0 && !request.confirmed) {
    throw refused(`${path} is not empty (${entries} entries): the restore would replace its content; confirm with --yes`, { path, entries });
  }
  return { path, exists: true, entries };
}

export async function planFilesRestore(_options: FilesOptions, request: RestoreRequest, _context: DumpContext): Promise<RestorePlan> {
  const dir = await targetDir(request);
  const steps = dir.exists ? [] : [`create directory ${dir.path}`];
  steps.push(`extract the archive with tar into a staging directory ${join(dir.path, `${STAGING_PREFIX}…`)} (unsafe members refused)`);
  steps.push(dir.entries > 0 ? `replace the ${dir.entries} entries of ${dir.path} by the archive's` : `move the archive's content into ${dir.path}`);
  return { steps, stops: [] };
}

/** Streams `input` through the guard into `tar -x` in `staging`; resolves once tar extracted a complete archive. */
async function extract(input: Readable, staging: string, context: DumpContext): Promise<void> {
  // tar gets PATH only: Backer's environment holds cloud and encryption keys (see childEnv).
  const child = spawn('tar', ['-x', '-f', '-', '-C', staging], { stdio: ['pipe', 'ignore', 'pipe'], env: childEnv() });
  const stderr = new TailBuffer(4096);
  child.stderr.on('data', (d: Buffer) => stderr.push(d));
  const exited = new Promise<number>((resolve) => {
    child.on('error', () => resolve(-1));
    child.on('close', (code) => resolve(code ?? -1));
  });
  const scanner = new TarScanner(memberGuard());
  // tar may exit once it read the end-of-archive marker, before the record padding after it: its
  // stdin then fails, which its exit code and the marker judge. What tar no longer reads is
  // drained, so that the input's own end (or error, such as a hash mismatch) still shows.
  child.stdin.on('error', () => undefined);
  scanner.pipe(child.stdin);
  void exited.then(() => {
    scanner.unpipe(child.stdin);
    scanner.resume();
  });
  let streamError: unknown;
  await pipeline(input, scanner, { signal: context.signal }).catch((err: unknown) => {
    streamError = err;
    child.kill('SIGKILL');
  });
  const code = await exited;
  if (context.signal.aborted) throw cancelledError(COMPONENT, context.signal.reason);
  if (streamError instanceof TarError) throw failed(`the backup is not a readable tar archive: ${streamError.message}`);
  if (streamError !== undefined) throw streamError as Error;
  if (code !== 0) throw failed(`tar could not extract the archive into ${staging} (exit code ${code}): ${lastLines(stderr.toString())}`, { exit_code: code });
  if (!scanner.ended) throw failed("the archive ends without tar's end-of-archive marker: it is truncated");
}

/** Replaces the content of `path` by that of `staging` (which lies inside it); names are kept as raw bytes. */
async function replaceContent(path: string, staging: string): Promise<void> {
  const child = (dir: string, name: Buffer): Buffer => Buffer.concat([Buffer.from(`${dir}/`), name]);
  const stagingName = Buffer.from(basename(staging));
  for (const name of await readdir(path, { encoding: 'buffer' })) {
    if (!name.equals(stagingName)) await rm(child(path, name), { recursive: true, force: true });
  }
  for (const name of await readdir(staging, { encoding: 'buffer' })) await rename(child(staging, name), child(path, name));
  // The archive's root (`./`) gave the staging directory its mode.
  await chmod(path, (await stat(staging)).mode & 0o7777);
}

export async function restoreFiles(_options: FilesOptions, request: RestoreRequest, input: Readable, context: DumpContext): Promise<void> {
  const dir = await targetDir(request);
  let created: string | undefined;
  let staging: string | undefined;
  let done = false;
  try {
    created = dir.exists ? undefined : await mkdir(dir.path, { recursive: true, mode: 0o700 });
    staging = await mkdtemp(join(dir.path, STAGING_PREFIX));
    await extract(input, staging, context);
    await replaceContent(dir.path, staging);
    done = true;
    context.logger.info({ path: dir.path }, 'files restored');
  } catch (err) {
    if (err instanceof BackerError) throw err;
    throw failed(`cannot restore into ${dir.path}: ${describeError(err)}`, { path: dir.path }, err);
  } finally {
    if (staging !== undefined) await rm(staging, { recursive: true, force: true });
    if (!done && created !== undefined) await rm(created, { recursive: true, force: true });
  }
}

async function hashFile(file: Buffer): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(createReadStream(file), hash);
  return hash.digest('hex');
}

/** files, bytes and tree_sha256 of a directory, as TreeHasher computes them from an archive of it. */
export async function treeStats(root: string): Promise<TreeStats> {
  const tree = new TreeHasher();
  const walk = async (relative: string): Promise<void> => {
    const dir = Buffer.concat([Buffer.from(root), Buffer.from(relative === '' ? '' : `/${relative}`, 'latin1')]);
    for (const entry of await readdir(dir, { withFileTypes: true, encoding: 'buffer' })) {
      const rel = `${relative === '' ? '' : `${relative}/`}${entry.name.toString('latin1')}`;
      const full = Buffer.concat([dir, Buffer.from('/'), entry.name]);
      if (entry.isDirectory()) await walk(rel);
      else if (entry.isFile()) tree.add(rel, (await stat(full)).size, await hashFile(full));
    }
  };
  await walk('');
  return tree.stats();
}

function recordedTree(stats: unknown): TreeStats | null {
  const s = stats as Partial<TreeStats> | undefined;
  if (typeof s?.files !== 'number' || typeof s.bytes !== 'number' || typeof s.tree_sha256 !== 'string') return null;
  return { files: s.files, bytes: s.bytes, tree_sha256: s.tree_sha256 };
}

/** Drill checks: the restored directory's file count, bytes and tree hash equal the dump's. */
export async function checkFiles(_options: FilesOptions, request: RestoreRequest, _context: DumpContext): Promise<DrillCheck[]> {
  const to = request.destination;
  if (to.kind !== 'file') throw refused('files backups restore into a host directory: --to file:PATH');
  const actual = await treeStats(to.path).catch((err: unknown) => {
    throw new BackerError('DRILL_FAILED', `cannot read the restored directory ${to.path}: ${describeError(err)}`, { component: COMPONENT, details: { path: to.path }, cause: err });
  });
  const expected = recordedTree(request.manifest.stats);
  if (expected === null) return [{ check: `files in ${to.path} (no stats recorded at dump time)`, ok: true, expected: null, actual: actual.files }];
  return (['files', 'bytes', 'tree_sha256'] as const).map((key) => ({ check: `${key} of ${to.path}`, ok: expected[key] === actual[key], expected: expected[key], actual: actual[key] }));
}
