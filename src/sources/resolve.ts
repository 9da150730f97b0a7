import { resolveRef, type Ref } from '../config/refs.js';
import { BackerError } from '../errors.js';
import { execCapture, lastLines, type ContainerInfo } from './docker-exec.js';
import type { DumpContext } from './types.js';

export interface ResolveOptions {
  /** Registers the value with the log scrubber (passwords, keys). Default false. */
  secret?: boolean;
  /** User for reading `File:` references inside the container. Default: the container's user. */
  execUser?: string;
}

/**
 * Resolves a label reference against a running container: `Env:` from its environment, `File:`
 * by reading the file inside it (a Docker secret, say), literals as they are.
 */
export async function resolveInContainer(ref: Ref, info: ContainerInfo, context: DumpContext, component: string, options: ResolveOptions = {}): Promise<string> {
  const value = await resolveRef(ref, {
    env: info.env,
    readFile: async (path) => {
      const cmd = { cmd: ['cat', path], ...(options.execUser === undefined ? {} : { user: options.execUser }) };
      const { exitCode, stdout, stderr } = await execCapture(context.docker, info.name, cmd, component);
      if (exitCode !== 0) {
        throw new BackerError('SECRET_UNRESOLVED', `cannot read ${path} in container ${info.name}: ${lastLines(stderr || stdout)}`, {
          component,
          details: { container: info.name, path },
        });
      }
      return stdout;
    },
  });
  if (options.secret) context.registerSecret(value);
  return value;
}
