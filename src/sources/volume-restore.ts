import { posix } from 'node:path';
import type { Readable } from 'node:stream';
import type Docker from 'dockerode';
import { BackerError, describeError } from '../errors.js';
import { defaultHelperImage } from './helper-image.js';
import type { DrillCheck, DumpContext, RestoreDestination, RestorePlan, RestoreRequest } from './types.js';
import type { ContainerRun } from './container-run.js';
import { COMPONENT, HELPER_ROOT, helperMount, inspect, openHelperRun, statusCode, stopGuard, type HelperRun } from './volume-helper.js';
import { owningMount, within, type ContainerMount } from './volume-mounts.js';
import { endsLikeTar, TarStatsParser, type VolumeStats } from './volume-stats.js';

/** The options are not used: a restore follows the backup's manifest (its paths). */
type Options = unknown;

/** Where a restore (or a drill's check) writes or reads: the helper's mounts and what it extracts. */
interface Layout {
  /** The container (or volume) in messages. */
  what: string;
  mounts: Docker.MountSettings[];
  /** Mount targets inside the helper, to keep when the paths are emptied. */
  targets: string[];
  members: string[];
}

function refused(message: string, details: Record<string, unknown>): BackerError {
  return new BackerError('RESTORE_REFUSED', message, { component: COMPONENT, details, permanent: true });
}

/** The archived paths, from the manifest. */
export function manifestPaths(request: RestoreRequest): string[] {
  const paths = request.manifest.paths;
  if (!Array.isArray(paths) || paths.length === 0 || !paths.every((p): p is string => typeof p === 'string' && p.startsWith('/'))) {
    throw refused('the manifest of this volume backup names no archived paths (source.paths): it cannot be mapped onto mounts', { paths });
  }
  return paths;
}

/** Maps every archived path onto a mount of the destination container; refuses a path with no mount. */
function containerLayout(container: string, mounts: ContainerMount[], members: string[], writes: RestoreDestination | null): Layout {
  const used = new Set<ContainerMount>();
  const known = mounts.map((m) => m.Destination).join(', ') || 'none';
  for (const path of members) {
    const owner = owningMount(mounts, path);
    if (typeof owner === 'string') throw refused(`path ${path} of the backup ${owner} of container ${container} (mounts: ${known})`, { container, path });
    // A scratch or other container shares read-only binds with the original: never write there.
    if (!owner.RW && writes?.kind === 'container' && !writes.original) {
      throw refused(`path ${path} of the backup is on the read-only mount ${owner.Destination} of container ${container}: a restore into it would write to the original's data`, { container, path });
    }
    used.add(owner);
    for (const m of mounts) if (m !== owner && (m.Type === 'volume' || m.Type === 'bind') && within(m.Destination, path)) used.add(m);
  }
  const chosen = [...used];
  return { what: `container ${container}`, mounts: chosen.map((m) => helperMount(m, false)), targets: chosen.map((m) => `${HELPER_ROOT}${m.Destination}`), members };
}

/** One archived path: its content is the volume's root; several: each under its own path in the volume. */
function volumeLayout(volume: string, members: string[]): Layout {
  const target = members.length === 1 ? `${HELPER_ROOT}${members[0] ?? ''}` : HELPER_ROOT;
  const mount: ContainerMount = { Type: 'volume', Name: volume, Source: '', Destination: target.slice(HELPER_ROOT.length), RW: true };
  return { what: `volume ${volume}`, mounts: [helperMount(mount, false, target)], targets: [target], members };
}

function readOnly(layout: Layout): Layout {
  return { ...layout, mounts: layout.mounts.map((m) => ({ ...m, ReadOnly: true })) };
}

async function helperImagePresent(context: DumpContext): Promise<void> {
  const image = context.settings?.volumeHelperImage ?? (await defaultHelperImage(context.docker, context.logger));
  try {
    await context.docker.getImage(image).inspect();
  } catch (err) {
    if (statusCode(err) !== 404) throw new BackerError('DOCKER_UNAVAILABLE', `cannot inspect the helper image ${image}`, { component: COMPONENT, cause: err });
    throw new BackerError('TOOL_MISSING', `helper image ${image} for the volume restore is not on the Docker engine: pull it (docker pull ${image}) or set volume.helper_image`, {
      component: COMPONENT,
      details: { image },
      permanent: true,
    });
  }
}

async function volumeExists(docker: Docker, volume: string): Promise<boolean> {
  try {
    await docker.getVolume(volume).inspect();
    return true;
  } catch (err) {
    if (statusCode(err) === 404) return false;
    throw new BackerError('DOCKER_UNAVAILABLE', `cannot inspect volume ${volume}`, { component: COMPONENT, details: { volume }, cause: err });
  }
}

async function withHelper<T>(context: DumpContext, owner: string, layout: Layout, writes: boolean, use: (helper: HelperRun) => Promise<T>): Promise<T> {
  const helper = await openHelperRun(context, owner, layout.mounts, writes, writes ? 'RESTORE_FAILED' : 'DRILL_FAILED');
  try {
    return await use(helper);
  } finally {
    await helper.remove();
  }
}

