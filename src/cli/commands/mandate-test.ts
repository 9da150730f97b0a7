import type { MandateTestReport } from '../../checks/mandate-test.js';
import { callApi } from '../client.js';
import { apiEndpoint, type GlobalOptions } from '../context.js';
import { EXIT } from '../exit-codes.js';
import { printJson, printLine } from '../output.js';

/** One line per check: `✓ name: message` or `✗ name: message`. */
export function reportLines(report: MandateTestReport): string[] {
  const lines = report.checks.map((c) => `${c.ok ? '✓' : '✗'} ${c.name}: ${c.message}`);
  const failed = report.checks.filter((c) => !c.ok).length;
  lines.push(failed === 0 ? `mandate ${report.mandate}: all ${report.checks.length} checks passed` : `mandate ${report.mandate}: ${failed} of ${report.checks.length} checks failed`);
  return lines;
}

/**
 * `backer mandates test NAME`: the running daemon runs every check a backup of NAME needs
 * (container, dump tool, credentials, targets, middleware) and stores nothing. Exit 0 only when
 * every check passed, 1 otherwise.
 */
export async function mandatesTestCommand(name: string, options: GlobalOptions): Promise<number> {
  const api = await apiEndpoint(options);
  const report = await callApi<MandateTestReport>(api, 'POST', `/v1/mandates/${encodeURIComponent(name)}/test`);
  if (options.json) printJson(report);
  else for (const line of reportLines(report)) printLine(line);
  return report.ok ? EXIT.OK : EXIT.FAILED;
}
