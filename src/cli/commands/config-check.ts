import Docker from 'dockerode';
import { findConfigPath, loadConfig } from '../../config/load.js';
import { buildSnapshot } from '../../discovery/snapshot.js';
import { sources } from '../../sources/index.js';
import type { GlobalOptions } from '../context.js';
import { EXIT } from '../exit-codes.js';
import { printJson, printLine } from '../output.js';

/** Validates the file, then every discovered container's labels; prints each problem. */
export async function configCheckCommand(options: GlobalOptions): Promise<number> {
  const path = await findConfigPath(options.config, process.env);
  const { config, problems } = await loadConfig(path, process.env);
  const all = [...problems];
  let mandates: string[] = [];
  let dockerError: string | null = null;
  if (problems.length === 0) {
    const docker = config.docker.enabled ? new Docker({ socketPath: config.docker.socket_path }) : null;
    const snapshot = await buildSnapshot(docker, config, sources, path);
    all.push(...snapshot.problems);
    mandates = snapshot.mandates.map((m) => m.name);
    dockerError = snapshot.docker_error;
  }
  if (options.json) {
    printJson({ ok: all.length === 0, problems: all, mandates, docker_error: dockerError });
  } else {
    for (const p of all) printLine(`${p.where}: ${p.message}`);
    if (dockerError) printLine(`warning: Docker: ${dockerError}`);
    if (all.length === 0) printLine(`${path}: OK (${mandates.length} mandate${mandates.length === 1 ? '' : 's'}: ${mandates.join(', ') || 'none'})`);
    else printLine(`${all.length} problem${all.length === 1 ? '' : 's'} found`);
  }
  return all.length === 0 ? EXIT.OK : EXIT.FAILED;
}
