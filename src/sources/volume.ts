import { randomBytes } from 'node:crypto';
import { posix } from 'node:path';
import { pipeline, Transform, type Readable, type TransformCallback } from 'node:stream';
import type Docker from 'dockerode';
import { notABoolean, parseBoolean } from '../config/boolean.js';
import { BackerError, describeError } from '../errors.js';
import type { Logger } from '../logging/logger.js';
import { ownerLabels } from '../state/owner.js';
import { clearStopped, recordStopped } from '../state/stopped-containers.js';
import { DemuxStream, lastLines, TailBuffer } from './docker-exec.js';
import { defaultHelperImage } from './helper-image.js';
import { labelError } from './options.js';
import type { Dump, DumpContext, OptionOrigin, SourceDefinition, SourceInfo } from './types.js';

export interface VolumeOptions {
  /**
   * Absolute paths inside the container, each on a volume or bind mount of it.
   * Default null: every data mount of the container (see selectMounts).
   */
  paths: string[] | null;
  /** Stop the container for the copy and start it again afterwards. Default false. */
  stop: boolean;
}

/** One entry of a container's `Mounts` (docker inspect). */
export interface ContainerMount {
  Type: string;
  Name?: string | undefined;
  Source: string;
  Destination: string;
  RW: boolean;
}

export interface MountPlan {
  /** Mounts the helper gets, read-only, each at `/backup<Destination>`. */
  mounts: ContainerMount[];
  /** Archived paths (absolute in the container); the archive holds them as `./<path>`. */
  members: string[];
  /** Mounts left out by the default selection, with the reason. */
  skipped: { destination: string; reason: string }[];
}

const COMPONENT = 'source volume';
/** Where the helper sees the container's mounts; the archive is made relative to it. */
const HELPER_ROOT = '/backup';
/** Label of every helper container, e.g. for `docker ps -a --filter label=backer.helper=true`. */
export const HELPER_LABEL = 'backer.helper';
const KNOWN_KEYS = ['paths', 'stop'];

/** Kernel pseudo filesystems: never archived by default, whatever the mount mode. */
const PSEUDO_DIRS = ['/proc', '/sys', '/dev'];
/** Read-only binds of these (host source or container destination) are system mounts, not data. */
const SYSTEM_DIRS = ['/usr', '/etc', '/bin', '/sbin', '/lib', '/lib32', '/lib64', '/libx32', '/boot', '/run', '/var/run', '/var/lib/docker'];

function within(path: string, dir: string): boolean {
  return path === dir || path.startsWith(`${dir}/`);
}

function parsePaths(raw: string | undefined, origin: OptionOrigin): string[] | null {
  if (raw === undefined) return null;
  const items = raw.split(',').map((s) => s.trim()).filter((s) => s !== '');
  if (items.length === 0) throw labelError(origin, 'paths', 'expected a comma list of absolute paths inside the container, e.g. /var/lib/app,/data');
  const paths: string[] = [];
  for (const item of items) {
    // eslint-disable-next-line no-control-regex
    if (/[\u0000-\u001f\u007f]/.test(item)) throw labelError(origin, 'paths', 'paths may not contain control characters such as newlines');
    if (!item.startsWith('/')) throw labelError(origin, 'paths', `expected absolute paths inside the container, got "${item}"`);
    if (item.split('/').some((part) => part === '..' || part === '.')) {
      throw labelError(origin, 'paths', `"${item}" contains "." or ".." segments: write the plain absolute path`);
    }
    const path = posix.normalize(item).replace(/\/+$/, '');
    if (path === '') throw labelError(origin, 'paths', '"/" is not a mount: name the mounted directories, e.g. /data');
    if (!paths.includes(path)) paths.push(path);
  }
  return paths;
}

function parse(raw: Record<string, string>, origin: OptionOrigin): VolumeOptions {
  for (const key of Object.keys(raw)) {
    if (!KNOWN_KEYS.includes(key)) throw labelError(origin, key, `unknown volume option; known: ${KNOWN_KEYS.join(', ')}`);
  }
  let stop = false;
  if (raw.stop !== undefined) {
    const value = parseBoolean(raw.stop);
    if (value === undefined) throw labelError(origin, 'stop', notABoolean(raw.stop));
    stop = value;
  }
  return { paths: parsePaths(raw.paths, origin), stop };
}

