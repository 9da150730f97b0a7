import type { ConfigProblem } from '../../config/problems.js';
import type { SkippedMandate } from '../../discovery/snapshot.js';
import { callApi } from '../client.js';
import { loadCliConfig, type GlobalOptions } from '../context.js';
import { EXIT } from '../exit-codes.js';
import { printJson, printLine, table } from '../output.js';

/** One mandate as `GET /v1/mandates` returns it. */
interface MandateJson {
  name: string;
  origin: 'labels' | 'config';
  type: string;
  container: string | null;
  interval: string;
  next_run: string | null;
  /** The next scheduled verification (`backer.verify`), null without one. */
  next_verify: string | null;
  targets: string[];
}

interface MandatesReply {
  mandates: MandateJson[];
  skipped: SkippedMandate[];
  problems: ConfigProblem[];
  docker_error: string | null;
}

function rows(reply: MandatesReply): string[][] {
  const runnable = reply.mandates.map((m) => [m.name, m.type, m.container ?? '-', m.interval, m.next_run ?? '-', m.next_verify ?? '-', m.targets.join(','), 'ok']);
  const skipped = reply.skipped.map((m) => [
    m.name,
    '-',
    m.container ?? '-',
    '-',
    '-',
    '-',
    '-',
    `skipped: ${m.problems.map((p) => `${p.where}: ${p.message}`).join('; ')}`,
  ]);
  return [...runnable, ...skipped].sort((a, b) => (a[0] ?? '').localeCompare(b[0] ?? ''));
}

/** `backer mandates list`: what the running daemon knows, runnable and skipped (with why). */
export async function mandatesListCommand(options: GlobalOptions): Promise<number> {
  const { config } = await loadCliConfig(options);
  const reply = await callApi<MandatesReply>(config.api.socket, 'GET', '/v1/mandates');
  if (options.json) {
    printJson(reply);
    return EXIT.OK;
  }
  const body = rows(reply);
  if (body.length === 0) printLine('no mandates');
  else printLine(table([['NAME', 'TYPE', 'CONTAINER', 'INTERVAL', 'NEXT_RUN', 'NEXT_VERIFY', 'TARGETS', 'STATE'], ...body]));
  // With Docker switched off on purpose there is nothing to warn about.
  if (reply.docker_error !== null && config.docker.enabled) process.stderr.write(`warning: ${reply.docker_error}\n`);
  return EXIT.OK;
}
