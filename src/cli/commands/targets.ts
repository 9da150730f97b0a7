import { callApi } from '../client.js';
import { apiEndpoint, type GlobalOptions } from '../context.js';
import { EXIT } from '../exit-codes.js';
import { formatBytes, printJson, printLine, table } from '../output.js';

/** One target as `GET /v1/targets` answers it. */
export interface TargetJson {
  name: string;
  type: string;
  default: boolean;
  usage: { backups: number; bytes: number; problems: number } | null;
  health: { healthy: boolean; error: { code: string; message: string } | null; checked_at: string | null };
  settings: Record<string, unknown>;
}

export interface TargetDetailJson {
  target: TargetJson;
  mandates: string[];
}

function healthText(t: TargetJson): string {
  if (!t.health.healthy) return `failing: ${t.health.error?.message ?? 'unknown error'}`;
  if (t.health.checked_at === null) return 'unknown';
  return t.usage !== null && t.usage.problems > 0 ? `ok (${t.usage.problems} problem${t.usage.problems === 1 ? '' : 's'})` : 'ok';
}

/** `backer targets list`: every target with its backups, bytes and health, from the running daemon. */
export async function targetsListCommand(options: GlobalOptions): Promise<number> {
  const api = await apiEndpoint(options);
  const reply = await callApi<{ targets: TargetJson[] }>(api, 'GET', '/v1/targets');
  if (options.json) {
    printJson(reply);
    return EXIT.OK;
  }
  if (reply.targets.length === 0) {
    printLine('no targets');
    return EXIT.OK;
  }
  const rows = reply.targets.map((t) => [
    `${t.name}${t.default ? ' (default)' : ''}`,
    t.type,
    t.usage === null ? '-' : String(t.usage.backups),
    t.usage === null ? '-' : formatBytes(t.usage.bytes),
    healthText(t),
  ]);
  printLine(table([['NAME', 'TYPE', 'BACKUPS', 'BYTES', 'HEALTH'], ...rows]));
  return EXIT.OK;
}

function settingText(value: unknown): string {
  return typeof value === 'string' ? value : JSON.stringify(value);
}

/** `backer targets show T`: one target's usage, health, settings (never credentials) and the mandates that write to it. */
export async function targetsShowCommand(name: string, options: GlobalOptions): Promise<number> {
  const api = await apiEndpoint(options);
  const reply = await callApi<TargetDetailJson>(api, 'GET', `/v1/targets/${encodeURIComponent(name)}`);
  if (options.json) {
    printJson(reply);
    return EXIT.OK;
  }
  const t = reply.target;
  printLine(`${t.name} (${t.type}${t.default ? ', default' : ''})`);
  printLine(`  health:     ${healthText(t)}${t.health.checked_at === null ? '' : ` (checked ${t.health.checked_at})`}`);
  if (t.usage !== null) printLine(`  backups:    ${t.usage.backups} (${formatBytes(t.usage.bytes)}), ${t.usage.problems} problem${t.usage.problems === 1 ? '' : 's'}`);
  for (const [key, value] of Object.entries(t.settings)) printLine(`  ${`${key}:`.padEnd(11)} ${settingText(value)}`);
  printLine(`  mandates:   ${reply.mandates.length === 0 ? 'none' : reply.mandates.join(', ')}`);
  return EXIT.OK;
}
