/**
 * The README's reference is tested against the schema: its config example must load without a
 * problem, and every label in its label table must be accepted by the mandate parser.
 */
import { describe, expect, it } from 'vitest';
import { parseConfigText } from '../src/config/load.js';
import { parseMandate } from '../src/mandates/parse.js';
import { sources } from '../src/sources/index.js';
import { configExample, readme } from './helpers/readme.js';

const env = { S3_KEY: 'k', S3_SECRET: 's', CCRYPT_KEY: 'c', GPG_PASSPHRASE: 'g', HOME: '/root' };

describe('README reference', () => {
  it('has a config example that loads without problems', () => {
    const { problems } = parseConfigText(configExample(), 'README.md', env, '/etc/backer');
    expect(problems).toEqual([]);
  });

  it('lists only labels that the parser accepts', () => {
    const { config } = parseConfigText(configExample(), 'README.md', env, '/etc/backer');
    const labels = [...readme.matchAll(/^\| `backer\.([a-z0-9_.<>-]+)` \|/gm)].map((m) => m[1] ?? '');
    expect(labels.length).toBeGreaterThan(10);
    for (const label of labels) {
      const key = label.replace('<name>', 'single-transaction');
      const type = key.split('.')[0] ?? '';
      const raw: Record<string, string> = { type: sources.has(type) ? type : 'mysql' };
      if (key !== 'type' && key !== 'enabled') raw[key] = sampleValue(key);
      if (type === 'files' || raw.type === 'files') raw['files.path'] ??= '/srv';
      const result = parseMandate({
        name: 'docs',
        raw,
        origin: 'labels',
        container: 'docs-db',
        describe: (k) => `label backer.${k}`,
        config,
        sources,
      });
      const unknown = result.problems.filter((p) => /unknown/.test(p.message));
      expect(unknown, `backer.${label}`).toEqual([]);
    }
  });
});

function sampleValue(key: string): string {
  if (key === 'interval') return '0 3 * * *';
  if (key === 'retention') return '3';
  if (key === 'target') return 'local';
  if (key === 'middleware') return 'compression';
  if (key === 'name_pattern') return '<DATE>-<MANDATE>';
  if (key.endsWith('.path') || key.endsWith('paths')) return '/data';
  return 'true';
}
