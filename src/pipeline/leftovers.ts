import { describeError } from '../errors.js';
import type { Logger } from '../logging/logger.js';
import { manifestKey } from '../manifests/schema.js';
import type { MandateSpec } from '../mandates/types.js';
import type { JobEvent } from '../queue/types.js';
import type { Target } from '../targets/types.js';

const NOTE = /^backup (\S+): artifact (\S+)$/;

/** The history line a backup attempt writes before it stores anything (read back by removeLeftovers). */
export function artifactNote(name: string, artifactKey: string): string {
  return `backup ${name}: artifact ${artifactKey}`;
}

/**
 * Before a backup job runs again after its process died: the artifacts its earlier attempts
 * stored without a manifest (killed between the upload and the manifest) are removed. A
 * manifest makes a backup complete: those stay. Failures are logged, never fatal: the start-up
 * sweep reports what is left.
 */
export async function removeLeftovers(mandate: MandateSpec, targets: ReadonlyMap<string, Target>, history: readonly JobEvent[], logger: Logger): Promise<void> {
  const attempts = history.flatMap((e) => {
    const m = e.type === 'note' ? NOTE.exec(e.message ?? '') : null;
    return m ? [{ name: m[1] as string, key: m[2] as string }] : [];
  });
  for (const name of mandate.targets) {
    const target = targets.get(name);
    if (!target) continue;
    for (const attempt of attempts) {
      try {
        if ((await target.stat(manifestKey(mandate.name, attempt.name))) !== undefined) continue;
        const artifact = await target.stat(attempt.key);
        if (artifact === undefined) continue;
        await target.remove(attempt.key);
        logger.warn({ mandate: mandate.name, target: name, key: attempt.key, size: artifact.size }, 'removed the artifact an interrupted attempt stored without a manifest');
      } catch (err) {
        logger.error({ mandate: mandate.name, target: name, key: attempt.key, err: describeError(err) }, 'cannot check or remove the artifact of an interrupted attempt');
      }
    }
  }
}