/** Why the default selection leaves a mount out, or null when it holds data to back up. */
function skipReason(m: ContainerMount): string | null {
  if (m.Type !== 'volume' && m.Type !== 'bind') return `${m.Type} mount`;
  if (m.Type === 'volume') return null;
  const ends = [m.Source, m.Destination];
  if (ends.some((p) => p.endsWith('/docker.sock'))) return 'the Docker socket';
  if (m.Source === '/') return 'the host root filesystem';
  if (ends.some((p) => PSEUDO_DIRS.some((d) => within(p, d)))) return 'a kernel pseudo filesystem';
  if (!m.RW && ends.some((p) => SYSTEM_DIRS.some((d) => within(p, d)))) return 'a read-only system mount';
  return null;
}

/** Drops paths that lie inside another listed path: tar would archive them twice. */
function outermost(paths: string[]): string[] {
  return paths.filter((p) => !paths.some((q) => q !== p && within(p, q)));
}

/**
 * Decides what the helper mounts and archives. Default (paths null): every volume (named or
 * anonymous) and every bind mount except binds of the Docker socket, of the host's `/`, of
 * /proc, /sys or /dev, and read-only binds of system directories (SYSTEM_DIRS); tmpfs and other
 * mount types are never included. With paths: each must lie on a volume or bind mount; mounts
 * nested below a path are included too.
 */
export function planMounts(container: string, mounts: ContainerMount[], paths: string[] | null): MountPlan {
  if (paths === null) {
    const selected: ContainerMount[] = [];
    const skipped: MountPlan['skipped'] = [];
    for (const m of mounts) {
      const reason = skipReason(m);
      if (reason === null) selected.push(m);
      else skipped.push({ destination: m.Destination, reason });
    }
    if (selected.length === 0) {
      const why = skipped.map((s) => `${s.destination} (${s.reason})`).join(', ');
      throw new BackerError('DUMP_FAILED', `container ${container} has no volume or bind mount to back up${why ? `; skipped: ${why}` : ''}; name paths with backer.volume.paths`, {
        component: COMPONENT,
        details: { container },
        permanent: true,
      });
    }
    return { mounts: selected, members: outermost(selected.map((m) => m.Destination)), skipped };
  }

  const used = new Set<ContainerMount>();
  const readable = (m: ContainerMount): boolean => m.Type === 'volume' || m.Type === 'bind';
  const known = mounts.map((m) => m.Destination).join(', ') || 'none';
  for (const path of paths) {
    const owner = mounts.filter((m) => within(path, m.Destination)).sort((a, b) => b.Destination.length - a.Destination.length)[0];
    if (owner === undefined || !readable(owner)) {
      const what = owner === undefined ? 'is not on a volume or bind mount' : `is on a ${owner.Type} mount, which a helper container cannot read`;
      throw new BackerError('LABEL_INVALID', `container ${container} label backer.volume.paths: ${path} ${what} (mounts: ${known})`, {
        component: COMPONENT,
        details: { container, path },
        permanent: true,
      });
    }
    used.add(owner);
    for (const m of mounts) if (m !== owner && readable(m) && within(m.Destination, path)) used.add(m);
  }
  return { mounts: [...used], members: outermost(paths), skipped: [] };
}

function helperMount(m: ContainerMount): Docker.MountSettings {
  const Target = `${HELPER_ROOT}${m.Destination}`;
  if (m.Type === 'volume' && m.Name) {
    // NoCopy: an empty volume must never be filled with the helper image's files.
    return { Type: 'volume', Source: m.Name, Target, ReadOnly: true, VolumeOptions: { NoCopy: true } as Docker.MountSettings['VolumeOptions'] };
  }
  return { Type: 'bind', Source: m.Source, Target, ReadOnly: true };
}

function statusCode(err: unknown): number | undefined {
  const code = (err as { statusCode?: unknown } | null)?.statusCode;
  return typeof code === 'number' ? code : undefined;
}

async function inspect(docker: Docker, name: string): Promise<Docker.ContainerInspectInfo> {
  try {
    return await docker.getContainer(name).inspect();
  } catch (err) {
    const missing = statusCode(err) === 404;
    throw new BackerError(missing ? 'CONTAINER_NOT_FOUND' : 'DOCKER_UNAVAILABLE', missing ? `container ${name} does not exist` : `cannot inspect container ${name}`, {
      component: COMPONENT,
      details: { container: name },
      cause: err,
    });
  }
}

