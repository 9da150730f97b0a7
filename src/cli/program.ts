/** The command line: commander's commands, each running its module (src/cli/commands/) when called. Entry: main.ts. */
import { Command, CommanderError } from 'commander';
import { describeError, errorCode, type ErrorCode } from '../errors.js';
import { BACKER_VERSION } from '../util/version.js';
import type { BackupOptions } from './commands/backup.js';
import type { ForgetOptions, ListOptions } from './commands/backups.js';
import type { RestoreOptions } from './commands/restore.js';
import type { TokenCreateOptions } from './commands/token.js';
import type { RetentionPlanOptions } from './commands/retention.js';
import type { StateResetOptions } from './commands/state.js';
import type { VerifyOptions } from './commands/verify.js';
import type { GlobalOptions } from './context.js';
import { EXIT, EXIT_HELP, exitCodeFor } from './exit-codes.js';
import { printJson } from './output.js';
import { registerOperationCommands } from './commands/operations-cli.js';

type Action<O> = (options: O) => Promise<number>;

/**
 * Each command's module is imported when that command runs, not at start: `backer health` or
 * `backer restore --wait` never load the daemon, the API server, Docker's client or the AWS SDK.
 */
const commands = {
  backup: () => import('./commands/backup.js'),
  backups: () => import('./commands/backups.js'),
  configCheck: () => import('./commands/config-check.js'),
  configSchema: () => import('./commands/config-schema.js'),
  daemon: () => import('./commands/daemon.js'),
  demo: () => import('./commands/demo.js'),
  health: () => import('./commands/health.js'),
  notify: () => import('./commands/notify.js'),
  mandates: () => import('./commands/mandates.js'),
  mandateTest: () => import('./commands/mandate-test.js'),
  restore: () => import('./commands/restore.js'),
  token: () => import('./commands/token.js'),
  targets: () => import('./commands/targets.js'),
  retention: () => import('./commands/retention.js'),
  state: () => import('./commands/state.js'),
  verify: () => import('./commands/verify.js'),
};

/** --json anywhere before a `--`: also known when commander could not parse the rest. */
const JSON_WANTED = ((): boolean => {
  const args = process.argv.slice(2);
  const end = args.indexOf('--');
  return (end === -1 ? args : args.slice(0, end)).includes('--json');
})();

/** An error as the user sees it: `{"error":{"code","message"}}` on stdout with --json, else a line on stderr. */
function reportError(code: ErrorCode, message: string): void {
  if (JSON_WANTED) printJson({ error: { code, message } });
  else process.stderr.write(`backer: ${message}\n`);
}

/**
 * After a failed command nothing may keep the process alive (a half-started daemon's socket or
 * timers): give pending output a moment, then exit with the code already set.
 */
function exitSoon(): void {
  setTimeout(() => process.exit(), 1000).unref();
}

/** The only place that turns results and errors into exit codes. */
function run<O extends GlobalOptions>(action: Action<O>): (...args: unknown[]) => Promise<void> {
  return async (...args: unknown[]) => {
    const command = args[args.length - 1] as Command;
    const options = command.optsWithGlobals<O>();
    try {
      process.exitCode = await action(options);
    } catch (err) {
      reportError(errorCode(err), describeError(err));
      process.exitCode = exitCodeFor(err);
      exitSoon();
    }
  };
}

const program = new Command('backer')
  .description('Backups for databases and volumes that run in Docker')
  .version(BACKER_VERSION)
  .option('-c, --config <file>', 'config file (default: $BACKER_CONFIG, else ./backer.yml)')
  .option('--demo', 'use the embedded demo config instead of a file')
  .option('--json', 'machine-readable output')
  .option('--url <url>', "the daemon's API over TCP, http(s)://HOST:PORT (default: $BACKER_URL, else the config's socket)")
  .option('--token-file <file>', 'file holding the bearer token for --url (default: $BACKER_TOKEN_FILE)')
  .addHelpText('after', EXIT_HELP)
  .showHelpAfterError()
  // With --json a usage error is reported once, as JSON, by the catch at the end.
  .configureOutput(JSON_WANTED ? { outputError: () => undefined, writeErr: () => undefined } : {})
  .exitOverride();

