import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { whereIn, type ConfigProblem } from '../config/problems.js';
import { DEFAULT_EVENTS } from './events.js';
import type { NotificationConfig, ParsedNotification } from './schema.js';
import { parseDestination, schemeOf, UrlProblem } from './senders/index.js';

function readUrlFile(path: string): { url: string } | { problem: string } {
  try {
    const url = readFileSync(path, 'utf8').trim();
    return url === '' ? { problem: `${path} is empty; expected the destination URL` } : { url };
  } catch (err) {
    return { problem: `cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}` };
  }
}

/**
 * When other entries of the file have problems, load.ts resolves what is left of the list: a
 * url_file problem then counts its index among the valid entries only (the entry's name helps).
 *
 * Reads each url_file (relative to the config file's directory), checks its URL and fills the
 * defaults; problems name `notifications[i].url_file` and never quote the URL.
 */
export function resolveNotifications(parsed: readonly ParsedNotification[], baseDir: string, fileLabel: string, problems: ConfigProblem[]): NotificationConfig[] {
  const out: NotificationConfig[] = [];
  const indexes: number[] = [];
  parsed.forEach((n, index) => {
    let url = n.url ?? '';
    if (n.url_file !== undefined) {
      const path = resolve(baseDir, n.url_file);
      const read = readUrlFile(path);
      const problem = 'problem' in read ? read.problem : checkUrl(read.url, path);
      if (problem !== null) {
        problems.push({ where: whereIn(fileLabel, ['notifications', index, 'url_file']), message: n.name === undefined ? problem : `${n.name}: ${problem}` });
        return;
      }
      url = 'url' in read ? read.url : '';
    }
    indexes.push(index);
    out.push({
      name: n.name ?? `${(schemeOf(url) ?? 'url').replace(/\+.*$/, '')}-${index}`,
      url,
      events: n.events ?? [...DEFAULT_EVENTS],
      mandates: n.mandates ?? null,
      min_level: n.min_level,
      repeat: n.repeat,
      templates: n.templates ?? {},
    });
  });
  const first = new Map<string, number>();
  out.forEach((n, i) => {
    const index = indexes[i] ?? i;
    const earlier = first.get(n.name);
    if (earlier === undefined) first.set(n.name, index);
    else problems.push({ where: whereIn(fileLabel, ['notifications', index, 'name']), message: `duplicate name ${JSON.stringify(n.name)}: notifications[${earlier}] has it too` });
  });
  return out;
}

function checkUrl(url: string, path: string): string | null {
  try {
    parseDestination(url);
    return null;
  } catch (err) {
    if (!(err instanceof UrlProblem)) throw err;
    return `the URL in ${path}: ${err.message}`;
  }
}
