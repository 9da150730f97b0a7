import type Docker from 'dockerode';
import { describeError } from '../errors.js';
import type { MandateSpec } from '../mandates/types.js';
import type { BackupServices } from '../pipeline/run-backup.js';
import type { DumpContext, SourceDefinition } from '../sources/types.js';
import { containerRunning, toolsPresent } from './container-checks.js';
import { middlewareUsable } from './middleware-probe.js';
import { targetWritable } from './target-probe.js';

/** One line of the report: what was checked, whether it passed, and what was found. */
export interface CheckResult {
  name: string;
  ok: boolean;
  message: string;
  duration_ms: number;
}

/** What `backer mandates test` and `POST /v1/mandates/{name}/test` answer. */
export interface MandateTestReport {
  mandate: string;
  /** true only when every check passed. */
  ok: boolean;
  checks: CheckResult[];
}

/** What the checks use: the pipeline's plugins, Docker, logging and settings. */
export type CheckServices = Pick<BackupServices, 'sources' | 'targets' | 'middleware' | 'logger' | 'registerSecret' | 'settings'> & { docker: Docker };

/** A check that hangs (a frozen exec, a target that never answers) fails after this long. */
export const CHECK_TIMEOUT_MS = 60_000;

/** A check to run: resolves with its message, rejects with why it failed. */
export type Check = (signal: AbortSignal) => Promise<string>;

/** Runs one check with its own timeout; never rejects. */
export async function runCheck(name: string, check: Check, signal: AbortSignal): Promise<CheckResult> {
  const started = performance.now();
  const scoped = AbortSignal.any([signal, AbortSignal.timeout(CHECK_TIMEOUT_MS)]);
  const elapsed = (): number => Math.round(performance.now() - started);
  try {
    const message = await check(scoped);
    return { name, ok: true, message, duration_ms: elapsed() };
  } catch (err) {
    const timedOut = scoped.aborted && !signal.aborted;
    return { name, ok: false, message: timedOut ? `no answer within ${CHECK_TIMEOUT_MS / 1000}s` : describeError(err), duration_ms: elapsed() };
  }
}

/** A check that did not run because an earlier one failed. */
function notRun(name: string, why: string): CheckResult {
  return { name, ok: false, message: `not checked: ${why}`, duration_ms: 0 };
}

function dumpContext(mandate: MandateSpec, services: CheckServices, signal: AbortSignal): DumpContext {
  return {
    mandate: mandate.name,
    signal,
    logger: services.logger.child({ mandate: mandate.name, component: 'mandate-test' }),
    docker: services.docker,
    registerSecret: services.registerSecret,
    ...(services.settings === undefined ? {} : { settings: services.settings }),
  };
}

/** Container, tools and credentials: what the source itself needs. */
async function sourceChecks(mandate: MandateSpec, definition: SourceDefinition<unknown>, services: CheckServices, signal: AbortSignal): Promise<CheckResult[]> {
  const results: CheckResult[] = [];
  const container = mandate.source.container;
  const probe = definition.probe;
  const toolsName = definition.toolsIn === 'host' ? 'dump tool present (host)' : 'dump tool present';
  const runsInContainer = container !== null && (definition.toolsIn ?? 'container') === 'container';
  if (container !== null) {
    const running = await runCheck('container running', () => containerRunning(services.docker, container), signal);
    results.push(running);
    if (!running.ok) {
      if (runsInContainer) results.push(notRun(toolsName, `container ${container} is not running`));
      if (probe !== undefined) results.push(notRun(probe.name, `container ${container} is not running`));
      return results;
    }
  }
  const tools = definition.tools ?? [];
  if (tools.length > 0 && definition.toolsIn !== 'helper') {
    const where = runsInContainer ? { container: container ?? '' } : { host: true as const };
    results.push(await runCheck(toolsName, () => toolsPresent(services.docker, where, tools), signal));
  }
  if (probe !== undefined) {
    results.push(
      await runCheck(probe.name, (scoped) => probe.run(mandate.source.options, { container }, dumpContext(mandate, services, scoped)), signal),
    );
  }
  return results;
}

/**
 * Every check a backup of `mandate` needs, without storing a backup, writing a manifest or
 * stopping a container: the container runs, the dump tools are there, the credentials are
 * accepted, every target takes, returns, lists and deletes a small probe object, every
 * middleware's program is installed and encodes (and decodes, when it can) a few bytes.
 */
export async function testMandate(mandate: MandateSpec, services: CheckServices, signal: AbortSignal): Promise<MandateTestReport> {
  const checks: CheckResult[] = [];
  const definition = services.sources.get(mandate.source.type);
  if (definition === undefined) {
    checks.push({ name: 'source known', ok: false, message: `unknown source type ${mandate.source.type}`, duration_ms: 0 });
  } else {
    checks.push(...(await sourceChecks(mandate, definition, services, signal)));
  }
  for (const name of mandate.targets) {
    const target = services.targets.get(name);
    const check: Check = target === undefined ? () => Promise.reject(new Error(`target ${name} is not configured`)) : (s) => targetWritable(target, mandate.name, s);
    checks.push(await runCheck(`target ${name} writable and listable`, check, signal));
  }
  for (const name of mandate.middleware) {
    const middleware = services.middleware.get(name);
    const check: Check = middleware === undefined ? () => Promise.reject(new Error(`middleware ${name} is not configured`)) : (s) => middlewareUsable(middleware, s);
    checks.push(await runCheck(`middleware ${name} usable`, check, signal));
  }
  return { mandate: mandate.name, ok: checks.every((c) => c.ok), checks };
}
