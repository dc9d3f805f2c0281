import { ActionableError } from '@boxcar/kit';
import { InputProblemsError, JsonSyntaxError } from '@boxcar/model';
import { EXIT, MissingPrerequisiteError, UsageError } from './cli-kit.ts';
import { ExitError } from './cluster-options.ts';

// How the CLI ends on an error: the one place that maps errors to exit codes and prints them. The
// message (and the messages of its causes) always; the stack only with --verbose or BOXCAR_DEBUG=1.

export const VERBOSE_FLAG = '--verbose';

/** The command line without `--verbose` (anywhere before a `--`), and whether it or BOXCAR_DEBUG=1 asks for stacks. */
export function takeVerbose(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): { argv: string[]; verbose: boolean } {
  const end = argv.includes('--') ? argv.indexOf('--') : argv.length;
  const options = argv.slice(0, end);
  const verbose = options.includes(VERBOSE_FLAG) || env.BOXCAR_DEBUG === '1';
  return { argv: [...options.filter((arg) => arg !== VERBOSE_FLAG), ...argv.slice(end)], verbose };
}

/** Exit codes of the README's table: usage 2, invalid input 3, missing prerequisite 4, interrupted 130, else 1. */
export function exitCodeOf(error: unknown): number {
  if (error instanceof UsageError) return EXIT.usage;
  if (error instanceof ExitError) return error.exitCode;
  if (error instanceof InputProblemsError || error instanceof JsonSyntaxError) return EXIT.invalidConfig;
  if (error instanceof MissingPrerequisiteError) return EXIT.missingPrerequisite;
  if (error instanceof Error && error.name === 'AbortError') return EXIT.interrupted;
  return EXIT.failure;
}

/** Errors the CLI expects (bad usage, bad input, something to install, a state the user can act on): their message says it all. */
function isExpected(error: Error): boolean {
  return exitCodeOf(error) !== EXIT.failure || error instanceof ExitError || error instanceof ActionableError;
}

/** What the CLI prints for an error, without the final newline. */
export function describeError(error: unknown, verbose: boolean): string {
  if (!(error instanceof Error)) return `boxcar: ${String(error)}`;
  const lines = [isExpected(error) ? error.message : `boxcar: ${error.name}: ${error.message}`];
  if (verbose) lines.push(...frames(error));
  let parent = error;
  let cause: unknown = error.cause;
  for (let depth = 0; cause !== undefined && depth < 8; depth++) {
    if (cause instanceof Error) {
      // Many errors already quote their cause's message: then it is not repeated, only its stack is shown.
      const quoted = parent.message.includes(cause.message);
      if (!quoted || verbose) lines.push(`  cause: ${cause.name}: ${cause.message}`);
      if (verbose) lines.push(...frames(cause));
      parent = cause;
      cause = cause.cause;
    } else {
      lines.push(`  cause: ${String(cause)}`);
      break;
    }
  }
  return lines.join('\n');
}

/** Prints the error as describeError says, and returns the exit code for it. */
export function reportError(error: unknown, verbose: boolean, write: (text: string) => void = (text) => process.stderr.write(text)): number {
  write(`${describeError(error, verbose)}\n`);
  return exitCodeOf(error);
}

function frames(error: Error): string[] {
  return (error.stack ?? '').split('\n').filter((line) => /^\s+at /.test(line));
}