program.command('daemon').description('run discovery, the scheduler, the job queue and the API socket until SIGTERM/SIGINT').action(run(async (o) => (await commands.daemon()).daemonCommand(o)));

program
  .command('health')
  .description('ask the running daemon over its API socket whether it is up (exit 0 when ok; the image\'s HEALTHCHECK)')
  .action(run(async (o) => (await commands.health()).healthCommand(o)));

program
  .command('demo')
  .description('run the daemon on the embedded demo config (a files mandate to ./backer-data/demo-backups, plus labelled containers)')
  .action(run(async () => (await commands.demo()).demoCommand()));

program
  .command('backup')
  .description('back up MANDATE now through the running daemon (or in this process with --once)')
  .argument('<mandate>', 'mandate name (the container name for labelled containers)')
  .option('--wait', 'follow the job; exit 0 only if it succeeded')
  .option('--once', 'run the backup in this process, without a daemon; exit 0/1')
  .action(run<BackupOptions & { mandate?: string }>(async (o) => (await commands.backup()).backupCommand(program.commands.find((c) => c.name() === 'backup')?.args[0] ?? '', o)));

const collect = (value: string, previous: string[] = []): string[] => [...previous, value];
const restore = program
  .command('restore')
  .description('restore a backup through the running daemon: plan, hash check, safety backup of the original, apply, rollback on failure')
  .argument('<mandate>', 'mandate name')
  .argument('[backup]', 'backup name or uuid, or latest', 'latest')
  .option('--target <name>', 'read the backup from this target (default: the first of the mandate\'s targets that has it)')
  .option('--to <destination>', 'original | new:NAME | container:NAME | file:PATH', 'original')
  .option('--database <from:to>', 'restore database FROM under the name TO (repeatable)', collect)
  .option('--dry-run', 'print the plan and the preflight checks, touch nothing')
  .option('--yes', 'confirm replacing data (non-empty directory, --no-safety-backup into the original)')
  .option('--wait', 'follow the job with its progress; exit 0 only if it succeeded')
  .option('--no-verify-first', 'stream straight into the destination (hashes still checked on the way; fails loudly at the end)')
  .option('--no-safety-backup', 'do not back up the original first (needs --yes for --to original)')
  .option('--no-rollback', 'leave the destination as a failed restore left it (the safety backup is kept)')
  .action(run<RestoreOptions>(async (o) => (await commands.restore()).restoreCommand(restore.args[0] ?? '', restore.args[1], o)));

const verify = program
  .command('verify')
  .description('check stored backups through the running daemon, and record each result next to its backup')
  .argument('[mandate]', 'mandate name (default: every mandate)')
  .argument('[backup]', 'backup name or uuid, or latest (default: every backup of the mandate)')
  .option('--target <name>', 'only the copies on this target')
  .option('--level <level>', 'size | hash | decode | drill', 'decode')
  .option('--subset <n/t>', 'only the n-th of t slices of the backups (a daily 1/7..7/7 rotation reads everything weekly)')
  .action(run<VerifyOptions>(async (o) => (await commands.verify()).verifyCommand(verify.args[0], verify.args[1], o)));

const backups = program.command('backups').description('list and inspect stored backups (reads the targets directly)');
backups
  .command('list')
  .description('list backups, newest first')
  .option('--mandate <name>', 'only this mandate')
  .option('--target <name>', 'only this target')
  .action(run<ListOptions>(async (o) => (await commands.backups()).listCommand(o)));
backups
  .command('show')
  .description('print the manifest of a backup')
  .argument('<name|uuid>', 'backup name or uuid')
  .option('--target <name>', 'only this target')
  .action(run<ListOptions>(async (o) => (await commands.backups()).showCommand(backups.commands.find((c) => c.name() === 'show')?.args[0] ?? '', o)));
backups
  .command('forget')
  .description('remove the manifest of a backup whose artifact is missing (deleted by hand); refuses when the artifact is present')
  .argument('<name|uuid>', 'backup name or uuid')
  .option('--target <name>', 'only this target')
  .action(run<ForgetOptions>(async (o) => (await commands.backups()).forgetCommand(backups.commands.find((c) => c.name() === 'forget')?.args[0] ?? '', o)));

