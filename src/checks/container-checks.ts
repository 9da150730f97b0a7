import type Docker from 'dockerode';
import { BackerError } from '../errors.js';
import { findProgram } from '../plugins/tools.js';
import { execCapture, runningContainer } from '../sources/docker-exec.js';

const COMPONENT = 'mandate-test';

/** The container exists and runs (inspect only: nothing is started or stopped). */
export async function containerRunning(docker: Docker, container: string): Promise<string> {
  const info = await runningContainer(docker, container, COMPONENT);
  return `container ${container} runs (image ${info.image})`;
}

/** `command -v TOOL` inside the container, through sh; the path found, or null. */
async function inContainer(docker: Docker, container: string, tool: string): Promise<string | null> {
  // The name is an argument of the script ("$1"), never part of it.
  const { exitCode, stdout } = await execCapture(docker, container, { cmd: ['sh', '-c', 'command -v "$1"', 'sh', tool] }, COMPONENT);
  const path = stdout.trim().split('\n')[0] ?? '';
  return exitCode === 0 && path !== '' ? path : null;
}

/**
 * Every tool a source declares (`a|b`: either) is on the PATH of the container (or of the host,
 * for host sources). Rejects with TOOL_MISSING naming the missing ones.
 */
export async function toolsPresent(docker: Docker, where: { container: string } | { host: true }, tools: readonly string[]): Promise<string> {
  const lookup = (tool: string): Promise<string | null> =>
    'container' in where ? inContainer(docker, where.container, tool) : findProgram(tool).then((p) => p ?? null);
  const found: string[] = [];
  const missing: string[] = [];
  for (const spec of tools) {
    let path: string | null = null;
    for (const alternative of spec.split('|')) {
      path = await lookup(alternative);
      if (path !== null) break;
    }
    if (path === null) missing.push(spec.split('|').join(' or '));
    else found.push(path);
  }
  const place = 'container' in where ? `container ${where.container}` : 'the host';
  if (missing.length > 0) {
    throw new BackerError('TOOL_MISSING', `${place} has no ${missing.join(', ')} on its PATH`, { component: COMPONENT, details: { missing }, permanent: true });
  }
  return `${found.join(', ')} in ${place}`;
}
