import type Docker from 'dockerode';
import { performance } from 'node:perf_hooks';
import type { BackerConfig } from '../config/schema.js';
import { notABoolean, parseBoolean } from '../config/boolean.js';
import { labelsToRaw, parseMandate } from '../mandates/parse.js';
import { whereIn, type ConfigProblem, type InvalidRefs } from '../config/problems.js';
import type { MandateSpec } from '../mandates/types.js';
import { describeError } from '../errors.js';
import { envToRecord } from '../sources/docker-exec.js';
import type { SourceRegistry } from '../sources/registry.js';
import { byCodeUnit } from '../util/compare.js';

/** Where a snapshot's time went, in ms (discovery logs it for the first snapshot: the start-up's marks). */
export interface SnapshotTimings {
  list_ms: number;
  inspect_ms: number;
  inspected: number;
  parse_ms: number;
  parsed: number;
}

export interface Snapshot {
  mandates: MandateSpec[];
  problems: ConfigProblem[];
  /** null when Docker answered, else why it did not. */
  docker_error: string | null;
  /** Mandates that exist (enabled labels or a static entry) but are not run because of their problems. */
  skipped: SkippedMandate[];
}

export interface SkippedMandate {
  name: string;
  origin: MandateSpec['origin'];
  container: string | null;
  problems: ConfigProblem[];
}

interface ContainerFacts {
  id: string;
  name: string;
  labels: Record<string, string>;
  env: Record<string, string>;
}

/**
 * Environments of inspected containers by container id, kept by discovery between snapshots so an
 * event re-inspects only the container it names, and the periodic re-list none. A container's
 * Config.Env cannot change under the same id (a changed environment means a new container);
 * discovery still clears it on a requested full re-list (SIGHUP, `refresh()`) and after a gap in
 * the event stream. Failed inspections are not kept.
 */
export type InspectCache = Map<string, Record<string, string>>;

async function containerEnv(docker: Docker, id: string, cache: InspectCache | undefined, timings: SnapshotTimings | undefined): Promise<Record<string, string>> {
  const known = cache?.get(id);
  if (known) return known;
  if (timings) timings.inspected++;
  const info = await docker.getContainer(id).inspect().catch(() => undefined);
  const env = envToRecord(info?.Config.Env);
  if (info && cache) cache.set(id, env);
  return env;
}

/**
 * Inspections under way at once. 500 containers (bench/containers.ts --inspect-concurrency, 2
 * shared cores, load 34): list + inspections 930 ms 4 at a time, 693 ms 8, 390 ms 16, 401 ms 32.
 */
const INSPECT_CONCURRENCY = 16;

