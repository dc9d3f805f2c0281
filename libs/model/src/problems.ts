import type { Problem } from './types.ts';

/** "<source> has N problem(s):" and one line per problem, `  - path: message` (no path: the document itself). */
export function formatProblems(source: string, problems: readonly Problem[]): string {
  const lines = problems.map((problem) => `  - ${problem.path === '' ? '' : `${problem.path}: `}${problem.message}`);
  return `${source} has ${problems.length} problem(s):\n${lines.join('\n')}`;
}

/**
 * Invalid input: a file or a configuration with problems at field paths, all of them at once. The
 * CLI reports it without a stack and exits 3; each kind of input has its subclass (ClusterConfigError,
 * ProfileError, LayerGraphError, LockValidationError).
 */
export class InputProblemsError extends Error {
  constructor(
    /** What was read: a file path, or e.g. "cluster configuration". */
    readonly source: string,
    readonly problems: Problem[],
    options?: ErrorOptions,
  ) {
    super(formatProblems(source, problems), options);
    this.name = new.target.name;
  }
}

/**
 * Records problems, leaving out those at a path where (or above which) a problem is already known:
 * a field of the wrong type or shape is reported once, by the shape check, not again by the checks of
 * its meaning.
 */
export class ProblemList {
  readonly problems: Problem[] = [];
  private readonly reported: string[] = [];

  constructor(known: readonly Problem[] = []) {
    this.reported = known.map((problem) => problem.path);
  }

  add(path: string, message: string): void {
    if (this.reported.some((known) => isAtOrUnder(path, known))) return;
    this.problems.push({ path, message });
  }
}

/** `nodes[1].ip` is under `nodes[1]` and `nodes`, not under `node`. Everything is under '' (the document). */
export function isAtOrUnder(path: string, ancestor: string): boolean {
  if (ancestor === '' || path === ancestor) return true;
  return path.startsWith(ancestor) && (path[ancestor.length] === '.' || path[ancestor.length] === '[');
}
