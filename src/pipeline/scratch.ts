import type Docker from 'dockerode';
import { BackerError } from '../errors.js';
import type { Logger } from '../logging/logger.js';

export const SCRATCH_LABEL = 'backer.scratch';
const COMPONENT = 'scratch';

function statusCode(err: unknown): number | undefined {
  const code = (err as { statusCode?: unknown } | null)?.statusCode;
  return typeof code === 'number' ? code : undefined;
}

/**
 * Read-only bind mounts carry over (programs, config); every writable mount (volume or bind)
 * becomes a fresh anonymous volume at the same path, so the scratch container never shares data
 * with its source.
 */
function scratchMounts(info: Docker.ContainerInspectInfo): Docker.MountSettings[] {
  const mounts: Docker.MountSettings[] = [];
  for (const m of info.Mounts) {
    if (m.Type === 'bind' && !m.RW) mounts.push({ Type: 'bind', Source: m.Source, Target: m.Destination, ReadOnly: true });
    else if (m.Type === 'bind' || m.Type === 'volume') mounts.push({ Type: 'volume', Source: '', Target: m.Destination });
  }
  return mounts;
}

async function inspectSource(docker: Docker, source: string): Promise<Docker.ContainerInspectInfo> {
  try {
    return await docker.getContainer(source).inspect();
  } catch (err) {
    if (statusCode(err) === 404) {
      throw new BackerError('CONTAINER_NOT_FOUND', `container ${source} does not exist: a scratch container is made from the backed-up container's image and settings`, {
        component: COMPONENT,
        details: { container: source },
        cause: err,
        permanent: true,
      });
    }
    throw new BackerError('DOCKER_UNAVAILABLE', `cannot inspect container ${source}`, { component: COMPONENT, cause: err });
  }
}

/** Refuses a name that is the source itself or any existing container: a scratch restore never overwrites one. */
async function refuseExisting(docker: Docker, name: string, source: string): Promise<void> {
  if (name === source) {
    throw new BackerError('RESTORE_REFUSED', `--to new:${name} names the backed-up container itself; use --to original, or another name`, { component: COMPONENT, permanent: true });
  }
  const exists = await docker.getContainer(name).inspect().then(() => true, (err: unknown) => {
    if (statusCode(err) === 404) return false;
    throw new BackerError('DOCKER_UNAVAILABLE', `cannot inspect container ${name}`, { component: COMPONENT, cause: err });
  });
  if (exists) {
    throw new BackerError('RESTORE_REFUSED', `container ${name} already exists: --to new:NAME creates a new container; choose a free name, or --to container:${name}`, {
      component: COMPONENT,
      details: { container: name },
      permanent: true,
    });
  }
}

export interface ScratchSpec {
  /** The backed-up container: image, environment, user, command and read-only binds are copied from it. */
  source: string;
  name: string;
  /** Job id, in the `backer.scratch` label. */
  job: string;
}

/** What a dry run says about the container it would create (nothing is created). */
export async function planScratch(docker: Docker, spec: ScratchSpec): Promise<string[]> {
  const info = await inspectSource(docker, spec.source);
  await refuseExisting(docker, spec.name, spec.source);
  return [`create container ${spec.name} from image ${info.Config.Image} (settings of ${spec.source}, fresh empty data volumes, no network)`];
}

/**
 * Creates and starts a container like `spec.source`: same image, environment, user, entrypoint,
 * command, working directory and read-only bind mounts; fresh empty data volumes; no network;
 * labelled `backer.scratch=<job>`. The caller waits until the engine in it answers.
 */
export async function createScratch(docker: Docker, spec: ScratchSpec, logger: Logger): Promise<void> {
  const info = await inspectSource(docker, spec.source);
  await refuseExisting(docker, spec.name, spec.source);
  const container = await docker.createContainer({
    name: spec.name,
    Image: info.Config.Image,
    Env: info.Config.Env,
    User: info.Config.User,
    Entrypoint: info.Config.Entrypoint ?? undefined,
    Cmd: info.Config.Cmd,
    WorkingDir: info.Config.WorkingDir,
    Labels: { [SCRATCH_LABEL]: spec.job, 'backer.scratch.source': spec.source },
    HostConfig: { NetworkMode: 'none', Mounts: scratchMounts(info) },
  });
  try {
    await container.start();
  } catch (err) {
    await container.remove({ force: true, v: true }).catch(() => undefined);
    throw new BackerError('RESTORE_FAILED', `cannot start scratch container ${spec.name}`, { component: COMPONENT, cause: err });
  }
  logger.info({ container: spec.name, source: spec.source, image: info.Config.Image }, 'scratch container created');
}

/** Removes a scratch container and its anonymous volumes. Never throws: a failure is logged with the name. */
export async function removeScratch(docker: Docker, name: string, logger: Logger): Promise<void> {
  await docker.getContainer(name).remove({ force: true, v: true }).then(
    () => logger.info({ container: name }, 'scratch container removed'),
    (err: unknown) => {
      if (statusCode(err) !== 404) logger.warn({ container: name, err: err instanceof Error ? err.message : String(err) }, 'could not remove the scratch container');
    },
  );
}

/**
 * Calls `probe` until it succeeds (the engine in a fresh container needs a moment), at most
 * `timeoutMs`; the last error is the reason.
 */
export async function waitUntilReady<T>(probe: () => Promise<T>, timeoutMs: number, signal: AbortSignal): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await probe();
    } catch (err) {
      signal.throwIfAborted();
      // Until the engine answers, its preflight fails in many ways (no socket, refused login). A
      // container that is gone or stopped, or a refusal the source marks permanent (AOF on, an
      // older server), will not get better by waiting.
      const permanent = err instanceof BackerError && (err.permanent || err.code === 'CONTAINER_NOT_FOUND' || err.code === 'CONTAINER_NOT_RUNNING');
      if (permanent || Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 500));
    }
  }
}
