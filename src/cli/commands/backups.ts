import { BackerError } from '../../errors.js';
import { forgetBackup, type ForgetResult } from '../../manifests/forget.js';
import { listBackups, type ManifestProblem } from '../../manifests/store.js';
import { latestVerification } from '../../manifests/verification.js';
import type { Manifest } from '../../manifests/schema.js';
import { createTarget } from '../../targets/index.js';
import type { Target } from '../../targets/types.js';
import { loadCliConfig, type GlobalOptions } from '../context.js';
import { EXIT } from '../exit-codes.js';
import { formatBytes, printJson, printLine, table } from '../output.js';
import { byCodeUnit } from '../../util/compare.js';

export interface ListOptions extends GlobalOptions {
  mandate?: string;
  target?: string;
}

/** The newest verification of one copy of a backup, as `backups list/show` print it. */
export interface LastVerification {
  backup: string;
  target: string;
  level: string;
  outcome: string;
  started_at: string;
}

/** Reads the targets directly (no daemon needed): the manifests there are the truth. */
async function collect(options: ListOptions): Promise<{ backups: Manifest[]; problems: ManifestProblem[]; verifications: LastVerification[] }> {
  const targets = await openTargets(options);
  const backups: Manifest[] = [];
  const problems: ManifestProblem[] = [];
  const verifications: LastVerification[] = [];
  try {
    for (const target of targets) {
      const listing = await listBackups(target, options.mandate);
      backups.push(...listing.backups.map((b) => b.manifest));
      problems.push(...listing.problems);
      for (const b of listing.backups) {
        const v = await latestVerification(target, b.manifestKey);
        if (v) verifications.push({ backup: v.backup, target: v.target, level: v.level, outcome: v.outcome, started_at: v.started_at });
      }
    }
  } finally {
    await Promise.all(targets.map((t) => t.close()));
  }
  backups.sort((a, b) => byCodeUnit(b.created_at, a.created_at));
  return { backups, problems, verifications };
}

function verifiedText(m: Manifest, verifications: readonly LastVerification[]): string {
  const v = verifications.find((x) => x.backup === m.name && x.target === m.target.name);
  return v ? `${v.outcome} (${v.level}, ${v.started_at})` : 'never';
}

export async function listCommand(options: ListOptions): Promise<number> {
  const { backups, problems, verifications } = await collect(options);
  if (options.json) {
    printJson({ backups, problems, verifications });
  } else {
    if (backups.length === 0) printLine('no backups');
    else {
      const rows = [['NAME', 'MANDATE', 'TARGET', 'CREATED', 'SIZE', 'VERIFIED', 'UUID']];
      for (const m of backups) {
        const tags = m.tags?.length ? ` [${m.tags.join(',')}]` : '';
        const verified = verifications.find((x) => x.backup === m.name && x.target === m.target.name);
        rows.push([`${m.name}${tags}`, m.mandate, m.target.name, m.created_at, formatBytes(m.artifact.size), verified ? `${verified.outcome}/${verified.level}` : '-', m.uuid]);
      }
      printLine(table(rows));
    }
    for (const p of problems) process.stderr.write(`warning: ${p.message}\n`);
  }
  return problems.length > 0 ? EXIT.FAILED : EXIT.OK;
}

export async function showCommand(id: string, options: ListOptions): Promise<number> {
  const { backups, verifications } = await collect(options);
  const found = backups.filter((m) => m.name === id || m.uuid === id);
  if (found.length === 0) throw new BackerError('BACKUP_NOT_FOUND', `no backup named or with uuid ${id}`, { component: 'cli' });
  if (options.json) printJson(found.length === 1 ? found[0] : found);
  else {
    for (const m of found) {
      printLine(`${m.name} on ${m.target.name} (${m.target.type})`);
      printLine(`  uuid:       ${m.uuid}`);
      printLine(`  mandate:    ${m.mandate}`);
      printLine(`  source:     ${m.source.type}${m.source.container ? ` container ${m.source.container}` : ''} ${m.source.databases.join(',')}`);
      printLine(`  created:    ${m.created_at}`);
      printLine(`  completed:  ${m.completed_at}`);
      printLine(`  artifact:   ${m.artifact.key} ${formatBytes(m.artifact.size)} ${m.artifact.mime}`);
      printLine(`  sha256:     ${m.artifact.sha256}`);
      if (m.tags?.length) printLine(`  tags:       ${m.tags.join(', ')}`);
      printLine(`  verified:   ${verifiedText(m, verifications)}`);
      for (const s of m.steps) printLine(`  step:       ${s.processor} ${formatBytes(s.size)} sha256 ${s.sha256}`);
    }
  }
  return EXIT.OK;
}

export interface ForgetOptions extends GlobalOptions {
  target?: string;
}

/** Targets chosen by --target (all by default), created for this command; closed by the caller. */
async function openTargets(options: { target?: string } & GlobalOptions): Promise<Target[]> {
  const { config } = await loadCliConfig(options);
  const configs = config.targets.filter((t) => options.target === undefined || t.name === options.target);
  if (options.target !== undefined && configs.length === 0) {
    throw new BackerError('TARGET_NOT_FOUND', `no target named ${options.target}; known: ${config.targets.map((t) => t.name).join(', ') || 'none'}`, {
      component: 'cli',
    });
  }
  return configs.map((c) => createTarget(c));
}

export async function forgetCommand(id: string, options: ForgetOptions): Promise<number> {
  const targets = await openTargets(options);
  let result: ForgetResult;
  try {
    result = await forgetBackup(targets, id, 'cli');
  } finally {
    await Promise.all(targets.map((t) => t.close()));
  }
  if (options.json) printJson(result);
  else {
    for (const f of result.forgotten) printLine(`forgot ${f.name} on ${f.target}: removed ${f.key} (artifact ${f.artifact_key} was missing)`);
    for (const i of result.kept) printLine(`kept ${i.key} on ${i.target}: its artifact is present`);
  }
  return EXIT.OK;
}
