import { HOST_IMAGE } from '../setup/services.js';
import { cli } from './cli.js';

/**
 * Config text and a CLI wrapper for the daemon tests of the volume source (and of the sources that
 * run the volume helper: sqlite's swap, the drills' scratch volumes).
 */

/** The `volume:` section: helper containers of the host image, which see the host's tools through /usr. */
export const VOLUME_HELPER_YAML = `volume:\n  helper_image: ${HOST_IMAGE}\n  helper_binds: [/usr:/usr:ro]\n`;

/** A static volume mandate of `container`, as an entry under `mandates:`; its schedule never fires during a test run. */
export function volumeMandateYaml(name: string, container: string, target = 'local'): string {
  return `  ${name}:\n    container: ${container}\n    type: volume\n    interval: "0 0 29 2 *"\n    target: ${target}\n`;
}

export interface BackerRun {
  code: number;
  /** stdout and stderr together (for the failure messages of the assertions). */
  out: string;
  stdout: string;
}

/** `backer ARGS --config configPath`, with `env` added to the CLI's environment. */
export function backerCli(configPath: string, env: Record<string, string> = {}): (args: string[]) => Promise<BackerRun> {
  return async (args) => {
    const r = await cli([...args, '--config', configPath], env);
    return { code: r.code, out: r.stdout + r.stderr, stdout: r.stdout };
  };
}
