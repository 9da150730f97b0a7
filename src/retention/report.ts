import { BackerError } from '../errors.js';
import type { MandateSpec } from '../mandates/types.js';
import type { Target } from '../targets/types.js';
import { planTarget, retentionPolicyOf } from './apply.js';
import { isSafety, rulesOf } from './policy.js';

/** One backup in a retention plan (`backer retention plan`, `GET /v1/mandates/{name}/retention`). */
export interface PlannedRow {
  name: string;
  uuid: string;
  created_at: string;
  /** Safety backups (taken before a restore) have their own rule: the newest 3 and those younger than 7 days. */
  safety: boolean;
  action: 'keep' | 'remove';
  /** Every rule that keeps it (`daily 2024-05-03`, `last 2`, `within 30d`), or why it goes. */
  reasons: string[];
}

export interface RetentionPlan {
  mandate: string;
  /** The rules regular backups go through (`retention: N` shows as keep_last). */
  rules: ReturnType<typeof rulesOf>;
  targets: { target: string; backups: PlannedRow[] }[];
}

/** The mandate's targets, or only `only` (refused when the mandate does not write there). */
export function planTargets(mandate: Pick<MandateSpec, 'name' | 'targets'>, only: string | undefined, component: string): string[] {
  const names = mandate.targets.filter((t) => only === undefined || t === only);
  if (only !== undefined && names.length === 0) {
    throw new BackerError('TARGET_NOT_FOUND', `mandate ${mandate.name} does not write to a target named ${only}; its targets: ${mandate.targets.join(', ')}`, {
      component,
      details: { target: only },
    });
  }
  return names;
}

/** Reads each target's manifests and plans retention there; nothing is deleted. */
export async function planMandate(mandate: MandateSpec, targets: readonly Target[], now = new Date()): Promise<RetentionPlan> {
  const policy = retentionPolicyOf(mandate);
  const plan: RetentionPlan = { mandate: mandate.name, rules: rulesOf(policy), targets: [] };
  for (const target of targets) {
    const planned = await planTarget(target, mandate.name, policy, now);
    plan.targets.push({
      target: target.name,
      backups: planned.map(({ backup, keep, reasons }) => ({
        name: backup.manifest.name,
        uuid: backup.manifest.uuid,
        created_at: backup.manifest.created_at,
        safety: isSafety(backup.manifest),
        action: keep ? 'keep' : 'remove',
        reasons,
      })),
    });
  }
  return plan;
}
