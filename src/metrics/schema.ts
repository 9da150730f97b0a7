import { isIP } from 'node:net';
import { z } from 'zod';
import { BackerError } from '../errors.js';

/** Where `metrics.listen` binds: a loopback host and a port. */
export interface ListenAddress {
  host: string;
  port: number;
}

const LISTEN_RE = /^(?:\[([0-9a-fA-F:.]+)\]|([^:\s[\]]+)):(\d{1,5})$/;

function isLoopback(host: string): boolean {
  if (host === 'localhost') return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  if (isIP(host) === 6) return host === '::1' || /^(0{0,4}:){7}0{0,3}1$/.test(host);
  return false;
}

/** `HOST:PORT` (`127.0.0.1:9464`, `[::1]:9464`, `localhost:9464`), or the problem with it. */
export function parseListen(text: string): ListenAddress | string {
  const match = LISTEN_RE.exec(text.trim());
  const port = Number(match?.[3]);
  const host = match?.[1] ?? match?.[2];
  if (match === null || host === undefined || !Number.isInteger(port) || port < 1 || port > 65_535) {
    return `expected HOST:PORT such as 127.0.0.1:9464, got ${JSON.stringify(text)}`;
  }
  if (!isLoopback(host)) {
    return (
      `${host} is not a loopback address: metrics.listen has no authentication and binds loopback only ` +
      `(127.0.0.1, ::1, localhost); to scrape from another host, use GET /metrics of the API (api.listen) with a read token instead`
    );
  }
  return { host, port };
}

export const metricsConfigSchema = z
  .object({
    /**
     * A second HTTP server answering only `GET /metrics`, without authentication, on a loopback
     * address (`127.0.0.1:9464`). Default: none (metrics are on the API's `GET /metrics`, read scope).
     */
    listen: z
      .string()
      .min(1)
      .optional()
      .superRefine((value, ctx) => {
        if (value === undefined) return;
        const parsed = parseListen(value);
        if (typeof parsed === 'string') ctx.addIssue({ code: 'custom', message: parsed });
      }),
  })
  .strict();

export type MetricsConfig = z.output<typeof metricsConfigSchema>;

/** The parsed `metrics.listen`, or null when it is not set (config load has already refused a bad one). */
export function metricsListen(config: MetricsConfig): ListenAddress | null {
  if (config.listen === undefined) return null;
  const parsed = parseListen(config.listen);
  if (typeof parsed === 'string') {
    throw new BackerError('CONFIG_INVALID', `metrics.listen: ${parsed}`, { component: 'config', details: { listen: config.listen }, permanent: true });
  }
  return parsed;
}
