import { posix } from 'node:path';
import { z } from 'zod';
import { notABoolean, parseBoolean } from '../config/boolean.js';
import { optionalString, optionIssue, type OptionsSpec } from './options-schema.js';

export interface VolumeOptions {
  /**
   * Absolute paths inside the container, each on a volume or bind mount of it.
   * Default null: every data mount of the container (see planMounts).
   */
  paths: string[] | null;
  /** Stop the container for the copy and start it again afterwards. Default false. */
  stop: boolean;
}

/** Why one item of `paths` is not a plain absolute path, or null. */
function pathProblem(item: string): string | null {
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(item)) return 'paths may not contain control characters such as newlines';
  if (!item.startsWith('/')) return `expected absolute paths inside the container, got "${item}"`;
  if (item.split('/').some((part) => part === '..' || part === '.')) return `"${item}" contains "." or ".." segments: write the plain absolute path`;
  if (posix.normalize(item).replace(/\/+$/, '') === '') return '"/" is not a mount: name the mounted directories, e.g. /data';
  return null;
}

/** `paths`: a comma list of absolute paths, normalized and without repeats; every bad item is a problem. */
const pathsOption = optionalString().transform((raw, ctx): string[] | null => {
  if (raw === undefined) return null;
  const items = raw.split(',').map((s) => s.trim()).filter((s) => s !== '');
  if (items.length === 0) optionIssue(ctx, 'paths', 'expected a comma list of absolute paths inside the container, e.g. /var/lib/app,/data');
  const paths: string[] = [];
  for (const item of items) {
    const problem = pathProblem(item);
    if (problem !== null) optionIssue(ctx, 'paths', problem);
    const path = posix.normalize(item).replace(/\/+$/, '');
    if (problem === null && !paths.includes(path)) paths.push(path);
  }
  return paths;
});

const stopOption = optionalString().transform((raw, ctx): boolean => {
  if (raw === undefined) return false;
  const value = parseBoolean(raw);
  if (value === undefined) optionIssue(ctx, 'stop', notABoolean(raw));
  return value ?? false;
});

/** `backer.volume.*`: which mounts are copied and whether the container stops for the copy. */
export const volumeOptions: OptionsSpec<VolumeOptions> = {
  type: 'volume',
  keys: ['paths', 'stop'],
  schema: z.object({ paths: pathsOption, stop: stopOption }).transform((o) => ({ paths: o.paths, stop: o.stop })),
};