async function planVolume(volume: string, members: string[], request: RestoreRequest, context: DumpContext): Promise<RestorePlan> {
  const layout = volumeLayout(volume, members);
  const where = members.length === 1 ? `its root (the content of ${members[0] ?? ''})` : `${members.map((m) => m.slice(1)).join(', ')} below its root`;
  const steps = [`extract the archive into volume ${volume}: ${where}`];
  if (await volumeExists(context.docker, volume)) {
    const entries = await withHelper(context, volume, readOnly(layout), false, (h) => h.run.run(['ls', '-A', layout.targets[0] ?? HELPER_ROOT], { code: 'RESTORE_REFUSED', what: 'ls' }));
    if (entries.trim() !== '') throw refused(`volume ${volume} exists and is not empty: name a new volume, or empty or remove it first`, { volume });
    steps.unshift(`use the existing empty volume ${volume}`);
  } else {
    steps.unshift(`create volume ${volume} (label backer.restore=${context.mandate})`);
  }
  return { steps, stops: [] };
}

/**
 * Checks, touching nothing, that the backup can go to the destination: the container exists and
 * each archived path lies on one of its mounts (it is stopped for the restore), or the new
 * volume does not exist yet or is empty; and the helper image is on the engine.
 */
export async function planVolumeRestore(_options: Options, request: RestoreRequest, context: DumpContext): Promise<RestorePlan> {
  const members = manifestPaths(request);
  const dest = request.destination;
  await helperImagePresent(context);
  if (dest.kind === 'volume') return planVolume(dest.volume, members, request, context);
  if (dest.kind !== 'container') throw refused('a volume backup restores into a container or into a new volume (--to new:NAME), not into a file path', { destination: dest.kind });
  const info = await inspect(context.docker, dest.container).catch((err: unknown) => {
    throw err instanceof BackerError && err.code === 'CONTAINER_NOT_FOUND' ? refused(`container ${dest.container} does not exist`, { container: dest.container }) : err;
  });
  const layout = containerLayout(dest.container, info.Mounts, members, dest);
  const paths = members.join(', ');
  const running = info.State.Running;
  const steps = [
    running ? `stop container ${dest.container} for the restore (it is started again afterwards, whatever happens)` : `container ${dest.container} is not running: it stays stopped`,
    `empty ${paths} of ${layout.what} and extract the archive's files into them, through a helper container on its mounts`,
  ];
  if (running) steps.push(`start container ${dest.container} again`);
  return { steps, stops: running ? [dest.container] : [] };
}

/** `-path` patterns match globs: a mount path is taken literally. */
function literal(path: string): string {
  return path.replace(/[[\]*?\\]/g, (c) => `\\${c}`);
}

/**
 * Empties each archived path, keeping the mount points below it (and the directories leading to
 * them): their content goes too, since the archive holds it.
 */
async function emptyPaths(run: ContainerRun, layout: Layout): Promise<void> {
  const roots = layout.members.map((m) => `${HELPER_ROOT}${m}`);
  await run.run(['mkdir', '-p', ...roots], { code: 'RESTORE_FAILED', what: 'mkdir' });
  const keep = new Set<string>();
  for (const root of roots) {
    for (const target of layout.targets) {
      for (let p = target; p !== root && within(p, root); p = posix.dirname(p)) keep.add(p);
    }
  }
  const not = keep.size === 0 ? [] : ['!', '(', ...[...keep].flatMap((k, i) => [...(i === 0 ? [] : ['-o']), '-path', literal(k)]), ')'];
  await run.run(['find', ...roots, '-mindepth', '1', '-depth', ...not, '-delete'], { code: 'RESTORE_FAILED', what: 'find' });
}

/** Streams the archive into tar inside a writing helper; owners by number (the helper's users are not the app's). */
async function extract(context: DumpContext, owner: string, layout: Layout, input: Readable, empty: boolean): Promise<void> {
  await withHelper(context, owner, layout, true, async ({ run }) => {
    if (empty) await emptyPaths(run, layout);
    const gnu = (await run.capture(['tar', '--version'])).stdout.includes('GNU tar');
    const members = layout.members.map((m) => `.${m}`);
    // tar stops at the archive's end marker and may leave the record's zero padding unread: the
    // rest of the input is read too, so that a restore succeeds only once every byte arrived (and
    // was hash-checked on its way).
    const tar = ['tar', '-C', HELPER_ROOT, '-x', '-f', '-', ...(gnu ? ['--numeric-owner'] : []), ...members];
    await run.feed(['sh', '-c', '"$@" && exec cat >/dev/null', 'sh', ...tar], input);
  });
}

/** Extracts into the volume, created first unless it exists (empty); a volume it created is removed again on failure. */
async function restoreIntoVolume(volume: string, members: string[], input: Readable, context: DumpContext): Promise<void> {
  const { docker } = context;
  const created = !(await volumeExists(docker, volume));
  if (created) {
    try {
      await docker.createVolume({ Name: volume, Labels: { 'backer.restore': context.mandate } });
    } catch (err) {
      throw new BackerError('RESTORE_FAILED', `cannot create volume ${volume}`, { component: COMPONENT, details: { volume }, cause: err });
    }
  }
  try {
    await extract(context, volume, volumeLayout(volume, members), input, false);
  } catch (err) {
    if (created) {
      await docker.getVolume(volume).remove({ force: true }).catch((e: unknown) => context.logger.warn({ volume, err: describeError(e) }, 'could not remove the volume of a failed restore'));
    }
    throw err;
  }
}

