import { randomBytes } from 'node:crypto';
import type Docker from 'dockerode';
import { BackerError, describeError, type ErrorCode } from '../errors.js';
import type { Logger } from '../logging/logger.js';
import { ownerLabels } from '../state/owner.js';
import { clearStopped, recordStopped } from '../state/stopped-containers.js';
import { bindContainerRun, type ContainerRun } from './container-run.js';
import { defaultHelperImage } from './helper-image.js';
import type { DumpContext } from './types.js';
import type { ContainerMount } from './volume-mounts.js';

export const COMPONENT = 'source volume';
/** Where the helper sees the container's mounts; the archive is made relative to it. */
export const HELPER_ROOT = '/backup';
/** Label of every helper container, e.g. for `docker ps -a --filter label=backer.helper=true`. */
export const HELPER_LABEL = 'backer.helper';

export function statusCode(err: unknown): number | undefined {
  const code = (err as { statusCode?: unknown } | null)?.statusCode;
  return typeof code === 'number' ? code : undefined;
}

export async function inspect(docker: Docker, name: string): Promise<Docker.ContainerInspectInfo> {
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

/** A helper mount: a volume by name (never filled from the image) or a bind, at `target`. */
export function helperMount(m: ContainerMount, readOnly: boolean, target = `${HELPER_ROOT}${m.Destination}`): Docker.MountSettings {
  if (m.Type === 'volume' && m.Name) {
    // NoCopy: an empty volume must never be filled with the helper image's files.
    return { Type: 'volume', Source: m.Name, Target: target, ReadOnly: readOnly, VolumeOptions: { NoCopy: true } as Docker.MountSettings['VolumeOptions'] };
  }
  return { Type: 'bind', Source: m.Source, Target: target, ReadOnly: readOnly };
}

export interface HelperSpec {
  /** The container whose mounts the helper gets (for its name, labels and messages). */
  container: string;
  mounts: Docker.MountSettings[];
  entrypoint: string[];
  cmd: string[];
  /** Writes (restore): the capabilities tar needs to recreate owners and modes. Default: read only. */
  writes?: boolean;
  /** The error code when the helper cannot be created. */
  code: ErrorCode;
}

/**
 * Creates a short-lived helper container on the container's mounts: no network, read-only root,
 * no capability but reading every file (or, for restores, recreating owners and modes).
 */
export async function createHelper(docker: Docker, spec: HelperSpec, context: DumpContext): Promise<Docker.Container> {
  const { container } = spec;
  const image = context.settings?.volumeHelperImage ?? (await defaultHelperImage(docker, context.logger));
  try {
    return await docker.createContainer({
      name: `backer-volume-${context.mandate}-${randomBytes(4).toString('hex')}`.slice(0, 120),
      Image: image,
      Entrypoint: spec.entrypoint,
      Cmd: spec.cmd,
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
        Mounts: spec.mounts,
        Binds: context.settings?.volumeHelperBinds ?? [],
        // The archive goes through the attach stream only: a log driver would store a second copy.
        LogConfig: { Type: 'none', Config: {} },
        ReadonlyRootfs: true,
        // Root that may read every file and do nothing else (restores: and set owners and modes).
        CapDrop: ['ALL'],
        CapAdd: spec.writes === true ? ['DAC_READ_SEARCH', 'DAC_OVERRIDE', 'CHOWN', 'FOWNER', 'FSETID', 'MKNOD'] : ['DAC_READ_SEARCH'],
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
    throw new BackerError(spec.code, `cannot create the helper container for the volumes of container ${container}`, { component: COMPONENT, details: { container, image }, cause: err });
  }
}

/** Removes a helper and its anonymous volumes (Backer's image declares /var/lib/backer); never throws. */
export async function removeHelper(helper: Docker.Container, container: string, logger: Logger): Promise<void> {
  await helper.remove({ force: true, v: true }).catch((err: unknown) => {
    if (statusCode(err) !== 404) logger.warn({ container, helper: helper.id, err: describeError(err) }, 'could not remove the volume helper container');
  });
}

/** A helper that idles, to run commands in through the run context (exec with stdin). */
export interface HelperRun {
  run: ContainerRun;
  remove(): Promise<void>;
}

/** Starts an idle helper on `mounts` and binds a run context to it; remove() it in a finally. */
export async function openHelperRun(context: DumpContext, container: string, mounts: Docker.MountSettings[], writes: boolean, code: ErrorCode): Promise<HelperRun> {
  const { docker, logger } = context;
  const idle = ['sh', '-c', 'while :; do sleep 3600; done'];
  const helper = await createHelper(docker, { container, mounts, entrypoint: idle.slice(0, 1), cmd: idle.slice(1), writes, code }, context);
  let removed: Promise<void> | undefined;
  // Removing the helper on a cancel ends whatever runs in it (a restore waiting for more input).
  const onAbort = (): void => void remove();
  const remove = (): Promise<void> => {
    context.signal.removeEventListener('abort', onAbort);
    return (removed ??= removeHelper(helper, container, logger));
  };
  context.signal.addEventListener('abort', onAbort, { once: true });
  try {
    context.signal.throwIfAborted();
    await helper.start();
    const info = await helper.inspect();
    const run = bindContainerRun(context, { name: info.Name.replace(/^\//, ''), image: info.Config.Image, env: {}, user: '0:0' }, COMPONENT);
    return { run, remove };
  } catch (err) {
    await remove();
    if (err instanceof BackerError || context.signal.aborted) throw err;
    throw new BackerError(code, `cannot start the volume helper container for container ${container}`, { component: COMPONENT, details: { container }, cause: err });
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

/** A container stopped for a copy or a restore; restart() starts it again, once, whatever is called twice. */
export interface StopGuard {
  readonly stopped: boolean;
  stop(info: Docker.ContainerInspectInfo): Promise<void>;
  restart(): Promise<void>;
}

export function stopGuard(context: DumpContext, container: string, what: string): StopGuard {
  const { docker, logger } = context;
  const subject = docker.getContainer(container);
  let stopped = false;
  /** The durable record of the stop (see state/stopped-containers.ts), removed once it runs again. */
  let record: string | undefined;
  let restarted: Promise<void> | undefined;
  return {
    get stopped() {
      return stopped;
    },
    async stop(info) {
      // Recorded (fsynced) before the stop: a crash from here on is undone at the next daemon start.
      const dir = context.settings?.stoppedContainersDir;
      if (dir !== undefined) record = await recordStopped(dir, { container_id: info.Id, container, mandate: context.mandate });
      stopped = true;
      // No abort signal: a stop cut short could leave the container stopping after the restart.
      await subject.stop().catch((err: unknown) => {
        if (statusCode(err) !== 304) {
          throw new BackerError('DOCKER_UNAVAILABLE', `cannot stop container ${container} for the ${what}`, { component: COMPONENT, details: { container }, cause: err });
        }
      });
      logger.info({ container }, `container stopped for the ${what}`);
    },
    restart: () =>
      (restarted ??= (async () => {
        if (!stopped || !(await startAgain(subject, container, logger)) || record === undefined) return;
        await clearStopped(record).catch((err: unknown) => logger.error({ container, err: describeError(err) }, 'could not remove the stopped-container record'));
      })()),
  };
}
