import { callApi } from '../client.js';
import { apiEndpoint, type GlobalOptions } from '../context.js';
import { EXIT } from '../exit-codes.js';
import { printJson, printLine } from '../output.js';

/** What `GET /v1/health` answers. */
interface HealthReply {
  status: 'ok' | 'starting';
  version: string;
}

/**
 * `backer health`: asks the running daemon over its API socket (the image's HEALTHCHECK).
 * Exit 0 when it answers `ok`, 1 while it is still starting, 3 when it does not answer.
 */
export async function healthCommand(options: GlobalOptions): Promise<number> {
  const api = await apiEndpoint(options);
  const reply = await callApi<HealthReply>(api, 'GET', '/v1/health');
  if (options.json) printJson(reply);
  else printLine(`${reply.status} (backer ${reply.version})`);
  return reply.status === 'ok' ? EXIT.OK : EXIT.FAILED;
}
