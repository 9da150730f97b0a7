import type Docker from 'dockerode';
import type { BackerConfig } from '../config/schema.js';
import type { MandateSpec } from '../mandates/types.js';
import { createDiscovery, type Discovery } from '../discovery/discovery.js';
import { dockerClient, lazyDockerClient } from './docker-client.js';
import type { SkippedMandate } from '../discovery/snapshot.js';
import { BackerError } from '../errors.js';
import { createLogger, SecretRegistry, type Logger } from '../logging/logger.js';
import { createMiddleware } from '../middleware/index.js';
import type { Middleware } from '../middleware/types.js';
import { runBackup, type BackupOptions, type BackupResult, type BackupServices } from '../pipeline/run-backup.js';
import { sources } from '../sources/index.js';
import { stoppedContainersDir } from '../state/stopped-containers.js';
import { createTarget } from '../targets/index.js';
import { destinationSecrets } from '../notify/delivery.js';
import type { Target } from '../targets/types.js';
import { setWorkNice } from '../util/work-priority.js';

/** Everything a daemon or a one-shot command needs, built once from a validated config. */
export interface Services {
  config: BackerConfig;
  configFile: string;
  logger: Logger;
  secrets: SecretRegistry;
  docker: Docker | null;
  targets: Map<string, Target>;
  middleware: Map<string, Middleware>;
  discovery: Discovery;
  mandate(name: string): MandateSpec;
  /** Runs one backup of a mandate now; `override` replaces parts of it for this run only. */
  backup(name: string, signal: AbortSignal, override?: Partial<Pick<MandateSpec, 'middleware' | 'targets'>>, options?: BackupOptions): Promise<BackupResult>;
  /** What the pipelines (backup, restore, verify, drill) need: plugins, Docker, logging, settings. */
  pipeline: BackupServices & { docker: Docker };
  close(): Promise<void>;
}

export interface ServiceOptions {
  config: BackerConfig;
  configFile: string;
  logger?: Logger;
  secrets?: SecretRegistry;
  onSnapshot?: Parameters<typeof createDiscovery>[0]['onSnapshot'];
}

/** Secrets that come from the config itself: scrubbed from logs from the first line on. */
function registerConfigSecrets(config: BackerConfig, secrets: SecretRegistry): void {
  for (const t of config.targets) if (t.type === 's3' && t.secret_access_key) secrets.add(t.secret_access_key);
  for (const m of config.middleware) if (m.type === 'ccrypt') secrets.add(m.key);
  // Notification URLs: passwords, tokens and webhook paths (src/notify).
  for (const n of config.notifications) for (const v of destinationSecrets(n)) secrets.add(v);
  // Multi-line keys also line by line: a log line may quote one line of a key, never the whole block.
  const keyLines = (key: string | undefined): string[] => (key === undefined ? [] : [key, ...key.split(/\r?\n/).filter((l) => l.length >= 20 && !l.startsWith('-----'))]);
  for (const m of config.middleware) {
    if (m.type === 'gpg') for (const v of [m.passphrase, m.private_key_passphrase, ...keyLines(m.private_key)]) if (v !== undefined) secrets.add(v);
    if (m.type === 'age') for (const v of keyLines(m.identity)) secrets.add(v);
  }
}

/** A mandate that exists but is not run: say so, and why, instead of "not found". */
function skippedError(m: SkippedMandate): BackerError {
  // Each problem's `where` names the container label or the config path: fix that, and it runs.
  const problems = m.problems.map((p) => `${p.where}: ${p.message}`).join('; ');
  return new BackerError('MANDATE_SKIPPED', `mandate ${m.name} exists but is skipped: ${problems}`, {
    component: 'daemon',
    details: { mandate: m.name, problems: m.problems },
    permanent: true,
  });
}

export function createServices(options: ServiceOptions): Services {
  const { config } = options;
  const secrets = options.secrets ?? new SecretRegistry();
  registerConfigSecrets(config, secrets);
  const logger = options.logger ?? createLogger({ level: config.log.level, format: config.log.format, secrets });
  setWorkNice(config.queue.nice, (message) => logger.warn({ component: 'queue' }, message));
  const docker = config.docker.enabled ? dockerClient(config.docker.socket_path) : null;
  const targets = new Map(config.targets.map((t) => [t.name, createTarget(t)]));
  const middleware = new Map(config.middleware.map((m) => [m.name, createMiddleware(m)]));
  const discovery = createDiscovery({
    docker,
    config,
    configFile: options.configFile,
    sources,
    logger: logger.child({ component: 'discovery' }),
    onSnapshot: options.onSnapshot ?? (() => undefined),
  });

  const mandate = (name: string): MandateSpec => {
    const found = discovery.current().mandates.find((m) => m.name === name);
    if (!found) {
      const skipped = discovery.current().skipped.find((m) => m.name === name);
      if (skipped) throw skippedError(skipped);
      const known = discovery.current().mandates.map((m) => m.name);
      throw new BackerError('MANDATE_NOT_FOUND', `no mandate named ${name}; known: ${known.length ? known.join(', ') : 'none'}`, {
        component: 'daemon',
        details: { mandate: name },
        permanent: true,
      });
    }
    return found;
  };

  const pipeline: BackupServices & { docker: Docker } = {
    sources,
    targets,
    middleware,
    // Host sources never touch Docker: with Docker off, dockerode loads only if something uses it.
    docker: docker ?? lazyDockerClient(config.docker.socket_path),
    logger,
    registerSecret: (v) => secrets.add(v),
    settings: { volumeHelperImage: config.volume.helper_image, volumeHelperBinds: config.volume.helper_binds, stoppedContainersDir: stoppedContainersDir(config.data_dir) },
  };

  return {
    config,
    configFile: options.configFile,
    pipeline,
    logger,
    secrets,
    docker,
    targets,
    middleware,
    discovery,
    mandate,
    backup(name, signal, override = {}, backupOptions = {}) {
      if (!docker && mandate(name).source.container !== null) {
        throw new BackerError('DOCKER_UNAVAILABLE', 'Docker discovery is disabled', { component: 'daemon', permanent: true });
      }
      return runBackup({ ...mandate(name), ...override }, pipeline, signal, backupOptions);
    },
    async close() {
      await discovery.close();
      await Promise.all([...targets.values()].map((t) => t.close()));
      // gpg keeps a private GNUPGHOME per instance: remove it with the daemon.
      await Promise.all([...middleware.values()].map((m) => (m.close ? m.close() : Promise.resolve())));
    },
  };
}
