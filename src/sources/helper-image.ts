import { readFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import type Docker from 'dockerode';
import { describeError } from '../errors.js';
import type { Logger } from '../logging/logger.js';

/** The volume helper's image when Backer runs outside a container and nothing else is set. */
export const FALLBACK_HELPER_IMAGE = 'busybox:stable';

/**
 * The id of the container this process runs in, or null outside one. Docker bind-mounts
 * /etc/hostname, /etc/hosts and /etc/resolv.conf from `<data-root>/containers/<id>/`, which
 * /proc/self/mountinfo shows whatever the network mode or hostname; a container hostname
 * (12 hex digits) is the fallback.
 */
export async function ownContainerId(mountinfo = '/proc/self/mountinfo', host = hostname()): Promise<string | null> {
  const text = await readFile(mountinfo, 'utf8').catch(() => '');
  const match = /\/containers\/([0-9a-f]{64})\/(?:hostname|hosts|resolv\.conf)\s/.exec(text);
  if (match?.[1] !== undefined) return match[1];
  return /^[0-9a-f]{12}$/.test(host) ? host : null;
}

const resolved = new WeakMap<Docker, string>();

/**
 * The helper image when `volume.helper_image` is not set: $BACKER_HELPER_IMAGE, else the image
 * of Backer's own container (Backer's image has tar, so nothing else is needed or pulled), else
 * busybox:stable. Asked once per engine; an engine that does not answer is asked again next time.
 */
export async function defaultHelperImage(docker: Docker, logger: Logger, env: NodeJS.ProcessEnv = process.env): Promise<string> {
  const fromEnv = env.BACKER_HELPER_IMAGE?.trim();
  if (fromEnv) return fromEnv;
  const known = resolved.get(docker);
  if (known !== undefined) return known;
  const id = await ownContainerId();
  let image = FALLBACK_HELPER_IMAGE;
  if (id !== null) {
    try {
      image = (await docker.getContainer(id).inspect()).Image;
    } catch (err) {
      // Another engine than the one Backer's container runs on, or the engine is away.
      const status = (err as { statusCode?: unknown } | null)?.statusCode;
      if (status !== 404) {
        logger.warn({ container: id, err: describeError(err) }, `cannot inspect Backer's own container for the volume helper image; using ${FALLBACK_HELPER_IMAGE} this time`);
        return FALLBACK_HELPER_IMAGE;
      }
    }
  }
  logger.info({ image, own_container: id }, 'volume helper image (set volume.helper_image or BACKER_HELPER_IMAGE to choose another)');
  resolved.set(docker, image);
  return image;
}