function restoreFailed(err: unknown, what: string, context: DumpContext): unknown {
  if (context.signal.aborted) return err;
  if (err instanceof BackerError && ['RESTORE_FAILED', 'RESTORE_REFUSED', 'TOOL_MISSING'].includes(err.code)) return err;
  return new BackerError('RESTORE_FAILED', `restore of the volume backup into ${what} failed: ${describeError(err)}`, { component: COMPONENT, details: { destination: what }, cause: err });
}

async function restoreIntoContainer(container: string, dest: RestoreDestination, members: string[], input: Readable, context: DumpContext): Promise<void> {
  const info = await inspect(context.docker, container);
  const layout = containerLayout(container, info.Mounts, members, dest);
  const guard = stopGuard(context, container, 'volume restore');
  try {
    if (info.State.Running) await guard.stop(info);
    await extract(context, container, layout, input, true);
  } finally {
    await guard.restart();
  }
}

/**
 * Replaces each archived path's content in the destination container by the archive's (the
 * container stopped meanwhile, always started again), or extracts into a new named volume.
 */
export async function restoreVolume(_options: Options, request: RestoreRequest, input: Readable, context: DumpContext): Promise<void> {
  const members = manifestPaths(request);
  const dest = request.destination;
  const what = dest.kind === 'volume' ? `volume ${dest.volume}` : dest.kind === 'container' ? `container ${dest.container}` : dest.path;
  try {
    if (dest.kind === 'volume') {
      await restoreIntoVolume(dest.volume, members, input, context);
    } else if (dest.kind === 'container') {
      await restoreIntoContainer(dest.container, dest, members, input, context);
    } else {
      throw refused('a volume backup restores into a container or into a new volume (--to new:NAME), not into a file path', { destination: dest.kind });
    }
  } catch (err) {
    throw restoreFailed(err, what, context);
  }
  context.logger.info({ destination: what, paths: members }, 'volume backup restored');
}

/** The stats of the destination, computed the same way as at dump time: tar through the parser. */
async function treeStats(run: ContainerRun, members: string[]): Promise<VolumeStats> {
  const handle = await run.exec(['tar', '-C', HELPER_ROOT, '-cf', '-', ...members.map((m) => `.${m}`)]);
  const stream = run.verified(handle, 'tar', { tailBytes: 1024, check: (tail, size) => (endsLikeTar(size, tail) ? null : "ends without tar's end-of-archive marker") });
  const parser = new TarStatsParser();
  for await (const chunk of stream) parser.push(chunk as Buffer);
  return parser.result();
}

function recorded(stats: unknown): VolumeStats | null {
  const s = stats as Partial<VolumeStats> | null | undefined;
  return typeof s?.files === 'number' && typeof s.bytes === 'number' && typeof s.tree_sha256 === 'string' ? (s as VolumeStats) : null;
}

/** Recomputes files, bytes and the tree hash in the destination and compares them with the manifest's stats. */
export async function checkVolume(_options: Options, request: RestoreRequest, context: DumpContext): Promise<DrillCheck[]> {
  const members = manifestPaths(request);
  const expected = recorded(request.manifest.stats);
  if (expected === null) return [{ check: 'volume stats recorded in the manifest (files, bytes, tree_sha256)', ok: false, expected: 'stats', actual: null }];
  const dest = request.destination;
  let layout: Layout;
  if (dest.kind === 'volume') layout = volumeLayout(dest.volume, members);
  else if (dest.kind === 'container') layout = containerLayout(dest.container, (await inspect(context.docker, dest.container)).Mounts, members, null);
  else throw refused('a volume backup is checked in a container or a volume, not in a file path', { destination: dest.kind });
  let actual: VolumeStats;
  try {
    actual = await withHelper(context, layout.what.replace(/^\S+ /, ''), readOnly(layout), false, ({ run }) => treeStats(run, members));
  } catch (err) {
    if (context.signal.aborted || (err instanceof BackerError && err.code === 'DRILL_FAILED')) throw err;
    throw new BackerError('DRILL_FAILED', `cannot read the files of ${layout.what} for the drill: ${describeError(err)}`, { component: COMPONENT, cause: err });
  }
  return [
    { check: `regular files in ${members.join(', ')}`, ok: actual.files === expected.files, expected: expected.files, actual: actual.files },
    { check: `bytes of regular files in ${members.join(', ')}`, ok: actual.bytes === expected.bytes, expected: expected.bytes, actual: actual.bytes },
    { check: 'tree_sha256 (path, size and sha256 of every regular file)', ok: actual.tree_sha256 === expected.tree_sha256, expected: expected.tree_sha256, actual: actual.tree_sha256 },
  ];
}
