import type { Readable } from 'node:stream';
import type Docker from 'dockerode';
import type { Logger } from '../logging/logger.js';
import type { OptionsSpec } from './options-schema.js';

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
  /**
   * The options as one schema (src/sources/options-schema.ts); `parse` is then
   * `parseOptions(options, raw, origin)`. The JSON Schema of static mandates is built from it.
   */
  options?: OptionsSpec<Options>;
  /**
   * Programs the source needs inside the container (or on the host, for host sources), e.g.
   * `['mariadb-dump|mysqldump']`: `a|b` means either. For documentation and `config check`.
   */
  tools?: readonly string[];
  /** Whether the source's backups hold named databases (`restore --database FROM:TO`). Default false. */
  databases?: boolean;
  dump(options: Options, target: SourceTarget, context: DumpContext): Promise<Dump>;
  /**
   * Checks, before anything is touched, that `request.destination` can take this backup: it
   * exists and runs, the tools are there, the engine is not older than the dumped one. Resolves
   * with the plan's lines (what will be stopped, replaced, created); rejects with RESTORE_REFUSED,
   * CONTAINER_NOT_RUNNING or TOOL_MISSING naming what is missing.
   */
  planRestore?(options: Options, request: RestoreRequest, context: DumpContext): Promise<RestorePlan>;
  /**
   * Applies the decoded dump (`input`, the raw bytes the source once produced) to the
   * destination, streaming. Resolves once the engine accepted every byte; rejects with
   * RESTORE_FAILED otherwise (the pipeline then rolls back from the safety backup). A container
   * this stops is always started again, whatever happens.
   */
  restore?(options: Options, request: RestoreRequest, input: Readable, context: DumpContext): Promise<void>;
  /**
   * Optional: `restore` in two halves. This one does everything that writes nothing (inspect the
   * container, find the client, read the credentials), so that it runs while the hash-first pass
   * checks the backup; it resolves with the second half, which applies `input` like `restore`.
   * Nothing may be written to the destination before the second half is called.
   */
  prepareRestore?(options: Options, request: RestoreRequest, context: DumpContext): Promise<(input: Readable) => Promise<void>>;
  /**
   * Engine checks after a drill restored a backup into a scratch container: each compares what
   * the engine holds with the manifest's `source.stats` (recorded at dump time).
   */
  check?(options: Options, request: RestoreRequest, context: DumpContext): Promise<DrillCheck[]>;
  /**
   * `backer mandates test`: checks, without dumping, storing or stopping anything, that a backup
   * could read the source now (credentials accepted, path readable).
   */
  probe?: SourceProbe<Options>;
  /**
   * Where `tools` run: `container` (the mandate's container, the default for container sources),
   * `host` (host sources) or `helper` (a helper container Backer starts, e.g. volume).
   */
  toolsIn?: 'container' | 'host' | 'helper';
}

/** One check of `backer mandates test` that a source runs itself. */
export interface SourceProbe<Options> {
  /** The check's name in the report, e.g. `credentials accepted`. */
  name: string;
  /**
   * Resolves with what was checked (`SELECT 1 as user root`); rejects with a BackerError naming
   * what is wrong (CHECK_FAILED, TOOL_MISSING, CONTAINER_NOT_RUNNING …). Secrets only in env/stdin.
   */
  run(options: Options, target: SourceTarget, context: DumpContext): Promise<string>;
}

/** Where a restore writes. */
export type RestoreDestination =
  /** A running container: the source's own (`original`), another one, or a scratch one Backer made. */
  | {
      kind: 'container';
      container: string;
      original: boolean;
      scratch: boolean;
      /** A file-based source's file inside that container (sqlite: another database path); default the mandate's. */
      path?: string;
    }
  /** A host directory (files) or a file path. */
  | { kind: 'file'; path: string }
  /** A fresh named Docker volume (volume source, `--to new:NAME` of a volume backup). */
  | { kind: 'volume'; volume: string };

export interface RestoreRequest {
  /** The mandate's container (null for host sources): where the backup came from. */
  source: SourceTarget;
  destination: RestoreDestination;
  /** `--database FROM:TO`: restore FROM under the name TO. Empty: every database under its own name. */
  databases: ReadonlyMap<string, string>;
  /** The manifest's `source` record: databases, server version, format, stats. */
  manifest: SourceInfo;
  /** `--yes`: the user confirmed replacing what is there (a non-empty directory, say). */
  confirmed: boolean;
}

export interface RestorePlan {
  /** Human-readable lines, in order: "stop container shop-db", "drop and recreate database shop" … */
  steps: string[];
  /** Containers stopped during the restore (always started again). */
  stops: string[];
}

export interface DrillCheck {
  /** What was checked: `table shop.orders rows`, `db0 keys`, `PRAGMA integrity_check`, `file etc/app.conf`. */
  check: string;
  ok: boolean;
  expected?: string | number | null;
  actual?: string | number | null;
}

/** What the source acts on: a container (by name) for Docker sources, nothing for host sources. */
export interface SourceTarget {
  container: string | null;
}

/** A source plugin (src/sources/<type>.ts). Identity at run time: it fixes the types. */
export function defineSource<Options>(definition: SourceDefinition<Options>): SourceDefinition<Options> {
  return definition;
}
