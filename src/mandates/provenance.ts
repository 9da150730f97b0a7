import { formatPath } from '../config/problems.js';
import { RETENTION_KEYS } from '../retention/keys.js';
import { ALERT_KEYS } from './alert-keys.js';

/**
 * Where each of a mandate's settings came from (the mandate screen of the web UI shows it): a
 * container label, a key of a static mandate in the config file, or the default.
 */
export type SettingSource = { from: 'label'; label: string } | { from: 'config'; path: string } | { from: 'default' };

/** Setting (snake_case, as the API names it) → the keys it is read from, first present wins. */
const SETTING_KEYS: Record<string, readonly string[]> = {
  type: ['type'],
  container: ['container'],
  interval: ['interval'],
  targets: ['target'],
  middleware: ['middleware'],
  retention: ['retention', ...RETENTION_KEYS],
  priority: ['priority'],
  name_pattern: ['name_pattern'],
  verify: ['verify'],
  verify_level: ['verify_level'],
  ...Object.fromEntries(ALERT_KEYS.map((k) => [k, [k]])),
};

export type SettingsSources = Record<string, SettingSource>;

export interface ProvenanceInput {
  name: string;
  raw: Readonly<Record<string, string>>;
  origin: 'labels' | 'config';
  /** Static mandate over a container: the keys of `raw` that came from its labels. */
  labelKeys?: ReadonlySet<string>;
  container: string | null;
}

/**
 * The source of every setting: `{from: 'label', label: 'backer.interval'}`, `{from: 'config',
 * path: 'mandates.shop.interval'}` or `{from: 'default'}`. A labelled container's `container` is
 * the container itself (its name), reported as the label mandate's own `backer.enabled`.
 */
export function settingsSources(input: ProvenanceInput): SettingsSources {
  const out: SettingsSources = {};
  for (const [setting, keys] of Object.entries(SETTING_KEYS)) {
    const key = keys.find((k) => input.raw[k] !== undefined);
    out[setting] = key === undefined ? defaultSource(input, setting) : sourceOf(input, key);
  }
  return out;
}

function sourceOf(input: ProvenanceInput, key: string): SettingSource {
  const fromLabel = input.origin === 'labels' || input.labelKeys?.has(key) === true;
  return fromLabel ? { from: 'label', label: `backer.${key}` } : { from: 'config', path: formatPath(['mandates', input.name, ...key.split('.')]) };
}

function defaultSource(input: ProvenanceInput, setting: string): SettingSource {
  // A labelled container is its own mandate's container; a static mandate's `container` key is not in `raw`.
  if (setting === 'container' && input.origin === 'labels') return { from: 'label', label: 'backer.enabled' };
  if (setting === 'container' && input.container !== null) return sourceOf(input, 'container');
  return { from: 'default' };
}
