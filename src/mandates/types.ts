import type { VerifyLevel } from '../manifests/verification.js';
import type { RetentionRules } from '../retention/gfs.js';
import type { MandateAlerts } from './alert-keys.js';
import type { SettingsSources } from './provenance.js';

/** A fully validated mandate: what to back up, how, where and when. */
export interface MandateSpec {
  /** Unique name; for labelled containers the container name, for static mandates the YAML key. */
  name: string;
  /** Where it was defined, for messages and the API. */
  origin: 'labels' | 'config';
  source: {
    type: string;
    /** Container name for Docker sources, null for host sources (files). */
    container: string | null;
    /** The source definition's parsed options (opaque outside the source). */
    options: unknown;
  };
  /** Cron expression, 5 or 6 fields. Default "0 0 * * *". */
  interval: string;
  /** Target names, in order; at least one. Default: the default target. */
  targets: string[];
  /** Middleware names, applied in order. Default: none. */
  middleware: string[];
  /** Keep the newest N complete backups per target (with `retention_rules`: its keep_last, 0 without). Default: 10. */
  retention: number;
  /** GFS retention rules (`retention.keep_*` keys, restic's semantics); absent: keep the newest `retention`. */
  retention_rules?: RetentionRules;
  /**
   * Queue priority 0–9, higher first (`low` = 2, `normal` = 5, `high` = 8). Waiting jobs gain a
   * step per `queue.aging`. Default: 5.
   */
  priority: number;
  /** Default "<DATE>-<CONTAINER_NAME>" (or "<DATE>-<MANDATE>" without container). */
  name_pattern: string;
  /**
   * Scheduled verification: a cron (5 or 6 fields, UTC) that queues a `verify` job (a `drill`
   * job when the level is drill) of every backup of the mandate, or null for none. Default: the
   * config's `verify` (interval none, level decode).
   */
  verify: { interval: string | null; level: VerifyLevel };
  /**
   * Status alerts (`max_age`, `min_size`, `size_change_alert`; src/mandates/alert-keys.ts).
   * Default: none set (stale after 1.5 × the interval, sizes not checked).
   */
  alerts: MandateAlerts;
  /**
   * Where key K (`mysql.database`) of this mandate was written: `container X label backer.K` or
   * `backer.yml: mandates.NAME.K`, for problems found only at run time (an `Env:` value). Default:
   * the label form.
   */
  describe?: (key: string) => string;
  /** Where each setting came from (label, config path or default; src/mandates/provenance.ts). Absent for mandates built in code. */
  settings_sources?: SettingsSources;
}
