import type Docker from 'dockerode';
import type { BackerConfig } from '../config/schema.js';
import { labelsToRaw, parseMandate } from '../config/mandate.js';
import type { ConfigProblem, MandateSpec } from '../config/mandate-types.js';
import { describeError } from '../errors.js';
import { envToRecord } from '../sources/docker-exec.js';
import type { SourceRegistry } from '../sources/registry.js';

export interface Snapshot {
  mandates: MandateSpec[];
  problems: ConfigProblem[];
  /** null when Docker answered, else why it did not. */
  docker_error: string | null;
}

interface ContainerFacts {
  name: string;
  labels: Record<string, string>;
  env: Record<string, string>;
}

async function listContainers(docker: Docker, named: ReadonlySet<string>): Promise<ContainerFacts[]> {
  const summaries = await docker.listContainers({ all: true });
  const out: ContainerFacts[] = [];
  for (const s of summaries) {
    const name = (s.Names[0] ?? s.Id).replace(/^\//, '');
    const labels = s.Labels ?? {};
    if (!named.has(name) && !Object.keys(labels).some((k) => k.startsWith('backer.'))) {
      out.push({ name, labels, env: {} });
      continue;
    }
    // Only labelled containers and those of static mandates are inspected: their environment resolves Env: references.
    const info = await docker.getContainer(s.Id).inspect().catch(() => undefined);
    out.push({ name, labels, env: envToRecord(info?.Config.Env) });
  }
  return out;
}

/**
 * Builds the whole set of mandates from scratch (level-triggered): every labelled container
 * with backer.enabled=true, then the static mandates of the config, which overlay the labels of
 * their container and replace that container's label mandate.
 */
export async function buildSnapshot(docker: Docker | null, config: BackerConfig, sources: SourceRegistry, configFile: string): Promise<Snapshot> {
  const problems: ConfigProblem[] = [];
  const staticContainers = new Set(
    Object.values(config.mandates).map((m) => m.container).filter((c): c is string => c !== undefined),
  );
  let containers: ContainerFacts[] = [];
  let dockerError: string | null = null;
  if (docker) {
    try {
      containers = await listContainers(docker, staticContainers);
    } catch (err) {
      dockerError = describeError(err);
    }
  } else {
    dockerError = 'Docker discovery is disabled (docker.enabled: false)';
  }
  const byName = new Map(containers.map((c) => [c.name, c]));
  const mandates = new Map<string, MandateSpec>();

  for (const c of containers) {
    if (c.labels['backer.enabled'] !== 'true' || staticContainers.has(c.name)) continue;
    const result = parseMandate({
      name: c.name,
      raw: labelsToRaw(c.labels),
      origin: 'labels',
      container: c.name,
      containerEnv: c.env,
      describe: (key) => `container ${c.name} label backer.${key}`,
      config,
      sources,
    });
    problems.push(...result.problems);
    if (result.mandate) mandates.set(result.mandate.name, result.mandate);
  }

  for (const [name, entry] of Object.entries(config.mandates)) {
    const where = (key: string): string => `${configFile}: mandates.${name}.${key}`;
    const containerName = entry.container ?? null;
    const container = containerName === null ? undefined : byName.get(containerName);
    if (containerName !== null && !container && dockerError === null) {
      problems.push({ where: where('container'), message: `container ${containerName} does not exist (yet); its backups will fail until it does` });
    }
    const { container: _c, ...rest } = entry;
    const raw = { ...(container ? labelsToRaw(container.labels) : {}), ...rest };
    delete raw.enabled;
    const result = parseMandate({
      name,
      raw,
      origin: 'config',
      container: containerName,
      containerEnv: container?.env,
      describe: (key) => (key in rest ? where(key) : `container ${containerName ?? ''} label backer.${key}`),
      config,
      sources,
    });
    problems.push(...result.problems);
    if (result.mandate) {
      if (mandates.has(name)) problems.push({ where: where('container'), message: `mandate ${name} also names a labelled container; the static mandate wins` });
      mandates.set(name, result.mandate);
    }
  }
  return { mandates: [...mandates.values()].sort((a, b) => a.name.localeCompare(b.name)), problems, docker_error: dockerError };
}
