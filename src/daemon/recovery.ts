import type Docker from 'dockerode';
import { describeError } from '../errors.js';
import type { Logger } from '../logging/logger.js';
import { currentOwner, ownerAlive, ownerFromLabels, type ProcessOwner } from '../state/owner.js';
import { clearStopped, listStopped, type StoppedEntry } from '../state/stopped-containers.js';

/**
 * Start-up pass that undoes what a killed daemon or `backup --once` left on the engine: helper
 * containers (`backer.helper=true`) whose owning process is gone are removed, and containers it
 * had stopped for a copy (records in `<data_dir>/stopped-containers/`) are started again. A
 * record or helper of a process that still runs (a `backup --once` beside the daemon) is left
 * alone.
 */
export interface RecoveryOptions {
  docker: Docker;
  /** `<data_dir>/stopped-containers`. */
  dir: string;
  logger: Logger;
}

const HELPER_FILTER = { label: ['backer.helper=true'] };

function statusCode(err: unknown): number | undefined {
  const code = (err as { statusCode?: unknown } | null)?.statusCode;
  return typeof code === 'number' ? code : undefined;
}

/** A helper of an owner on another host, whose process cannot be checked, is removed after this (seconds). */
const FOREIGN_HELPER_MAX_AGE_S = 86_400;

/**
 * Whether the process that made a helper may still run. On this host: its pid and start time.
 * Elsewhere: a daemon in a container has the container's short id as its host name, so a helper
 * of a container on this engine lives as long as that container runs (a daemon recreated in a new
 * container removes what its predecessor left at once). Any other host (a `backup --once` on the
 * engine's host seen from a daemon in a container, a remote client) cannot be asked: its helper is
 * left alone for a day, then counts as abandoned.
 */
function helperOwnerAlive(owner: ProcessOwner, helper: Docker.ContainerInfo, containers: Docker.ContainerInfo[]): boolean {
  if (owner.host === currentOwner().host) return ownerAlive(owner);
  if (/^[0-9a-f]{12}$/.test(owner.host)) {
    const container = containers.find((c) => c.Id.startsWith(owner.host));
    if (container !== undefined || containers.length === 0) return container?.State === 'running';
  }
  return Date.now() / 1000 - helper.Created < FOREIGN_HELPER_MAX_AGE_S;
}

