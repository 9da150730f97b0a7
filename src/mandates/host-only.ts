import type { SourceDefinition } from '../sources/types.js';

export interface HostOnlyProblem {
  /** The mandate key at fault, e.g. `type` or `files.path`. */
  key: string;
  message: string;
}

/**
 * A source marked `hostOnly` (files: it archives a directory of the Docker host) may be chosen and
 * configured only by the config file. Container labels are written by whoever can start a
 * container; honouring them would let that person read any host file (`backer.files.path=/etc`)
 * through Backer. So: refused on a label mandate, and under a static mandate that overlays a
 * container's labels, its type and options must come from the config itself, not the labels.
 */
export function hostOnlyProblems(
  definition: Pick<SourceDefinition<unknown>, 'type' | 'hostOnly'> | undefined,
  origin: 'labels' | 'config',
  raw: Readonly<Record<string, string>>,
  labelKeys: ReadonlySet<string> | undefined,
): HostOnlyProblem[] {
  if (definition?.hostOnly !== true) return [];
  const type = definition.type;
  if (origin === 'labels') {
    return [
      {
        key: 'type',
        message:
          `source type ${type} reads the Docker host's files and is refused on container labels ` +
          `(anyone who can start a container could read host files through it); declare it as a static mandate in the config`,
      },
    ];
  }
  if (labelKeys === undefined) return [];
  return Object.keys(raw)
    .filter((key) => labelKeys.has(key) && (key === 'type' || key.startsWith(`${type}.`)))
    .map((key) => ({
      key,
      message: `a ${type} mandate reads the Docker host's files: its type and ${type}.* options are taken only from the config, never from container labels; write this key in the static mandate`,
    }));
}