async function createHelper(docker: Docker, container: string, plan: MountPlan, context: DumpContext): Promise<Docker.Container> {
  const image = context.settings?.volumeHelperImage ?? (await defaultHelperImage(docker, context.logger));
  try {
    return await docker.createContainer({
      name: `backer-volume-${context.mandate}-${randomBytes(4).toString('hex')}`.slice(0, 120),
      Image: image,
      Entrypoint: ['tar'],
      // `./` keeps member names from ever looking like options.
      Cmd: ['-C', HELPER_ROOT, '-cf', '-', ...plan.members.map((p) => `.${p}`)],
      User: '0:0',
      // The owner labels let the next daemon start remove a helper whose process was killed.
      Labels: { [HELPER_LABEL]: 'true', 'backer.helper.container': container, 'backer.helper.mandate': context.mandate, ...ownerLabels() },
      AttachStdin: false,
      AttachStdout: true,
      AttachStderr: true,
      OpenStdin: false,
      Tty: false,
      // An image's HEALTHCHECK (Backer's own image has one) has nothing to check in a helper.
      Healthcheck: { Test: ['NONE'] },
      HostConfig: {
        NetworkMode: 'none',
        Mounts: plan.mounts.map(helperMount),
        Binds: context.settings?.volumeHelperBinds ?? [],
        // The archive goes through the attach stream only: a log driver would store a second copy.
        LogConfig: { Type: 'none', Config: {} },
        ReadonlyRootfs: true,
        // Root that may read every file and do nothing else.
        CapDrop: ['ALL'],
        CapAdd: ['DAC_READ_SEARCH'],
        SecurityOpt: ['no-new-privileges'],
      },
    });
  } catch (err) {
    if (statusCode(err) === 404) {
      throw new BackerError('TOOL_MISSING', `helper image ${image} for the volumes of container ${container} is not on the Docker engine: pull it (docker pull ${image}) or set volume.helper_image`, {
        component: COMPONENT,
        details: { container, image },
        cause: err,
        permanent: true,
      });
    }
    throw new BackerError('DUMP_FAILED', `cannot create the helper container for the volumes of container ${container}`, {
      component: COMPONENT,
      details: { container, image },
      cause: err,
    });
  }
}

/** Starts a container stopped for the copy; true when it runs again or is gone (its record can go). */
async function startAgain(subject: Docker.Container, container: string, logger: Logger): Promise<boolean> {
  try {
    await subject.start();
    logger.info({ container }, 'container started again after the volume copy');
    return true;
  } catch (err) {
    const code = statusCode(err);
    if (code === 304) logger.info({ container }, 'container was already running again after the volume copy');
    else if (code === 404) logger.warn({ container }, 'container was removed during the volume copy');
    else logger.error({ container, err: describeError(err) }, 'could not start the container again after the volume copy; the next daemon start retries');
    return code === 304 || code === 404;
  }
}

/** A complete tar archive ends with two zero blocks and is a whole number of 512-byte blocks. */
function endsLikeTar(size: number, tail: Buffer): boolean {
  return size >= 1024 && size % 512 === 0 && tail.length >= 1024 && tail.subarray(tail.length - 1024).every((b) => b === 0);
}

/**
 * Archives volumes and bind mounts of a container as one tar stream, read by a short-lived
 * helper container that mounts them read-only (no network, no capability but reading).
 * With `stop`, the container is stopped for the copy and always started again, exactly once:
 * after success, failure or abort. The stream ends only after the helper exited 0, the archive
 * ended with tar's end marker, the helper was removed and the container runs again.
 */
