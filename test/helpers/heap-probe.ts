// Loaded into a test daemon with `node --expose-gc --import tsx --import <this file>`: on SIGUSR2 it
// collects garbage and writes process.memoryUsage() as JSON to $BACKER_TEST_HEAP_FILE. Test-only;
// the daemon exposes nothing new for this.
import { renameSync, writeFileSync } from 'node:fs';

const file = process.env.BACKER_TEST_HEAP_FILE;
const gc = (globalThis as { gc?: () => void }).gc;
if (file !== undefined && gc !== undefined) {
  process.on('SIGUSR2', () => {
    for (let i = 0; i < 3; i++) gc();
    writeFileSync(`${file}.tmp`, JSON.stringify(process.memoryUsage()));
    // Renamed into place: the test never reads a half-written file.
    renameSync(`${file}.tmp`, file);
  });
}
