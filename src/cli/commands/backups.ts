import { BackerError } from '../../errors.js';
import { listBackups } from '../../manifests/store.js';
import type { Manifest } from '../../manifests/schema.js';
import { createTarget } from '../../targets/index.js';
import { loadCliConfig, type GlobalOptions } from '../context.js';
import { EXIT } from '../exit-codes.js';
import { formatBytes, printJson, printLine, table } from '../output.js';

export interface ListOptions extends GlobalOptions {
  mandate?: string;
  target?: string;
}

/** Reads the targets directly (no daemon needed): the manifests there are the truth. */
async function collect(options: ListOptions): Promise<{ backups: Manifest[]; problems: { target: string; key: string; message: string }[] }> {
  const { config } = await loadCliConfig(options);
  const configs = config.targets.filter((t) => options.target === undefined || t.name === options.target);
  if (options.target !== undefined && configs.length === 0) {
    throw new BackerError('TARGET_NOT_FOUND', `no target named ${options.target}; known: ${config.targets.map((t) => t.name).join(', ') || 'none'}`, {
      component: 'cli',
    });
  }
  const backups: Manifest[] = [];
  const problems: { target: string; key: string; message: string }[] = [];
  for (const c of configs) {
    const target = createTarget(c);
    try {
      const listing = await listBackups(target, options.mandate);
      backups.push(...listing.backups.map((b) => b.manifest));
      problems.push(...listing.problems);
    } finally {
      await target.close();
    }
  }
  backups.sort((a, b) => b.created_at.localeCompare(a.created_at));
  return { backups, problems };
}

export async function listCommand(options: ListOptions): Promise<number> {
  const { backups, problems } = await collect(options);
  if (options.json) {
    printJson({ backups, problems });
  } else {
    if (backups.length === 0) printLine('no backups');
    else {
      const rows = [['NAME', 'MANDATE', 'TARGET', 'CREATED', 'SIZE', 'UUID']];
      for (const m of backups) rows.push([m.name, m.mandate, m.target.name, m.created_at, formatBytes(m.artifact.size), m.uuid]);
      printLine(table(rows));
    }
    for (const p of problems) process.stderr.write(`warning: ${p.message}\n`);
  }
  return problems.length > 0 ? EXIT.FAILED : EXIT.OK;
}

export async function showCommand(id: string, options: ListOptions): Promise<number> {
  const { backups } = await collect(options);
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
      for (const s of m.steps) printLine(`  step:       ${s.processor} ${formatBytes(s.size)} sha256 ${s.sha256}`);
    }
  }
  return EXIT.OK;
}
