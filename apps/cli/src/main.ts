#!/usr/bin/env node
import { EXIT, UsageError, groupHelp, runCommand, type Command, type Group } from './cli-kit.ts';
import { configGroup } from './commands/config.ts';
import { doctorCommand } from './commands/doctor.ts';
import { imagesGroup } from './commands/images.ts';
import { clusterGroup, nodeGroup } from './commands/cluster.ts';
import { artifactsGroup } from './commands/artifacts.ts';
import { reportError, takeVerbose } from './report.ts';

const PROGRAM = 'boxcar';
// Packer and Terraform phone HashiCorp's checkpoint service on every run; nothing here may reach out.
process.env.CHECKPOINT_DISABLE = '1';
// Started by bin/boxcar.mjs, whose death closes this channel: stop as on SIGTERM rather than live on.
if (process.channel) {
  process.channel.unref();
  process.on('disconnect', () => process.kill(process.pid, 'SIGTERM'));
}
// Whoever read our output may be gone (terraform closes a stopped provisioner's pipes): a write to
// them fails with EPIPE, and that must not end the cleanup that an abort runs.
for (const stream of [process.stdout, process.stderr]) stream.on('error', () => undefined);
const groups: Group[] = [imagesGroup, artifactsGroup, clusterGroup, nodeGroup, configGroup];
const topCommands: Command[] = [doctorCommand];

function mainHelp(): string {
  const rows = [...topCommands.map((c) => [c.name, c.summary]), ...groups.map((g) => [g.name, g.summary])];
  const width = Math.max(...rows.map(([name]) => name!.length)) + 2;
  return [
    `Usage: ${PROGRAM} <command> [options]`,
    '',
    'Bake VPP + Kubernetes CNI dev machines once into versioned boxes; boot the cluster from them in minutes.',
    '',
    'Commands:',
    ...rows.map(([name, summary]) => `  ${name!.padEnd(width)} ${summary}`),
    '',
    'Options of every command:',
    '  --verbose   on an error, print its stack too (or BOXCAR_DEBUG=1)',
    '',
    `Run "${PROGRAM} <command> --help" for more.`,
    '',
  ].join('\n');
}

export async function main(argv: string[]): Promise<number> {
  const [first, second, ...rest] = argv;
  if (!first || first === '--help' || first === '-h' || first === 'help') {
    process.stdout.write(mainHelp());
    return first ? EXIT.ok : EXIT.usage;
  }
  const top = topCommands.find((c) => c.name === first);
  if (top) return runCommand(PROGRAM, top, argv.slice(1));
  const group = groups.find((g) => g.name === first);
  if (!group) throw new UsageError(`unknown command "${first}"\n\n${mainHelp()}`);
  if (!second || second === '--help' || second === '-h') {
    process.stdout.write(groupHelp(PROGRAM, group));
    return second ? EXIT.ok : EXIT.usage;
  }
  const command = group.commands.find((c) => c.name === second);
  if (!command) throw new UsageError(`unknown command "${group.name} ${second}"\n\n${groupHelp(PROGRAM, group)}`);
  return runCommand(`${PROGRAM} ${group.name}`, command, rest);
}

const { argv, verbose } = takeVerbose(process.argv.slice(2));
main(argv).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.exitCode = reportError(error, verbose);
  },
);
