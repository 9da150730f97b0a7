import type { Services } from '../daemon/services.js';
import type { EventBus } from '../events/bus.js';
import type { SentryOptions } from './reporter.js';
import type { SentryConfig } from './schema.js';

/** The reporter's options from the daemon's services (kept out of daemon.ts). */
export function sentryOptions(services: Services, events: EventBus, config: SentryConfig): SentryOptions {
  return {
    config,
    configFile: services.configFile,
    secrets: services.secrets,
    events,
    intervalOf: (mandate) => services.discovery.current().mandates.find((m) => m.name === mandate)?.interval,
    logger: services.logger,
  };
}
