import type { Discovery } from '../../src/discovery/discovery.js';
import type { Snapshot } from '../../src/discovery/snapshot.js';

/** A discovery that always holds `snapshot` (API tests without Docker). */
export function staticDiscovery(snapshot: Snapshot): Discovery {
  return {
    start: () => Promise.resolve(),
    current: () => snapshot,
    refresh: () => Promise.resolve(snapshot),
    close: () => Promise.resolve(),
  };
}
