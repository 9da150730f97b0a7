import { dockerClient } from '../../daemon/docker-client.js';
import { buildSnapshot } from '../../discovery/snapshot.js';
import { BackerError } from '../../errors.js';
import type { MandateSpec } from '../../mandates/types.js';
import { planMandate, planTargets, type RetentionPlan } from '../../retention/report.js';
import { sources } from '../../sources/index.js';
import { createTarget } from '../../targets/index.js';
import { loadCliConfig, type GlobalOptions } from '../context.js';
import { EXIT } from '../exit-codes.js';
import { printJson, printLine, table } from '../output.js';

export interface RetentionPlanOptions extends GlobalOptions {
  target?: string;
}

/** The mandate as the daemon would see it (config and container labels), or why there is none. */
async function findMandate(name: string, options: GlobalOptions): Promise<{ mandate: MandateSpec; config: Awaited<ReturnType<typeof loadCliConfig>>['config'] }> {
  const { config, path } = await loadCliConfig(options);
  const docker = config.docker.enabled ? dockerClient(config.docker.socket_path) : null;
  const snapshot = await buildSnapshot(docker, config, sources, path);
  const mandate = snapshot.mandates.find((m) => m.name === name);
  if (mandate !== undefined) return { mandate, config };
  const skipped = snapshot.skipped.find((m) => m.name === name);
  if (skipped !== undefined) {
    const problems = skipped.problems.map((p) => `${p.where}: ${p.message}`).join('; ');
    throw new BackerError('MANDATE_SKIPPED', `mandate ${name} exists but is skipped: ${problems}`, { component: 'cli', details: { mandate: name, problems: skipped.problems } });
  }
  const known = snapshot.mandates.map((m) => m.name);
  throw new BackerError('MANDATE_NOT_FOUND', `no mandate named ${name}; known: ${known.length ? known.join(', ') : 'none'}`, { component: 'cli', details: { mandate: name } });
}

/** Reads the mandate's targets directly (no daemon) and plans retention there; nothing is deleted. */
export async function planMandateRetention(name: string, options: RetentionPlanOptions, now = new Date()): Promise<RetentionPlan> {
  const { mandate, config } = await findMandate(name, options);
  const names = planTargets(mandate, options.target, 'cli');
  const targets = config.targets.filter((t) => names.includes(t.name)).map((t) => createTarget(t));
  try {
    return await planMandate(mandate, targets, now);
  } finally {
    await Promise.all(targets.map((t) => t.close()));
  }
}

const rulesText = (rules: RetentionPlan['rules']): string =>
  Object.entries(rules)
    .map(([k, v]) => `${k}=${String(v)}`)
    .join(' ');

export async function retentionPlanCommand(name: string, options: RetentionPlanOptions): Promise<number> {
  const plan = await planMandateRetention(name, options);
  if (options.json) {
    printJson(plan);
    return EXIT.OK;
  }
  printLine(`mandate ${plan.mandate}: ${rulesText(plan.rules)} (nothing is deleted by this command)`);
  for (const t of plan.targets) {
    printLine(`target ${t.target}:`);
    if (t.backups.length === 0) {
      printLine('  no backups');
      continue;
    }
    const rows = [['NAME', 'CREATED', 'ACTION', 'REASONS']];
    for (const b of t.backups) rows.push([`${b.name}${b.safety ? ' [safety]' : ''}`, b.created_at, b.action, b.reasons.join('; ')]);
    printLine(table(rows));
  }
  return EXIT.OK;
}