const state = program.command('state').description('the state database in data_dir (jobs, history, stats)');
state.command('show').description('where state.db is, its schema version, size, jobs by state and the daemon using it').action(run(async (o) => (await commands.state()).stateShowCommand(o)));
state
  .command('reset')
  .description('move state.db away (kept as state.db.reset-TIME) and start a fresh one with stats rebuilt from the targets\' manifests')
  .option('--yes', 'do it (without: print what would be done and exit 1)')
  .action(run<StateResetOptions>(async (o) => (await commands.state()).stateResetCommand(o)));

const mandates = program.command('mandates').description('mandates known to the running daemon');
mandates
  .command('list')
  .description('every mandate with its schedule, targets, last backup and status, and the skipped ones with their problems')
  .action(run(async (o) => (await commands.mandates()).mandatesListCommand(o)));
registerOperationCommands(program, mandates, run);
const mandateTest = mandates
  .command('test')
  .description('run every check a backup of MANDATE needs (container, dump tool, credentials, targets, middleware) through the daemon; stores nothing; exit 0 only if all pass')
  .argument('<mandate>', 'mandate name')
  .action(run(async (o) => (await commands.mandateTest()).mandatesTestCommand(mandateTest.args[0] ?? '', o)));

const targets = program.command('targets').description('storage targets of the running daemon: usage, health, settings');
targets.command('list').description('every target with its backups, bytes and health').action(run(async (o) => (await commands.targets()).targetsListCommand(o)));
const targetShow = targets
  .command('show')
  .description("one target: usage, health, settings (never credentials), the mandates that write to it")
  .argument('<target>', 'target name')
  .action(run(async (o) => (await commands.targets()).targetsShowCommand(targetShow.args[0] ?? '', o)));

const retention = program.command('retention').description('GFS retention of stored backups (reads the targets directly)');
retention
  .command('plan')
  .description('print which backups of MANDATE each retention rule keeps and which would be deleted, with the reason; deletes nothing')
  .argument('<mandate>', 'mandate name')
  .option('--target <name>', 'only this target of the mandate')
  .action(run<RetentionPlanOptions>(async (o) => (await commands.retention()).retentionPlanCommand(retention.commands.find((c) => c.name() === 'plan')?.args[0] ?? '', o)));

const notify = program.command('notify').description('notification destinations (notifications: in the config file)');
const notifyTest = notify
  .command('test')
  .description('send a test message to each destination (or NAME) from this process; one line per delivery, exit 0 only if all succeeded')
  .argument('[name]', 'only this destination')
  .action(run(async (o) => (await commands.notify()).notifyTestCommand(notifyTest.args[0], o)));

const token = program.command('token').description('bearer tokens of the API over TCP (api.tokens)');
const tokenCreate = token
  .command('create')
  .description('print a new random token once, and the api.tokens line (its SHA-256 and scope) to add to the config')
  .argument('<name>', 'the token\'s name (shown in audit log lines)')
  .requiredOption('--scope <scope>', 'read | operate | admin')
  .action(run<TokenCreateOptions>(async (o) => (await commands.token()).tokenCreateCommand(tokenCreate.args[0] ?? '', o)));

const config = program.command('config').description('configuration tools');
config
  .command('check')
  .description("validate the config file and every discovered container's labels")
  .action(run(async (o) => (await commands.configCheck()).configCheckCommand(o)));
config
  .command('schema')
  .description('print the JSON Schema of backer.yml, for editors (backer config schema > backer.schema.json)')
  .action(run(async () => (await commands.configSchema()).configSchemaCommand()));

// Every command's --help ends with the exit codes.
const withExitHelp = (command: Command): void => {
  for (const sub of command.commands) {
    sub.addHelpText('after', EXIT_HELP);
    withExitHelp(sub);
  }
};
withExitHelp(program);

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) {
    process.exitCode = err.exitCode === 0 ? EXIT.OK : EXIT.USAGE;
    // A command group without its command shows the help; its "message" is a placeholder.
    const message = err.code === 'commander.help' ? 'missing command; see --help' : err.message.replace(/^error: /, '');
    if (err.exitCode !== 0 && JSON_WANTED) reportError('USAGE_INVALID', message);
  } else {
    reportError(errorCode(err), describeError(err));
    process.exitCode = EXIT.FAILED;
    exitSoon();
  }
}
