import { readFileSync } from 'node:fs';

/** The README, read once per test file. */
export const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');

/** The ```yaml example under "## Configuration" in the README: the reference config. */
export function configExample(): string {
  const section = readme.slice(readme.indexOf('## Configuration'));
  const match = /```yaml\n([\s\S]*?)```/.exec(section);
  if (!match?.[1]) throw new Error('no yaml example in the Configuration section');
  return match[1];
}
