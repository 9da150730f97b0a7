import { pipeline, Transform, type Readable, type TransformCallback } from 'node:stream';
import type Docker from 'dockerode';
import { BackerError } from '../errors.js';
import { DemuxStream, lastLines, TailBuffer } from './docker-exec.js';
import { parseOptions } from './options-schema.js';
import { defineSource, type Dump, type DumpContext, type SourceInfo } from './types.js';
import { COMPONENT, createHelper, HELPER_ROOT, helperMount, inspect, removeHelper, stopGuard, type StopGuard } from './volume-helper.js';
import { planMounts, type MountPlan } from './volume-mounts.js';
import { volumeOptions, type VolumeOptions } from './volume-options.js';
import { checkVolume, planVolumeRestore, restoreVolume } from './volume-restore.js';
import { defaultHelperImage } from './helper-image.js';
import { endsLikeTar, TarStatsParser, tarStatsTap } from './volume-stats.js';

export { HELPER_LABEL } from './volume-helper.js';
export { planMounts, type ContainerMount, type MountPlan } from './volume-mounts.js';
export { volumeOptions, type VolumeOptions } from './volume-options.js';

/** A helper running `tar -c` on the plan's mounts (read-only), attached and started; the container stopped first with `stop`. */
interface Copy {
  helper: Docker.Container;
  raw: Readable;
  guard: StopGuard;
  cleanup(): Promise<void>;
}

async function startCopy(options: VolumeOptions, container: string, info: Docker.ContainerInspectInfo, plan: MountPlan, context: DumpContext): Promise<Copy> {
  const { docker, logger } = context;
  const guard = stopGuard(context, container, 'volume copy');
  let helper: Docker.Container | undefined;
  let raw: Readable | undefined;
  let removed: Promise<void> | undefined;
  const cleanup = async (): Promise<void> => {
    removed ??= (async () => {
      raw?.destroy();
      if (helper !== undefined) await removeHelper(helper, container, logger);
    })();
    await removed;
    await guard.restart();
  };
  try {
    // `./` keeps member names from ever looking like options.
    const cmd = ['-C', HELPER_ROOT, '-cf', '-', ...plan.members.map((p) => `.${p}`)];
    helper = await createHelper(docker, { container, mounts: plan.mounts.map((m) => helperMount(m, true)), entrypoint: ['tar'], cmd, code: 'DUMP_FAILED' }, context);
    context.signal.throwIfAborted();
    // A paused container is frozen already; stopping it would change its state.
    if (options.stop && info.State.Running && !info.State.Paused) await guard.stop(info);
    context.signal.throwIfAborted();
    raw = (await helper.attach({ stream: true, stdout: true, stderr: true })) as unknown as Readable;
    await helper.start();
  } catch (err) {
    await cleanup();
    if (err instanceof BackerError || context.signal.aborted) throw err;
    throw new BackerError('DUMP_FAILED', `cannot start the volume helper container for container ${container}`, { component: COMPONENT, details: { container }, cause: err });
  }
  logger.debug({ container, helper: helper.id, paths: plan.members, mounts: plan.mounts.map((m) => m.Destination) }, 'volume helper started');
  return { helper, raw, guard, cleanup };
}

/** Waits for the helper's exit (always cleaning up), then requires exit 0 and tar's end marker. */
async function verifyCopy(copy: Copy, container: string, plan: MountPlan, signal: AbortSignal, seen: { stderr: TailBuffer; size: number; tail: Buffer }): Promise<void> {
  let exitCode = -1;
  try {
    const result = (await copy.helper.wait({ abortSignal: signal })) as { StatusCode?: unknown };
    if (typeof result.StatusCode === 'number') exitCode = result.StatusCode;
  } finally {
    await copy.cleanup();
  }
  if (exitCode !== 0) {
    const reason = lastLines(seen.stderr.toString());
    throw new BackerError('DUMP_FAILED', `tar in the volume helper of container ${container} exited with code ${exitCode}${reason ? `: ${reason}` : ''}`, {
      component: COMPONENT,
      details: { container, exit_code: exitCode, paths: plan.members },
    });
  }
  if (!endsLikeTar(seen.size, seen.tail)) {
    throw new BackerError('DUMP_TRUNCATED', `the tar stream of the volumes of container ${container} ends without tar's end-of-archive marker: the copy is incomplete`, {
      component: COMPONENT,
      details: { container, size: seen.size },
    });
  }
}

