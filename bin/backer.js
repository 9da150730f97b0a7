#!/usr/bin/env -S node --max-semi-space-size=1
// --max-semi-space-size=1: V8's young generation at 1 MiB per semi-space instead of up to 16 (Node 24)
// holds 15-60 MiB less of short-lived garbage (per-chunk Buffers) at no measured cost in time
// (bench/README.md "Memory"). `env -S` (coreutils 8.30+) passes it; `node bin/backer.js` does not.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

// The CLI runs from the compiled dist/; a fresh checkout has none until it is built.
const main = new URL('../dist/cli/main.js', import.meta.url);
if (!existsSync(fileURLToPath(main))) {
  process.stderr.write('backer: not built yet: run npm run build (or ./scripts/install-deps)\n');
  process.exit(2);
}
await import(main.href);