async function listContainers(docker: Docker, named: ReadonlySet<string>, cache?: InspectCache, timings?: SnapshotTimings): Promise<ContainerFacts[]> {
  let t0 = performance.now();
  const summaries = await docker.listContainers({ all: true });
  if (timings) timings.list_ms = performance.now() - t0;
  t0 = performance.now();
  const out: ContainerFacts[] = summaries.map((s) => ({ id: s.Id, name: (s.Names[0] ?? s.Id).replace(/^\//, ''), labels: s.Labels ?? {}, env: {} }));
  // Only labelled containers and those of static mandates are inspected: their environment resolves Env: references.
  const wanted = out.flatMap((c, i) => (named.has(c.name) || Object.keys(c.labels).some((k) => k.startsWith('backer.')) ? [i] : []));
  let next = 0;
  const worker = async (): Promise<void> => {
    for (let at = next++; at < wanted.length; at = next++) {
      const i = wanted[at] ?? 0;
      const facts = out[i];
      const summary = summaries[i];
      if (facts && summary) facts.env = await containerEnv(docker, summary.Id, cache, timings);
    }
  };
  await Promise.all(Array.from({ length: Math.min(INSPECT_CONCURRENCY, wanted.length) }, worker));
  if (timings) timings.inspect_ms = performance.now() - t0;
  if (cache) {
    const present = new Set(summaries.map((s) => s.Id));
    for (const id of [...cache.keys()]) if (!present.has(id)) cache.delete(id);
  }
  return out;
}

interface Collected {
  mandates: Map<string, MandateSpec>;
  problems: ConfigProblem[];
  skipped: SkippedMandate[];
}

interface BuildContext {
  config: BackerConfig;
  sources: SourceRegistry;
  configFile: string;
  invalidRefs: InvalidRefs | undefined;
  timings: SnapshotTimings | undefined;
}

/** What a labelled container adds to the snapshot. */
interface LabelOutcome {
  problems: ConfigProblem[];
  mandate?: MandateSpec;
  skipped?: SkippedMandate;
}

/**
 * Label mandates by container id, kept by discovery between snapshots: a container's labels and
 * environment cannot change under the same id, and the config is the daemon's, so a re-list parses
 * only new (or renamed) containers; with 500 labelled containers that is most of a re-list's CPU.
 * Checked against the name, the labels and the environment object (a new inspection, as after
 * SIGHUP, parses again).
 */
export type ParseCache = Map<string, { name: string; labels: string; env: Record<string, string>; outcome: LabelOutcome }>;

function labelOutcome(c: ContainerFacts, ctx: BuildContext, cache: ParseCache | undefined): LabelOutcome {
  const labels = JSON.stringify(c.labels);
  const known = cache?.get(c.id);
  if (known !== undefined && known.name === c.name && known.labels === labels && known.env === c.env) return known.outcome;
  if (ctx.timings) ctx.timings.parsed++;
  const outcome = parseLabelMandate(c, ctx);
  cache?.set(c.id, { name: c.name, labels, env: c.env, outcome });
  return outcome;
}

function addLabelMandate(c: ContainerFacts, ctx: BuildContext, out: Collected, cache: ParseCache | undefined): void {
  const outcome = labelOutcome(c, ctx, cache);
  out.problems.push(...outcome.problems);
  if (outcome.mandate) out.mandates.set(outcome.mandate.name, outcome.mandate);
  if (outcome.skipped) out.skipped.push(outcome.skipped);
}

/** A labelled container's mandate: backer.enabled takes every boolean spelling; any other value is a problem. */
function parseLabelMandate(c: ContainerFacts, ctx: BuildContext): LabelOutcome {
  const enabledLabel = c.labels['backer.enabled'];
  if (enabledLabel === undefined) return { problems: [] };
  const enabled = parseBoolean(enabledLabel);
  if (enabled === false) return { problems: [] };
  if (enabled === undefined) {
    const problem = { where: `container ${c.name} label backer.enabled`, message: `${notABoolean(enabledLabel)}; the container is not backed up` };
    return { problems: [problem], skipped: { name: c.name, origin: 'labels', container: c.name, problems: [problem] } };
  }
  const result = parseMandate({
    name: c.name,
    raw: labelsToRaw(c.labels),
    origin: 'labels',
    container: c.name,
    containerEnv: c.env,
    describe: (key) => `container ${c.name} label backer.${key}`,
    config: ctx.config,
    sources: ctx.sources,
    invalidRefs: ctx.invalidRefs,
  });
  if (result.mandate) return { problems: result.problems, mandate: result.mandate };
  if (result.disabled !== true) return { problems: result.problems, skipped: { name: c.name, origin: 'labels', container: c.name, problems: result.problems } };
  return { problems: result.problems };
}

/** A static mandate, overlaying the labels of its container when Docker knows it. */
function addStaticMandate(
  name: string,
  entry: BackerConfig['mandates'][string],
  byName: ReadonlyMap<string, ContainerFacts>,
  dockerError: string | null,
  ctx: BuildContext,
  out: Collected,
): void {
  const where = (key: string): string => whereIn(ctx.configFile, ['mandates', name, ...key.split('.')]);
  const containerName = entry.container ?? null;
  const container = containerName === null ? undefined : byName.get(containerName);
  if (containerName !== null && !container && dockerError === null) {
    out.problems.push({ where: where('container'), message: `container ${containerName} does not exist (yet); its backups will fail until it does` });
  }
  const { container: _c, ...rest } = entry;
  const raw = { ...(container ? labelsToRaw(container.labels) : {}), ...rest };
  // The container's backer.enabled label does not switch a static mandate; its own `enabled` does.
  if (rest.enabled === undefined) delete raw.enabled;
  const result = parseMandate({
    name,
    raw,
    origin: 'config',
    container: containerName,
    containerEnv: container?.env,
    labelKeys: new Set(Object.keys(raw).filter((key) => !(key in rest))),
    // Keys that come from the container's labels are reported there; all others (also missing ones) in the file.
    describe: (key) => (key in raw && !(key in rest) ? `container ${containerName ?? ''} label backer.${key}` : where(key)),
    config: ctx.config,
    sources: ctx.sources,
    invalidRefs: ctx.invalidRefs,
  });
  out.problems.push(...result.problems);
  if (!result.mandate && result.disabled !== true) out.skipped.push({ name, origin: 'config', container: containerName, problems: result.problems });
  if (result.mandate) {
    if (out.mandates.has(name)) out.problems.push({ where: where('container'), message: `mandate ${name} also names a labelled container; the static mandate wins` });
    out.mandates.set(name, result.mandate);
  }
}

/**
 * Builds the whole set of mandates from scratch (level-triggered): every labelled container
 * with backer.enabled=true, then the static mandates of the config, which overlay the labels of
 * their container and replace that container's label mandate.
 */
export async function buildSnapshot(
  docker: Docker | null,
  config: BackerConfig,
  sources: SourceRegistry,
  configFile: string,
  /** config check only: targets and middleware with problems of their own. */
  invalidRefs?: InvalidRefs,
  /** discovery only: the environments it already inspected (see InspectCache). */
  inspected?: InspectCache,
  /** discovery only: the label mandates it already parsed (see ParseCache). */
  parsed?: ParseCache,
  /** Filled in when given: where the time went. */
  timings?: SnapshotTimings,
): Promise<Snapshot> {
  const staticContainers = new Set(
    Object.values(config.mandates).map((m) => m.container).filter((c): c is string => c !== undefined),
  );
  let containers: ContainerFacts[] = [];
  let dockerError: string | null = null;
  if (docker) {
    try {
      containers = await listContainers(docker, staticContainers, inspected, timings);
    } catch (err) {
      dockerError = describeError(err);
    }
  } else {
    dockerError = 'Docker discovery is disabled (docker.enabled: false)';
  }
  const ctx: BuildContext = { config, sources, configFile, invalidRefs, timings };
  const out: Collected = { mandates: new Map(), problems: [], skipped: [] };
  const parseStart = performance.now();
  for (const c of containers) {
    if (!staticContainers.has(c.name)) addLabelMandate(c, ctx, out, parsed);
  }
  if (parsed && dockerError === null) {
    const present = new Set(containers.map((c) => c.id));
    for (const id of [...parsed.keys()]) if (!present.has(id)) parsed.delete(id);
  }
  const byName = new Map(containers.map((c) => [c.name, c]));
  for (const [name, entry] of Object.entries(config.mandates)) addStaticMandate(name, entry, byName, dockerError, ctx, out);
  if (timings) timings.parse_ms = performance.now() - parseStart;
  const byMandate = (a: { name: string }, b: { name: string }): number => byCodeUnit(a.name, b.name);
  return { mandates: [...out.mandates.values()].sort(byMandate), problems: out.problems, docker_error: dockerError, skipped: out.skipped.sort(byMandate) };
}

/**
 * The problems that make the config file itself invalid: those of static mandates, at their
 * place in the file. Labels stay non-fatal, and a static mandate with a container is judged only
 * when Docker answered (its container's labels may supply the missing keys).
 */
export function staticMandateProblems(snapshot: Snapshot, configFile: string): ConfigProblem[] {
  return snapshot.skipped
    .filter((s) => s.origin === 'config' && (s.container === null || snapshot.docker_error === null))
    .flatMap((s) => s.problems.filter((p) => p.where === configFile || p.where.startsWith(`${configFile}: `)));
}
