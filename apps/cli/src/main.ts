#!/usr/bin/env node
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { GatewayClient } from './client';
import { apply } from './commands/apply';
import { downloadArtifact, listArtifacts } from './commands/artifacts';
import { conformance } from './commands/conformance';
import { describe } from './commands/describe';
import { events } from './commands/events';
import { get, GET_KINDS, parseKind } from './commands/get';
import { logs } from './commands/logs';
import { newDriver } from './commands/new-driver';
import { runPipeline } from './commands/run';
import { CliError, EXIT } from './errors';
import { parseFormat } from './output';

/**
 * `conveyor`: the command line of Conveyor, talking to the gateway over HTTP (CONVEYOR_URL,
 * CONVEYOR_TOKEN) and, for `events`, to NATS (CONVEYOR_NATS_URL). Exit codes: see errors.ts.
 */
function program(): Command {
  const client = () => GatewayClient.fromEnv();
  const say = (line: string) => process.stdout.write(line + '\n');
  const done = (code: number) => {
    process.exitCode = code;
  };
  const p = new Command('conveyor')
    .description('Conveyor CI/CD on NATS JetStream: apply manifests, start and follow runs, inspect state.\n'
      + 'Environment: CONVEYOR_URL (default http://127.0.0.1:8080), CONVEYOR_TOKEN (Bearer token), CONVEYOR_NATS_URL (for events).')
    .showHelpAfterError()
    .exitOverride();
  // Usage errors exit 2, like every other error the user can fix.
  p.configureOutput({ writeErr: (s) => process.stderr.write(s) });

  p.command('apply')
    .description('create or update definitions, pipelines and resources from YAML/JSON manifests (a "kind:" field each)')
    .requiredOption('-f, --filename <path...>', 'a manifest file, or a directory of .yaml/.yml/.json files')
    .option('--dry-run', 'show what would change, change nothing')
    .action(async (o: { filename: string[]; dryRun?: boolean }) => apply(client(), o.filename, Boolean(o.dryRun), say));

  p.command('get')
    .description(`list ${GET_KINDS.join(', ')}, or show one by NAME`)
    .argument('<kind>', GET_KINDS.join('|'))
    .argument('[name]')
    .option('-o, --output <format>', 'json or yaml instead of a table')
    .option('--limit <n>', 'runs to list (newest first)', positiveInt, 50)
    .action(async (kind: string, name: string | undefined, o: { output?: string; limit: number }) => get(client(), parseKind(kind), name, parseFormat(o.output), { limit: o.limit }));

  p.command('describe')
    .description("a run in detail: each step's status, attempts, agent and timing")
    .argument('<kind>', 'run')
    .argument('<id>')
    .option('-o, --output <format>', 'json or yaml')
    .action(async (kind: string, id: string, o: { output?: string }) => describe(client(), kind, id, parseFormat(o.output)));

  p.command('run')
    .description('start PIPELINE on a resource (a new version of it, or a new resource), then optionally follow it')
    .argument('<pipeline>')
    .requiredOption('-r, --resource <name>', "the resource's name (its type is the pipeline's)")
    .option('--set <key=value>', 'change spec.key (or metadata.key); values are JSON when they parse; repeatable', collect, [] as string[])
    .option('-f, --follow', 'follow the logs and exit with the run status')
    .option('--timestamps', 'with --follow: prefix lines with their time')
    .action(async (pipeline: string, o: { resource: string; set: string[]; follow?: boolean; timestamps?: boolean }) =>
      done(await runPipeline(client(), pipeline, { resource: o.resource, set: o.set, follow: Boolean(o.follow), timestamps: Boolean(o.timestamps) }, say)));

  p.command('logs')
    .description("a run's log lines; with -f, follow until the run ends and exit 0 succeeded, 1 failed, 130 cancelled")
    .argument('<runid>')
    .option('-f, --follow', 'follow live lines until the run ends')
    .option('--step <id>', 'only the lines of this step id')
    .option('--timestamps', 'prefix lines with their time')
    .action(async (runId: string, o: { follow?: boolean; step?: string; timestamps?: boolean }) =>
      done(await logs(client(), runId, { follow: Boolean(o.follow), step: o.step, timestamps: Boolean(o.timestamps) })));

  p.command('cancel')
    .description('cancel a run: the running step is stopped and cleanup steps run')
    .argument('<runid>')
    .action(async (runId: string) => {
      await client().request('POST', `/runs/${encodeURIComponent(runId)}/cancel`);
      say(`run ${runId} cancel requested`);
    });

  p.command('artifacts')
    .description("a run's artifacts; with NAME, download that one (checked against its sha256)")
    .argument('<runid>')
    .argument('[name]', 'an artifact name as listed (e.g. dist/app)')
    .option('-o, --output <file|format>', 'with NAME: the file to write (- for stdout; default: its base name here); without: json or yaml')
    .option('--force', 'with NAME: replace the file if it exists')
    .action(async (runId: string, name: string | undefined, o: { output?: string; force?: boolean }) =>
      name === undefined ? listArtifacts(client(), runId, o.output) : downloadArtifact(client(), runId, name, { output: o.output, force: Boolean(o.force) }, say));

  p.command('events')
    .description('one line per NATS message under <prefix>.> (like nats sub); with --run, that run\'s events from the start, ending with the run')
    .option('--run <id>', "only this run's events (stored ones first, then live)")
    .addOption(new Option('-n, --count <n>', 'stop after N messages').argParser(positiveInt))
    .option('--timeout <duration>', 'stop after this long (e.g. 30s); exit 1 if --count was not reached')
    .action(async (o: { run?: string; count?: number; timeout?: string }) => done(await events(o)));

  p.command('new')
    .description('start a project')
    .command('driver')
    .description('write a driver project in its own directory: the SDK (@conveyor/driver-sdk), a runDriver main, a test that runs one step on a local nats-server')
    .argument('<name>', "the driver's name, as pipelines' steps say it (lowercase letters, digits, \"-\")")
    .option('--dir <dir>', 'where to write it; must not exist or be empty (default: ./NAME)')
    .option('--sdk <path|version>', 'the SDK: a tarball from "npm pack" (a file: dependency), or a version on the registry (default: this version)')
    .action((name: string, o: { dir?: string; sdk?: string }) => newDriver(name, o, say));

  p.command('conformance')
    .description('put a driver through the step protocol\'s scenarios, with a nats-server and gateway of its own; exit 0 when all pass')
    .requiredOption('--driver <name>', 'the driver name its steps use (given to it as CONVEYOR_DRIVER_NAME)')
    .option('--timeout <seconds>', 'bound of each wait of a scenario', '30')
    .option('--scenario <name...>', 'only these scenarios')
    .argument('<command...>', 'after "--": the program that runs the driver, and its arguments')
    .action(async (command: string[], o: { driver: string; timeout: string; scenario?: string[] }) => done(await conformance(command, o, say)));

  return p;
}

function positiveInt(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('must be a positive whole number');
  return n;
}

function collect(v: string, all: string[]): string[] {
  return [...all, v];
}

async function main(argv: string[]): Promise<void> {
  process.once('SIGINT', () => process.exit(EXIT.cancelled));
  // `conveyor logs ... | head` closes stdout early: that is not an error.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  });
  try {
    await program().parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      // help and version print and exit 0; a usage error was already printed.
      process.exitCode = err.exitCode === 0 ? 0 : EXIT.usage;
      return;
    }
    if (err instanceof CliError) {
      process.stderr.write(`error: ${err.message}\n`);
      process.exitCode = err.code;
      return;
    }
    process.stderr.write(`error: ${(err as Error)?.message ?? String(err)}\n`);
    process.exitCode = EXIT.usage;
  }
}

void main(process.argv);
