import { loadDemoConfig } from '../demo-config.js';
import { runDaemon } from './daemon.js';

export async function demoCommand(): Promise<number> {
  const { config, path, files } = loadDemoConfig();
  const target = config.targets[0];
  process.stderr.write(
    `Backer demo: backing up ${files} now and every 5 minutes to ${target?.type === 'local' ? target.path : '?'}\n` +
      `List the backups from another terminal with: node bin/backer.js backups list --demo\n`,
  );
  return runDaemon(config, path, { runOnStart: ['demo-files'] });
}
