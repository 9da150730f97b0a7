/**
 * The CLI's entry. Node's compile cache is enabled before anything else loads (src/cli/compile-cache.ts):
 * static imports would all be compiled before the first line of this file runs, so the program
 * (commander, the commands) comes in through a dynamic import after it.
 */
import { enableCompileCache } from './compile-cache.js';

enableCompileCache();
await import('./program.js');
