/**
 * The config layer sits below the mandates layer: src/config reads backer.yml and knows nothing
 * of sources; src/mandates (labels and static mandates) uses both. No arrow may point up.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const SRC = resolve(dirname(fileURLToPath(import.meta.url)), '../../src');

/** Every module specifier of a TypeScript file: `import … from`, `export … from`, `import(…)`, side-effect imports. */
function specifiers(text: string): string[] {
  const found: string[] = [];
  const patterns = [/\b(?:import|export)\s[^'";]*?\sfrom\s*['"]([^'"]+)['"]/g, /\bimport\s*['"]([^'"]+)['"]/g, /\bimport\s*\(\s*['"]([^'"]+)['"]\s*\)/g];
  for (const pattern of patterns) for (const match of text.matchAll(pattern)) if (match[1] !== undefined) found.push(match[1]);
  return found;
}

/** The folders under src/ that the files of src/<layer> import from, as `file → folder` lines. */
function importsOf(layer: string): string[] {
  const dir = join(SRC, layer);
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((file) => file.endsWith('.ts'))
    .flatMap((file) => {
      const path = join(dir, file);
      return specifiers(readFileSync(path, 'utf8'))
        .filter((spec) => spec.startsWith('.'))
        .map((spec) => `${relative(SRC, path)} → ${relative(SRC, resolve(dirname(path), spec)).split('/')[0] ?? ''}`);
    });
}

describe('layers', () => {
  it('finds every kind of import statement', () => {
    const text = "import a from './a.js';\nimport type { B } from '../b/x.js';\nexport { c } from './c.js';\nimport './d.js';\nconst e = await import('../e.js');\nimport {\n  f,\n} from '../f/y.js';";
    expect(specifiers(text).sort()).toEqual(['../b/x.js', '../e.js', '../f/y.js', './a.js', './c.js', './d.js']);
  });

  it('src/config imports nothing from src/sources nor src/mandates', () => {
    const all = importsOf('config');
    expect(all.length).toBeGreaterThan(0);
    expect(all.filter((line) => line.endsWith('→ sources') || line.endsWith('→ mandates'))).toEqual([]);
  });
});
