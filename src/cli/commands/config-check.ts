import { dockerClient } from '../../daemon/docker-client.js';
import { findConfigPath, loadConfig, type LoadResult } from '../../config/load.js';
import { NO_INVALID_REFS, UNKNOWN_REFS, type ConfigProblem } from '../../config/problems.js';
import { buildSnapshot } from '../../discovery/snapshot.js';
import { missingTools } from '../../plugins/tools.js';
import { sources } from '../../sources/index.js';
import type { GlobalOptions } from '../context.js';
import { loadDemoConfig } from '../demo-config.js';
import { EXIT } from '../exit-codes.js';
import { printJson, printLine } from '../output.js';

/** The file named by --config/BACKER_CONFIG/./backer.yml, or the embedded demo config with --demo. */
async function loadForCheck(options: GlobalOptions): Promise<LoadResult & { path: string }> {
  if (options.demo) {
    const { config, path } = loadDemoConfig();
    return { config, path, problems: [], invalidRefs: NO_INVALID_REFS };
  }
  const path = await findConfigPath(options.config, process.env);
  return { ...(await loadConfig(path, process.env)), path };
}

/**
 * Validates the file, then every static mandate and every discovered container's labels, in one
 * pass: problems of the file do not hide those of the mandates. Targets and middleware with
 * problems of their own still count as defined, so mandates naming them are not reported again.
 */
export async function configCheckCommand(options: GlobalOptions): Promise<number> {
  const { config, path, problems, invalidRefs } = await loadForCheck(options);
  const all: ConfigProblem[] = [...problems];
  let mandates: string[] = [];
  let dockerError: string | null = null;
  // When the YAML itself does not parse, nothing of the file is known: there are no mandates to check.
  if (invalidRefs !== UNKNOWN_REFS) {
    const docker = config.docker.enabled ? dockerClient(config.docker.socket_path) : null;
    const snapshot = await buildSnapshot(docker, config, sources, path, invalidRefs);
    // loadConfig checks the static mandates' target and middleware names too, with the same wording.
    for (const p of snapshot.problems) {
      if (!all.some((q) => q.where === p.where && q.message === p.message)) all.push(p);
    }
    mandates = snapshot.mandates.map((m) => m.name);
    // Programs a target or middleware needs on this host (ccrypt, age, …): before the first run fails on them.
    all.push(...(await missingTools(config, path, invalidRefs)));
    // docker.enabled: false is a choice, not a problem: nothing to say about Docker then.
    dockerError = docker ? snapshot.docker_error : null;
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