async function removeOrphanHelpers(docker: Docker, logger: Logger): Promise<boolean> {
  let ok = true;
  const helpers = await docker.listContainers({ all: true, filters: HELPER_FILTER });
  if (helpers.length === 0) return true;
  const containers = await docker.listContainers({ all: true });
  for (const c of helpers) {
    const labels = c.Labels ?? {};
    const owner = ownerFromLabels(labels);
    if (owner !== null && helperOwnerAlive(owner, c, containers)) continue;
    const helper = (c.Names[0] ?? c.Id).replace(/^\//, '');
    const fields = { helper, container: labels['backer.helper.container'], mandate: labels['backer.helper.mandate'] };
    try {
      await docker.getContainer(c.Id).remove({ force: true });
      logger.warn(fields, 'removed a helper container left by an interrupted backup');
    } catch (err) {
      if (statusCode(err) === 404) continue;
      ok = false;
      logger.error({ ...fields, err: describeError(err) }, 'cannot remove a helper container left by an interrupted backup');
    }
  }
  return ok;
}

/** Starts one recorded container again if it is still stopped; true when its record can go. */
async function restartOne(docker: Docker, entry: StoppedEntry, others: StoppedEntry[], logger: Logger): Promise<boolean> {
  const { record } = entry;
  const fields = { container: record.container, mandate: record.mandate, stopped_at: record.stopped_at };
  let info: Docker.ContainerInspectInfo;
  try {
    info = await docker.getContainer(record.container_id).inspect();
  } catch (err) {
    if (statusCode(err) !== 404) throw err;
    logger.warn(fields, 'container stopped by an interrupted backup no longer exists; record cleared');
    return true;
  }
  if (info.State.Running) {
    logger.info(fields, 'container stopped by an interrupted backup runs again; record cleared');
    return true;
  }
  // Another live process (a `backup --once`) stopped it for its own copy: that one starts it again.
  if (others.some((o) => o.record.container_id === record.container_id && ownerAlive(o.record.owner))) return true;
  try {
    await docker.getContainer(record.container_id).start();
  } catch (err) {
    if (statusCode(err) === 304) return true;
    logger.error({ ...fields, err: describeError(err) }, 'cannot start a container stopped by an interrupted backup; retrying later');
    return false;
  }
  logger.warn(fields, 'container restarted after an interrupted backup');
  return true;
}

async function restartStopped(docker: Docker, dir: string, logger: Logger): Promise<boolean> {
  const { entries, invalid } = await listStopped(dir);
  for (const bad of invalid) logger.error({ file: bad.file, reason: bad.reason }, 'unreadable stopped-container record left in place; check the container it names by hand');
  let ok = true;
  for (const entry of entries) {
    if (ownerAlive(entry.record.owner)) {
      // Another live process's stop: checked again later, in case that process is killed.
      if (entry.record.owner.pid !== process.pid) ok = false;
      continue;
    }
    if (await restartOne(docker, entry, entries, logger)) await clearStopped(entry.file);
    else ok = false;
  }
  return ok;
}

/** One pass; throws when Docker cannot be asked (the caller retries). */
export async function recoverInterrupted(options: RecoveryOptions): Promise<boolean> {
  const { docker, dir, logger } = options;
  const helpersOk = await removeOrphanHelpers(docker, logger);
  const restartsOk = await restartStopped(docker, dir, logger);
  return helpersOk && restartsOk;
}

export interface Recovery {
  /** Runs the first pass (awaited, before discovery and the queue start); retries in the background. */
  start(): Promise<void>;
  close(): void;
}

/** Retries a failed pass (Docker not up yet at boot) every 5 s doubling to 5 min, logging once. */
export function createRecovery(options: Omit<RecoveryOptions, 'docker'> & { docker: Docker | null; retryBaseMs?: number }): Recovery {
  const { docker, dir, logger } = options;
  const base = options.retryBaseMs ?? 5000;
  let timer: NodeJS.Timeout | undefined;
  let closed = false;
  let failures = 0;
  // Said once, and only when a container waits for it: discovery reports Docker's state itself.
  const reportFailure = async (err: unknown): Promise<void> => {
    let waiting: string[] = [];
    try {
      if (failures === 0) waiting = (await listStopped(dir)).entries.map((e) => e.record.container);
    } catch (listErr) {
      logger.warn({ err: describeError(listErr) }, 'cannot read the records of containers stopped by an interrupted backup; retrying');
    }
    const log = waiting.length > 0 ? logger.warn.bind(logger) : logger.debug.bind(logger);
    log({ err: describeError(err), containers: waiting }, 'cannot start containers stopped by an interrupted backup yet; retrying');
  };
  const pass = async (): Promise<void> => {
    if (docker === null) return;
    let ok = false;
    try {
      ok = await recoverInterrupted({ docker, dir, logger });
    } catch (err) {
      await reportFailure(err);
    }
    if (ok || closed) return;
    const delay = Math.min(base * 2 ** failures, 300_000);
    failures++;
    timer = setTimeout(() => void pass(), delay);
    timer.unref();
  };
  return {
    async start() {
      if (docker === null) {
        const { entries } = await listStopped(dir);
        if (entries.length > 0) logger.warn({ containers: entries.map((e) => e.record.container) }, 'containers stopped by an interrupted backup cannot be started again: Docker is disabled');
        return;
      }
      await pass();
    },
    close() {
      closed = true;
      if (timer) clearTimeout(timer);
    },
  };
}
