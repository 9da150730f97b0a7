import { randomBytes } from 'node:crypto';
import type Docker from 'dockerode';
import { BackerError, describeError } from '../errors.js';
import { ownerLabels } from '../state/owner.js';
import { clearStopped, recordStopped } from '../state/stopped-containers.js';
import { bindContainerRun, type ContainerRun } from './container-run.js';
import { lastLines } from './docker-exec.js';
import { COMPONENT, unsignalledRun, type RedisConnection } from './redis-conn.js';
import type { DumpContext } from './types.js';

/** One entry of a container's `Mounts` (docker inspect). */
export interface Mount {
  Type: string;
  Name?: string | undefined;
  Source: string;
  Destination: string;
  RW: boolean;
}

/** Where the helper sees the mount that holds the server's `dir`. */
export const HELPER_ROOT = '/restore';
/** The label recovery.ts sweeps by: a helper whose process died is removed at the next start. */
const HELPER_LABEL = 'backer.helper';

function statusCode(err: unknown): number | undefined {
  const code = (err as { statusCode?: unknown } | null)?.statusCode;
  return typeof code === 'number' ? code : undefined;
}

export function restoreFailed(message: string, container: string, cause?: unknown): BackerError {
  return new BackerError('RESTORE_FAILED', message, { component: COMPONENT, details: { container }, cause });
}

function helperMount(m: Mount): Docker.MountSettings {
  const Target = `${HELPER_ROOT}${m.Destination}`;
  if (m.Type === 'volume' && m.Name) {
    // NoCopy: an empty volume must never be filled with the helper image's files.
    return { Type: 'volume', Source: m.Name, Target, ReadOnly: false, VolumeOptions: { NoCopy: true } as Docker.MountSettings['VolumeOptions'] };
  }
  return { Type: 'bind', Source: m.Source, Target, ReadOnly: false };
}

/**
 * A helper container on the mount that holds the server's `dir`, idle (`cat` on an open stdin)
 * so that the restore's steps run in it with `docker exec`: no network, a read-only root, and of
 * root's powers only those needed to write a file owned by the server's user.
 */
export async function startHelper(docker: Docker, container: string, mount: Mount, image: string, context: DumpContext): Promise<{ run: ContainerRun; remove(): Promise<void> }> {
  let helper: Docker.Container;
  try {
    helper = await docker.createContainer({
      name: `backer-redis-restore-${context.mandate}-${randomBytes(4).toString('hex')}`.slice(0, 120),
      Image: image,
      Entrypoint: ['cat'],
      Cmd: [],
      User: '0:0',
      Labels: { [HELPER_LABEL]: 'true', 'backer.helper.container': container, 'backer.helper.mandate': context.mandate, ...ownerLabels() },
      OpenStdin: true,
      StdinOnce: false,
      Tty: false,
      Healthcheck: { Test: ['NONE'] },
      HostConfig: {
        NetworkMode: 'none',
        Mounts: [helperMount(mount)],
        Binds: context.settings?.volumeHelperBinds ?? [],
        LogConfig: { Type: 'none', Config: {} },
        ReadonlyRootfs: true,
        CapDrop: ['ALL'],
        CapAdd: ['CHOWN', 'DAC_OVERRIDE', 'FOWNER'],
        SecurityOpt: ['no-new-privileges'],
      },
    });
  } catch (err) {
    throw restoreFailed(`cannot create the helper container (image ${image}) for the restore into container ${container}: ${describeError(err)}`, container, err);
  }
  const remove = async (): Promise<void> => {
    await helper.remove({ force: true, v: true }).catch((err: unknown) => {
      if (statusCode(err) !== 404) context.logger.warn({ container, helper: helper.id, err: describeError(err) }, 'could not remove the redis restore helper container');
    });
  };
  try {
    await helper.start();
  } catch (err) {
    await remove();
    throw restoreFailed(`cannot start the helper container (image ${image}) for the restore into container ${container}: ${describeError(err)}`, container, err);
  }
  const run = bindContainerRun(context, { name: helper.id, image, env: {}, user: '0:0' }, COMPONENT);
  return { run, remove };
}

/** Whether the helper image is on the engine: a restore must not stop a container it cannot write into. */
export async function helperImagePresent(docker: Docker, image: string, container: string): Promise<void> {
  try {
    await docker.getImage(image).inspect();
  } catch (err) {
    if (statusCode(err) !== 404) throw new BackerError('DOCKER_UNAVAILABLE', `cannot inspect the helper image ${image}`, { component: COMPONENT, details: { image }, cause: err });
    throw new BackerError('TOOL_MISSING', `helper image ${image} for the restore into container ${container} is not on the Docker engine: pull it (docker pull ${image}) or set volume.helper_image`, {
      component: COMPONENT,
      details: { container, image },
      permanent: true,
    });
  }
}

