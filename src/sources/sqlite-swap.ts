import { randomBytes } from 'node:crypto';
import { pipeline, type Readable } from 'node:stream';
import type Docker from 'dockerode';
import { BackerError, describeError } from '../errors.js';
import type { Logger } from '../logging/logger.js';
import { ownerLabels } from '../state/owner.js';
import { clearStopped, recordStopped } from '../state/stopped-containers.js';
import { DemuxStream, lastLines, TailBuffer } from './docker-exec.js';
import { defaultHelperImage } from './helper-image.js';
import type { DumpContext } from './types.js';

const COMPONENT = 'source sqlite';
/** Where the swap helper sees the mount that holds the database. */
const HELPER_ROOT = '/restore';
/**
 * Replaces the database by the checked temp file (one rename in the same directory) and removes
 * the old database's -wal/-shm/-journal, which would otherwise be replayed into the new one.
 */
const SWAP_SCRIPT = 'mv -f -- "$1" "$2" && rm -f -- "$2-wal" "$2-shm" "$2-journal"';

/** The app container and the mount that holds the database's directory. */
export interface SwapTarget {
  container: string;
  containerId: string;
  mount: Docker.MountSettings;
  /** The mount's destination inside the app container. */
  mountedAt: string;
}

function statusCode(err: unknown): number | undefined {
  const code = (err as { statusCode?: unknown } | null)?.statusCode;
  return typeof code === 'number' ? code : undefined;
}

/**
 * The mount holding `dir` as the swap helper mounts it (read-write), or null when `dir` is on the
 * container's own filesystem or a tmpfs, which no other container can reach.
 */
export function swapMount(mounts: readonly Docker.ContainerInspectInfo['Mounts'][number][], dir: string): { mount: Docker.MountSettings; mountedAt: string } | null {
  const owner = [...mounts]
    .filter((m) => dir === m.Destination || dir.startsWith(`${m.Destination.replace(/\/+$/, '')}/`))
    .sort((a, b) => b.Destination.length - a.Destination.length)[0];
  if (owner === undefined || !owner.RW) return null;
  const Target = `${HELPER_ROOT}${owner.Destination}`;
  if (owner.Type === 'volume' && owner.Name) {
    return { mount: { Type: 'volume', Source: owner.Name, Target, VolumeOptions: { NoCopy: true } as Docker.MountSettings['VolumeOptions'] }, mountedAt: owner.Destination };
  }
  if (owner.Type === 'bind') return { mount: { Type: 'bind', Source: owner.Source, Target }, mountedAt: owner.Destination };
  return null;
}

/** The helper's image: volume.helper_image, else the volume source's default. */
export async function swapHelperImage(docker: Docker, context: DumpContext): Promise<string> {
  return context.settings?.volumeHelperImage ?? (await defaultHelperImage(docker, context.logger));
}

/** TOOL_MISSING unless the helper image is on the engine (nothing is pulled). */
export async function requireHelperImage(docker: Docker, image: string, container: string): Promise<void> {
  try {
    await docker.getImage(image).inspect();
  } catch (err) {
    if (statusCode(err) !== 404) throw new BackerError('DOCKER_UNAVAILABLE', `cannot inspect the helper image ${image}`, { component: COMPONENT, cause: err });
    throw new BackerError('TOOL_MISSING', `helper image ${image} for the database swap in container ${container} is not on the Docker engine: pull it (docker pull ${image}) or set volume.helper_image`, {
      component: COMPONENT,
      details: { container, image },
      permanent: true,
    });
  }
}

