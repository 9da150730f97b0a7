/**
 * examples/compose stays what the README shows and what Backer accepts: the README's compose
 * example is compose.yaml byte for byte, backer.yml loads without a problem from the backer
 * service's environment, and .env.example names every variable compose.yaml reads.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseConfigText } from '../src/config/load.js';
import { parseMandate } from '../src/mandates/parse.js';
import { sources } from '../src/sources/index.js';
import { EXAMPLE_DIR } from './helpers/compose.js';

const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
const compose = readFileSync(join(EXAMPLE_DIR, 'compose.yaml'), 'utf8');
const backerYml = readFileSync(join(EXAMPLE_DIR, 'backer.yml'), 'utf8');
const envExample = readFileSync(join(EXAMPLE_DIR, '.env.example'), 'utf8');

/** `${NAME}`, `${NAME:-default}`, `${NAME:?message}` in compose.yaml (`$$` is a literal `$`). */
function composeVariables(): string[] {
  const text = compose.replace(/\$\$/g, '');
  return [...new Set([...text.matchAll(/\$\{([A-Z][A-Z0-9_]*)/g)].map((m) => m[1] ?? ''))].sort();
}

/** The labels of one service in compose.yaml, as `key → value` (quotes removed, comments dropped). */
function serviceLabels(service: string): Record<string, string> {
  const block = new RegExp(`^  ${service}:\\n([\\s\\S]*?)(?=^  \\S|^\\S)`, 'm').exec(compose)?.[1] ?? '';
  const labels = /^ {4}labels:\n((?: {6}.*\n)+)/m.exec(block)?.[1] ?? '';
  const out: Record<string, string> = {};
  for (const line of labels.split('\n')) {
    const m = /^ {6}(backer\.[a-z0-9_.]+): ("[^"]*"|[^#\s]+)/.exec(line);
    if (m?.[1] !== undefined && m[2] !== undefined) out[m[1].slice('backer.'.length)] = m[2].replace(/^"|"$/g, '');
  }
  return out;
}

const ENV = {
  CCRYPT_KEY: 'k',
  AGE_RECIPIENT: 'age1ydu4z5e34va8f9rd0g4v8667uscz47q3sjvvgdp0pgx73r28m32sqvk6yy',
  S3_BUCKET: 'my-backups',
  S3_ENDPOINT: 'https://s3.example.com',
  S3_REGION: 'eu-central-1',
  S3_ACCESS_KEY_ID: 'id',
  S3_SECRET_ACCESS_KEY: 'secret',
};

describe('examples/compose', () => {
  it('is the compose example of the README, verbatim', () => {
    const section = readme.slice(readme.indexOf('## Label a container'));
    const example = /```yaml\n([\s\S]*?)```/.exec(section)?.[1];
    expect(example).toBe(compose);
  });

  it('has a backer.yml that loads without problems from the backer service environment', () => {
    const { problems, config } = parseConfigText(backerYml, 'backer.yml', ENV, '/etc/backer');
    expect(problems).toEqual([]);
    expect(config.targets.map((t) => t.name)).toEqual(['local', 's3']);
    expect(config.data_dir).toBe('/var/lib/backer');
    for (const v of Object.keys(ENV)) expect(compose).toMatch(new RegExp(`^ {6}${v}: \\$\\{${v}[:}]`, 'm'));
  });

  it('labels every service with labels the parser accepts against that backer.yml', () => {
    const { config } = parseConfigText(backerYml, 'backer.yml', ENV, '/etc/backer');
    const services = ['shop-db', 'app-pg', 'cache', 'site'];
    for (const service of services) {
      const raw = serviceLabels(service);
      expect(raw.enabled, service).toBe('true');
      const result = parseMandate({ name: service, raw, origin: 'labels', container: service, describe: (k) => `label backer.${k}`, config, sources });
      expect(result.problems, service).toEqual([]);
    }
  });

  it('has a .env.example that names every variable compose.yaml reads', () => {
    const keys = [...envExample.matchAll(/^#? ?([A-Z][A-Z0-9_]*)=/gm)].map((m) => m[1] ?? '');
    expect(composeVariables().filter((v) => !keys.includes(v))).toEqual([]);
  });
});