async function dump(options: VolumeOptions, target: { container: string | null }, context: DumpContext): Promise<Dump> {
  const container = target.container;
  if (container === null) throw new BackerError('LABEL_INVALID', 'volume mandates need a container', { component: COMPONENT, permanent: true });
  const { docker, logger } = context;
  const info = await inspect(docker, container);
  const plan = planMounts(container, info.Mounts, options.paths);
  for (const s of plan.skipped) logger.debug({ container, destination: s.destination, reason: s.reason }, 'mount left out of the volume backup');

  const subject = docker.getContainer(container);
  let stoppedByUs = false;
  /** The durable record of the stop (see state/stopped-containers.ts), removed once it runs again. */
  let record: string | undefined;
  let restarted: Promise<void> | undefined;
  const restart = (): Promise<void> =>
    (restarted ??= (async () => {
      if (!stoppedByUs || !(await startAgain(subject, container, logger)) || record === undefined) return;
      await clearStopped(record).catch((err: unknown) => logger.error({ container, err: describeError(err) }, 'could not remove the stopped-container record'));
    })());

  let helper: Docker.Container | undefined;
  let raw: Readable | undefined;
  let removed: Promise<void> | undefined;
  const removeHelper = (): Promise<void> =>
    (removed ??= (async () => {
      raw?.destroy();
      if (helper === undefined) return;
      // v: anonymous volumes of the image's VOLUMEs (Backer's image declares /var/lib/backer) go too.
      await helper.remove({ force: true, v: true }).catch((err: unknown) => {
        if (statusCode(err) !== 404) logger.warn({ container, helper: helper?.id, err: describeError(err) }, 'could not remove the volume helper container');
      });
    })());
  const cleanup = async (): Promise<void> => {
    await removeHelper();
    await restart();
  };

  try {
    helper = await createHelper(docker, container, plan, context);
    context.signal.throwIfAborted();
    // A paused container is frozen already; stopping it would change its state.
    if (options.stop && info.State.Running && !info.State.Paused) {
      // Recorded (fsynced) before the stop: a crash from here on is undone at the next daemon start.
      const dir = context.settings?.stoppedContainersDir;
      if (dir !== undefined) record = await recordStopped(dir, { container_id: info.Id, container, mandate: context.mandate });
      stoppedByUs = true;
      // No abort signal: a stop cut short could leave the container stopping after the restart.
      await subject.stop().catch((err: unknown) => {
        if (statusCode(err) !== 304) {
          throw new BackerError('DOCKER_UNAVAILABLE', `cannot stop container ${container} for the volume copy`, { component: COMPONENT, details: { container }, cause: err });
        }
      });
      logger.info({ container }, 'container stopped for the volume copy');
    }
    context.signal.throwIfAborted();
    raw = (await helper.attach({ stream: true, stdout: true, stderr: true })) as unknown as Readable;
    await helper.start();
  } catch (err) {
    await cleanup();
    if (err instanceof BackerError || context.signal.aborted) throw err;
    throw new BackerError('DUMP_FAILED', `cannot start the volume helper container for container ${container}`, {
      component: COMPONENT,
      details: { container },
      cause: err,
    });
  }
  logger.debug({ container, helper: helper.id, paths: plan.members, mounts: plan.mounts.map((m) => m.Destination) }, 'volume helper started');

  const running = helper;
  const stderr = new TailBuffer(8192);
  let size = 0;
  let tail = Buffer.alloc(0);
  const verify = async (): Promise<void> => {
    let exitCode = -1;
    try {
      const result = (await running.wait({ abortSignal: context.signal })) as { StatusCode?: unknown };
      if (typeof result.StatusCode === 'number') exitCode = result.StatusCode;
    } finally {
      await cleanup();
    }
    if (exitCode !== 0) {
      const reason = lastLines(stderr.toString());
      throw new BackerError('DUMP_FAILED', `tar in the volume helper of container ${container} exited with code ${exitCode}${reason ? `: ${reason}` : ''}`, {
        component: COMPONENT,
        details: { container, exit_code: exitCode, paths: plan.members },
      });
    }
    if (!endsLikeTar(size, tail)) {
      throw new BackerError('DUMP_TRUNCATED', `the tar stream of the volumes of container ${container} ends without tar's end-of-archive marker: the copy is incomplete`, {
        component: COMPONENT,
        details: { container, size },
      });
    }
  };
  const stream = new Transform({
    transform(chunk: Buffer, _enc, callback: TransformCallback) {
      size += chunk.length;
      tail = tail.length + chunk.length > 4096 ? Buffer.concat([tail, chunk]).subarray(-1024) : Buffer.concat([tail, chunk]);
      callback(null, chunk);
    },
    flush(callback: TransformCallback) {
      verify().then(
        () => callback(),
        (err: unknown) => callback(err as Error),
      );
    },
    destroy(err: Error | null, callback: (error: Error | null) => void) {
      // 'close' (and so the backup's pipeline) waits until the helper is gone and the container runs again.
      cleanup().then(
        () => callback(err),
        () => callback(err),
      );
    },
  });
  const onAbort = (): void => {
    stream.destroy(context.signal.reason instanceof Error ? context.signal.reason : new Error('aborted'));
  };
  context.signal.addEventListener('abort', onAbort, { once: true });
  stream.on('close', () => context.signal.removeEventListener('abort', onAbort));
  pipeline(raw, new DemuxStream(stderr), stream, () => undefined);

  const sourceInfo: SourceInfo = {
    type: 'volume',
    container,
    image: info.Config.Image,
    databases: [],
    paths: plan.members,
    volumes: plan.mounts.filter((m) => m.Type === 'volume' && m.Name).map((m) => m.Name as string),
    stopped: stoppedByUs,
  };
  return { stream, mime: 'application/x-tar', extension: '.tar', info: () => sourceInfo };
}

export const volumeSource: SourceDefinition<VolumeOptions> = { type: 'volume', needsContainer: true, parse, dump };