async function runHelper(docker: Docker, target: SwapTarget, temp: string, path: string, context: DumpContext): Promise<void> {
  const image = await swapHelperImage(docker, context);
  const inHelper = (p: string): string => `${HELPER_ROOT}${p}`;
  const helper = await docker.createContainer({
    name: `backer-sqlite-${context.mandate}-${randomBytes(4).toString('hex')}`.slice(0, 120),
    Image: image,
    Entrypoint: ['sh'],
    Cmd: ['-c', SWAP_SCRIPT, 'sh', inHelper(temp), inHelper(path)],
    User: '0:0',
    // The owner labels let the next daemon start remove a helper whose process was killed.
    Labels: { 'backer.helper': 'true', 'backer.helper.container': target.container, 'backer.helper.mandate': context.mandate, ...ownerLabels() },
    AttachStdout: true,
    AttachStderr: true,
    Tty: false,
    Healthcheck: { Test: ['NONE'] },
    HostConfig: {
      NetworkMode: 'none',
      Mounts: [target.mount],
      Binds: context.settings?.volumeHelperBinds ?? [],
      LogConfig: { Type: 'none', Config: {} },
      ReadonlyRootfs: true,
      // Root that may rename and remove in the database's directory, and do nothing else.
      CapDrop: ['ALL'],
      CapAdd: ['DAC_OVERRIDE', 'FOWNER'],
      SecurityOpt: ['no-new-privileges'],
    },
  });
  try {
    const stderr = new TailBuffer(4096);
    const raw = (await helper.attach({ stream: true, stdout: true, stderr: true })) as unknown as Readable;
    const drained = new Promise<void>((resolve) => pipeline(raw, new DemuxStream(stderr), () => resolve()).resume());
    await helper.start();
    const result = (await helper.wait()) as { StatusCode?: unknown };
    await drained;
    if (result.StatusCode !== 0) {
      throw new BackerError('RESTORE_FAILED', `the swap helper could not replace ${path} in container ${target.container} (exit code ${String(result.StatusCode)}): ${lastLines(stderr.toString())}`, {
        component: COMPONENT,
        details: { container: target.container, path },
      });
    }
  } finally {
    await helper.remove({ force: true, v: true }).catch((err: unknown) => {
      if (statusCode(err) !== 404) context.logger.warn({ container: target.container, helper: helper.id, err: describeError(err) }, 'could not remove the sqlite swap helper container');
    });
  }
}

async function startAgain(subject: Docker.Container, container: string, logger: Logger): Promise<unknown> {
  try {
    await subject.start();
    logger.info({ container }, 'container started again after the database swap');
    return undefined;
  } catch (err) {
    if (statusCode(err) === 304) return undefined;
    return err;
  }
}

/**
 * Stops the app container, renames the temp file over the database through a helper container on
 * the same mount, and ALWAYS starts the container again (the stop is recorded first, so that a
 * crash in between is undone at the next daemon start). Before the rename the old database is
 * untouched; the rename itself is atomic.
 */
export async function swapDatabase(docker: Docker, target: SwapTarget, temp: string, path: string, context: DumpContext): Promise<void> {
  const { logger } = context;
  const subject = docker.getContainer(target.container);
  const dir = context.settings?.stoppedContainersDir;
  const record = dir === undefined ? undefined : await recordStopped(dir, { container_id: target.containerId, container: target.container, mandate: context.mandate });
  let failure: unknown;
  try {
    // No abort signal: a stop cut short could leave the container stopping after the start.
    await subject.stop().catch((err: unknown) => {
      if (statusCode(err) !== 304) throw new BackerError('RESTORE_FAILED', `cannot stop container ${target.container} for the database swap`, { component: COMPONENT, cause: err });
    });
    logger.info({ container: target.container, path }, 'container stopped for the database swap');
    await runHelper(docker, target, temp, path, context);
  } catch (err) {
    failure = err;
  }
  const startError = await startAgain(subject, target.container, logger);
  if (startError === undefined && record !== undefined) {
    await clearStopped(record).catch((err: unknown) => logger.error({ container: target.container, err: describeError(err) }, 'could not remove the stopped-container record'));
  }
  if (failure !== undefined) {
    if (startError !== undefined) logger.error({ container: target.container, err: describeError(startError) }, 'could not start the container again after the failed swap; the next daemon start retries');
    throw failure instanceof BackerError ? failure : new BackerError('RESTORE_FAILED', `the database swap in container ${target.container} failed: ${describeError(failure)}`, { component: COMPONENT, cause: failure });
  }
  if (startError !== undefined) {
    throw new BackerError('RESTORE_FAILED', `${path} was replaced, but container ${target.container} did not start again: ${describeError(startError)}`, {
      component: COMPONENT,
      details: { container: target.container },
      cause: startError,
    });
  }
}
