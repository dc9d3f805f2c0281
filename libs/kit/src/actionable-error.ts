/**
 * A failure the user can act on: a state to change, a step to run first, a name to correct. Its message
 * says what was wanted, what was found and what to do; the CLI prints it as it is (no "boxcar: Error:",
 * no stack without --verbose) and exits 1. Everything else is an internal error, reported as one.
 */
export class ActionableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ActionableError';
  }
}
