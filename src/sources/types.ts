import type { Readable } from 'node:stream';
import type Docker from 'dockerode';
import type { Logger } from '../logging/logger.js';

/** Source metadata recorded in the manifest. */
export interface SourceInfo {
  type: string;
  container: string | null;
  image: string | null;
  databases: string[];
  [extra: string]: unknown;
}

/** Daemon-wide settings from the config file that some sources need. */
export interface SourceSettings {
  /** `volume.helper_image`: image of the volume source's helper container; undefined: the default (volume.ts). */
  volumeHelperImage: string | undefined;
  /** `volume.helper_binds`: extra `HOST:CONTAINER[:ro]` binds of that helper. */
  volumeHelperBinds: string[];
  /**
   * `<data_dir>/stopped-containers`: a container is recorded there before it is stopped for a
   * copy, so that the next daemon start can start it again after a crash.
   */
  stoppedContainersDir: string;
}

export interface DumpContext {
  mandate: string;
  signal: AbortSignal;
  logger: Logger;
  docker: Docker;
  /** Registers a resolved secret value so that it is scrubbed from every log line. */
  registerSecret(value: string): void;
  /** Default: each source's own defaults (e.g. helper image busybox:stable, no extra binds). */
  settings?: SourceSettings;
  /** Where an option key of this mandate was written (MandateSpec.describe). Default: the label form. */
  describe?: (key: string) => string;
}

export interface Dump {
  /**
   * The raw dump. It ends only after the source verified that the dump is complete (exit code,
   * completion trailer); otherwise it errors with DUMP_FAILED / DUMP_TRUNCATED.
   */
  stream: Readable;
  mime: string;
  /** e.g. `.sql`, `.tar` */
  extension: string;
  /** Complete once the stream has ended. */
  info(): SourceInfo;
}

/** Where a source option came from, for error messages: `container shop-db label backer.mysql.user`. */
export interface OptionOrigin {
  container: string | null;
  /** Builds the human readable location of one option key, e.g. a label or a config path. */
  describe(key: string): string;
}

export interface SourceDefinition<Options> {
  type: string;
  /** Whether the mandate must name a container. */
  needsContainer: boolean;
  /**
   * true: the source reads the Docker host itself (not a container), so only the config file may
   * choose it and its options. Container labels are written by whoever can start a container,
   * who must not be able to read host files through Backer. Default: false.
   */
  hostOnly?: boolean;
  /**
   * Validates the raw options (`backer.<type>.*` labels without that prefix, or the same keys
   * from a static mandate). Throws BackerError LABEL_INVALID naming the option's origin.
   */
  parse(raw: Record<string, string>, origin: OptionOrigin): Options;
  dump(options: Options, target: SourceTarget, context: DumpContext): Promise<Dump>;
}

/** What the source acts on: a container (by name) for Docker sources, nothing for host sources. */
export interface SourceTarget {
  container: string | null;
}
