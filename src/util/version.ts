import { readFileSync } from 'node:fs';

function readVersion(): string {
  // dist/util/version.js and src/util/version.ts both sit two levels below package.json
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: string };
  return pkg.version ?? '0.0.0';
}

export const BACKER_VERSION = readVersion();
