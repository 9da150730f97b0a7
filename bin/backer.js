#!/usr/bin/env node
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

// The CLI runs from the compiled dist/; a fresh checkout has none until it is built.
const main = new URL('../dist/cli/main.js', import.meta.url);
if (!existsSync(fileURLToPath(main))) {
  process.stderr.write('backer: not built yet: run npm run build (or ./scripts/install-deps)\n');
  process.exit(2);
}
await import(main.href);