/**
 * Stops the server's container, recorded first (see state/stopped-containers.ts) so that a
 * crash from here on is undone at the next daemon start. Resolves with the record to clear.
 */
export async function stopServer(docker: Docker, container: string, containerId: string, context: DumpContext, scratch: boolean): Promise<string | undefined> {
  const dir = context.settings?.stoppedContainersDir;
  const record = dir === undefined ? undefined : await recordStopped(dir, { container_id: containerId, container, mandate: context.mandate });
  try {
    // No abort signal: a stop cut short could leave the container stopping after the restart.
    // A long grace period: redis saves its dataset on SIGTERM, and that save is what a failed
    // restore keeps. A scratch container Backer made holds nothing to keep.
    await docker.getContainer(container).stop({ t: scratch ? 1 : 120 });
  } catch (err) {
    if (statusCode(err) !== 304) {
      if (record !== undefined) await clearStopped(record).catch(() => undefined);
      throw new BackerError('DOCKER_UNAVAILABLE', `cannot stop container ${container} for the restore`, { component: COMPONENT, details: { container }, cause: err });
    }
  }
  context.logger.info({ container }, 'container stopped for the redis restore');
  return record;
}

/** The last lines of a container's log (the reason redis refused to start). */
async function logTail(docker: Docker, container: string, since: number): Promise<string> {
  const raw = (await docker
    .getContainer(container)
    .logs({ stdout: true, stderr: true, tail: 60, since, follow: false })
    .catch(() => Buffer.alloc(0))) as unknown as Buffer;
  let text = '';
  // Without a TTY the log comes in frames: a type byte, three zeros, a big-endian length.
  for (let i = 0; i + 8 <= raw.length && (raw[i] ?? 9) <= 2 && raw.readUInt16BE(i + 1) === 0; ) {
    const length = raw.readUInt32BE(i + 4);
    text += raw.subarray(i + 8, i + 8 + length).toString('utf8');
    i += 8 + length;
  }
  const all = text || raw.toString('utf8');
  // Redis marks warnings with `#`; after a failed load, redis-check-rdb's report follows them.
  const warnings = all.split('\n').filter((l) => / # /.test(l) && !/overcommit/i.test(l));
  return warnings.length > 0 ? lastLines(warnings.map((l) => l.replace(/^.*? # /, '')).join('\n'), 2) : lastLines(all, 3);
}

/**
 * Starts the container again and waits until redis answers PING (while it reports LOADING, the
 * wait goes on). Rejects with RESTORE_FAILED when the container exits (redis refused the RDB)
 * or does not answer within `timeoutMs`. Never uses the job's signal: it runs after a cancel too.
 */
export async function startServer(conn: RedisConnection, timeoutMs = 60_000): Promise<void> {
  const { docker, name } = conn.run;
  // Log lines of this start only (seconds; one earlier for a clock that just ticked).
  const since = Math.floor(Date.now() / 1000) - 1;
  await docker
    .getContainer(name)
    .start()
    .catch((err: unknown) => {
      if (statusCode(err) !== 304) throw restoreFailed(`cannot start container ${name} again after the restore: ${describeError(err)}`, name, err);
    });
  const run = unsignalledRun(conn.run);
  let deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    const state = (
      await docker
        .getContainer(name)
        .inspect()
        .catch((err: unknown) => {
          throw restoreFailed(`cannot inspect container ${name} after the restore: ${describeError(err)}`, name, err);
        })
    ).State;
    if (!state.Running) {
      throw restoreFailed(`redis in container ${name} exited (code ${state.ExitCode}) after the restore: ${await logTail(docker, name, since)}`, name);
    }
    const reply = await run.capture(['redis-cli', ...conn.args, 'PING'], { env: conn.env }).catch((err: unknown) => ({ exitCode: -1, stdout: describeError(err), stderr: '' }));
    last = lastLines(`${reply.stdout}\n${reply.stderr}`, 1);
    if (reply.exitCode === 0 && reply.stdout.trim() === 'PONG') return;
    if (/LOADING/.test(reply.stdout)) deadline = Math.max(deadline, Date.now() + timeoutMs);
    await new Promise((r) => setTimeout(r, 200));
  }
  throw restoreFailed(`redis in container ${name} did not answer PING within ${Math.round(timeoutMs / 1000)} s after the restore${last ? ` (last reply: ${last})` : ''}`, name);
}

/** Clears the stopped-container record once the container runs again; a failure is logged. */
export async function clearRecord(record: string | undefined, container: string, context: DumpContext): Promise<void> {
  if (record === undefined) return;
  await clearStopped(record).catch((err: unknown) => context.logger.error({ container, err: describeError(err) }, 'could not remove the stopped-container record'));
}
