import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseConfigText } from '../config/load.js';
import type { BackerConfig } from '../config/schema.js';
import { BackerError } from '../errors.js';

/** The embedded default: a static files mandate to a local target, plus any labelled containers. */
export const DEMO_CONFIG = `
data_dir: \${BACKER_DATA_DIR:-./backer-data}
log:
  format: pretty
docker:
  enabled: true
targets:
  - name: local
    type: local
    path: \${BACKER_DATA_DIR:-./backer-data}/demo-backups
    default: true
middleware:
  - name: compression
    type: gzip
    level: 6
mandates:
  demo-files:
    type: files
    files:
      path: \${BACKER_DEMO_FILES}
    interval: "*/5 * * * *"
    middleware: compression
    retention: 5
`;

/** The demo config, used by `backer demo` and by any command given `--demo`. */
export function loadDemoConfig(): { config: BackerConfig; path: string; files: string } {
  const files = process.env.BACKER_DEMO_FILES ?? fileURLToPath(new URL('../../demo/files', import.meta.url));
  if (!existsSync(files)) throw new BackerError('CONFIG_INVALID', `demo files not found at ${files}`, { component: 'demo' });
  const path = 'embedded demo config';
  const { config, problems } = parseConfigText(DEMO_CONFIG, path, { ...process.env, BACKER_DEMO_FILES: files }, process.cwd());
  if (problems.length > 0 || !config) {
    throw new BackerError('CONFIG_INVALID', problems.map((p) => `${p.where}: ${p.message}`).join('\n'), { component: 'demo' });
  }
  return { config, path, files };
}
