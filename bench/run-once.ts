/** One in-process backup (like `backer backup --once`), then prints this process's peak RSS. */
import { loadConfigOrThrow } from '../src/config/load.js';
import { createServices } from '../src/daemon/services.js';

const [configPath, mandate] = process.argv.slice(2);
if (!configPath || !mandate) throw new Error('usage: run-once.ts CONFIG MANDATE');
const services = createServices({ config: await loadConfigOrThrow(configPath, process.env), configFile: configPath });
await services.discovery.refresh();
const result = await services.backup(mandate, new AbortController().signal);
await services.close();
if (result.status !== 'succeeded') throw new Error(`backup failed: ${result.error?.message ?? ''}`);
process.stdout.write(`PEAK_RSS_KB=${process.resourceUsage().maxRSS}\nRAW_BYTES=${result.raw_size ?? 0}\n`);
