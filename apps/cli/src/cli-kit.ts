import { parseArgs, type ParseArgsConfig } from 'node:util';

/** Exit codes every command shares; documented in the README. */
export const EXIT = {
  ok: 0,
  failure: 1,
  usage: 2,
  invalidConfig: 3,
  missingPrerequisite: 4,
  interrupted: 130,
} as const;

export type Options = NonNullable<ParseArgsConfig['options']>;
export type Values = Record<string, string | boolean | string[] | boolean[] | undefined>;

export interface Command {
  name: string;
  summary: string;
  /** Positional arguments, for the usage line (e.g. "<node>"). */
  args?: string;
  options?: Options;
  /** Help text after the options: what it does, examples. */
  details?: string;
  run(values: Values, positionals: string[]): Promise<number>;
}

export interface Group {
  name: string;
  summary: string;
  commands: Command[];
}

/** The command line is wrong: exit 2, the message (with the command's help) and no stack. */
export class UsageError extends Error {}

/** Something to install or set up first (doctor says how): exit 4, the message and no stack. */
export class MissingPrerequisiteError extends Error {}

const HELP_OPTION: Options = { help: { type: 'boolean', short: 'h' } };

export function commandHelp(prefix: string, command: Command): string {
  const options = Object.entries(command.options ?? {}).map(([name, spec]) => {
    const flag = `${spec.short ? `-${spec.short}, ` : ''}--${name}${spec.type === 'string' ? ` <${name}>` : ''}`;
    const description = (spec as { description?: string }).description ?? '';
    return `  ${flag.padEnd(30)} ${description}`;
  });
  return [
    `Usage: ${prefix} ${command.name}${command.args ? ` ${command.args}` : ''}${options.length ? ' [options]' : ''}`,
    '',
    command.summary,
    ...(options.length ? ['', 'Options:', ...options] : []),
    `  ${'-h, --help'.padEnd(30)} this help`,
    `  ${'--verbose'.padEnd(30)} on an error, print its stack too (or BOXCAR_DEBUG=1)`,
    ...(command.details ? ['', command.details.trim()] : []),
    '',
  ].join('\n');
}

export function groupHelp(prefix: string, group: Group): string {
  const width = Math.max(...group.commands.map((c) => c.name.length)) + 2;
  return [
    `Usage: ${prefix} ${group.name} <command> [options]`,
    '',
    group.summary,
    '',
    'Commands:',
    ...group.commands.map((c) => `  ${c.name.padEnd(width)} ${c.summary}`),
    '',
    `Run "${prefix} ${group.name} <command> --help" for a command's options.`,
    '',
  ].join('\n');
}

/** Strips the `description` field that node's parseArgs does not know. */
function parseOptions(options: Options): Options {
  return Object.fromEntries(
    Object.entries(options).map(([name, spec]) => {
      const { description: _description, ...rest } = spec as typeof spec & { description?: string };
      return [name, rest];
    }),
  );
}

export async function runCommand(prefix: string, command: Command, argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: parseOptions({ ...HELP_OPTION, ...(command.options ?? {}) }), allowPositionals: true, strict: true });
  } catch (error) {
    throw new UsageError(`${(error as Error).message}\n\n${commandHelp(prefix, command)}`);
  }
  if (parsed.values.help) {
    process.stdout.write(commandHelp(prefix, command));
    return EXIT.ok;
  }
  return command.run(parsed.values as Values, parsed.positionals);
}

export function str(values: Values, name: string): string | undefined {
  const value = values[name];
  return typeof value === 'string' ? value : undefined;
}

export function table(rows: string[][], header?: string[]): string {
  const all = header ? [header, ...rows] : rows;
  const widths = all[0]?.map((_, col) => Math.max(...all.map((row) => (row[col] ?? '').length))) ?? [];
  const line = (row: string[]) => row.map((cell, col) => (col === row.length - 1 ? cell : cell.padEnd(widths[col]!))).join('  ').trimEnd();
  return [...(header ? [line(header), widths.map((w) => '-'.repeat(w)).join('  ')] : []), ...rows.map(line)].join('\n') + '\n';
}
