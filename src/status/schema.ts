import { z } from 'zod';
import { durationSchema } from '../config/duration.js';

/** `status:` in backer.yml: how the mandate status monitor (src/status/monitor.ts) works. */
export const statusConfigSchema = z
  .object({
    /**
     * How often every mandate's status (stale, failing …) is computed again, besides after each
     * backup and each discovery change; at least 1s. Default: 1m.
     */
    check_interval: durationSchema.prefault('1m'),
  })
  .strict();
