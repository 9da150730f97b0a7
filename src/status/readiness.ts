import type Docker from 'dockerode';
import { describeError } from '../errors.js';
import type { StateDb } from '../state/db.js';
import type { CheckResult, ReadinessProbe } from './types.js';

/** Docker gets this long to answer a ping. */
export const DOCKER_PING_TIMEOUT_MS = 3_000;

export interface ReadinessOptions {
  /** null: Docker discovery is off (`docker.enabled: false`): its check is `disabled`, not failed. */
  docker: Pick<Docker, 'ping'> | null;
  state: Pick<StateDb, 'db'>;
  /** Default: DOCKER_PING_TIMEOUT_MS. */
  timeoutMs?: number;
}

async function withTimeout<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not answer within ${ms / 1000} s`)), ms);
  });
  try {
    return await Promise.race([work, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

async function checkDocker(docker: ReadinessOptions['docker'], ms: number): Promise<CheckResult> {
  if (docker === null) return { status: 'disabled', message: 'Docker discovery is off (docker.enabled: false)' };
  try {
    await withTimeout(Promise.resolve(docker.ping()), ms, 'Docker');
    return { status: 'ok', message: null };
  } catch (err) {
    return { status: 'failed', message: `Docker is not reachable: ${describeError(err)}` };
  }
}

function checkState(state: ReadinessOptions['state']): CheckResult {
  try {
    state.db.prepare('SELECT 1 FROM jobs LIMIT 1').get();
    return { status: 'ok', message: null };
  } catch (err) {
    return { status: 'failed', message: `the state database cannot be read: ${describeError(err)}` };
  }
}

/**
 * The daemon's readiness (`/readyz`, `backer_ready`): Docker answers a ping within 3 s (unless
 * discovery is off) and state.db answers a query. Never throws.
 */
export function createReadiness(options: ReadinessOptions): ReadinessProbe {
  const ms = options.timeoutMs ?? DOCKER_PING_TIMEOUT_MS;
  return {
    async check() {
      const [docker, state] = await Promise.all([checkDocker(options.docker, ms), Promise.resolve(checkState(options.state))]);
      return { ready: docker.status !== 'failed' && state.status !== 'failed', checks: { docker, state } };
    },
  };
}