/**
 * The archive as the backup gets it: it computes the stats on the way, and ends only after the
 * helper exited 0, the archive ended with tar's end marker, the helper was removed and the
 * container runs again. Destroyed (abort, target failure), it cleans up the same way first.
 */
function copyStream(copy: Copy, container: string, plan: MountPlan, context: DumpContext, stats: TarStatsParser): Readable {
  const seen = { stderr: new TailBuffer(8192), size: 0, tail: Buffer.alloc(0) };
  const stream = new Transform({
    transform(chunk: Buffer, _enc, callback: TransformCallback) {
      seen.size += chunk.length;
      seen.tail = seen.tail.length + chunk.length > 4096 ? Buffer.concat([seen.tail, chunk]).subarray(-1024) : Buffer.concat([seen.tail, chunk]);
      callback(null, chunk);
    },
    flush(callback: TransformCallback) {
      verifyCopy(copy, container, plan, context.signal, seen).then(
        () => callback(),
        (err: unknown) => callback(err as Error),
      );
    },
    destroy(err: Error | null, callback: (error: Error | null) => void) {
      // 'close' (and so the backup's pipeline) waits until the helper is gone and the container runs again.
      copy.cleanup().then(
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
  const tap = tarStatsTap(stats);
  pipeline(copy.raw, new DemuxStream(seen.stderr), tap, stream, () => undefined);
  return stream;
}

/**
 * Archives volumes and bind mounts of a container as one tar stream, read by a short-lived
 * helper container that mounts them read-only (no network, no capability but reading).
 * With `stop`, the container is stopped for the copy and always started again, exactly once:
 * after success, failure or abort. `info().stats` holds the file count, bytes and tree hash.
 */
async function dump(options: VolumeOptions, target: { container: string | null }, context: DumpContext): Promise<Dump> {
  const container = target.container;
  if (container === null) throw new BackerError('LABEL_INVALID', 'volume mandates need a container', { component: COMPONENT, permanent: true });
  const info = await inspect(context.docker, container);
  const plan = planMounts(container, info.Mounts, options.paths);
  for (const s of plan.skipped) context.logger.debug({ container, destination: s.destination, reason: s.reason }, 'mount left out of the volume backup');
  const copy = await startCopy(options, container, info, plan, context);
  const stats = new TarStatsParser();
  const stream = copyStream(copy, container, plan, context, stats);
  const sourceInfo: SourceInfo = {
    type: 'volume',
    container,
    image: info.Config.Image,
    databases: [],
    paths: plan.members,
    volumes: plan.mounts.filter((m) => m.Type === 'volume' && m.Name).map((m) => m.Name as string),
    stopped: copy.guard.stopped,
  };
  return { stream, mime: 'application/x-tar', extension: '.tar', info: () => ({ ...sourceInfo, stats: stats.result() }) };
}

/** `backer mandates test`: the container's mounts give something to archive, and the helper image is on the engine. */
async function probeMounts(options: VolumeOptions, target: { container: string | null }, context: DumpContext): Promise<string> {
  const container = target.container;
  if (container === null) throw new BackerError('LABEL_INVALID', 'volume mandates need a container', { component: COMPONENT, permanent: true });
  const plan = planMounts(container, (await inspect(context.docker, container)).Mounts, options.paths);
  const image = context.settings?.volumeHelperImage ?? (await defaultHelperImage(context.docker, context.logger));
  try {
    await context.docker.getImage(image).inspect();
  } catch (err) {
    throw new BackerError('TOOL_MISSING', `helper image ${image} is not on the Docker engine: pull it (docker pull ${image}) or set volume.helper_image`, {
      component: COMPONENT,
      details: { image },
      cause: err,
    });
  }
  return `${plan.members.join(', ')} (helper image ${image})`;
}

export const volumeSource = defineSource<VolumeOptions>({
  type: 'volume',
  needsContainer: true,
  // In the helper image (volume.helper_image), not in the container.
  tools: ['tar', 'find', 'sh'],
  options: volumeOptions,
  parse: (raw, origin) => parseOptions(volumeOptions, raw, origin),
  dump,
  planRestore: planVolumeRestore,
  restore: restoreVolume,
  check: checkVolume,
  probe: { name: 'volumes readable', run: probeMounts },
  toolsIn: 'helper',
});
