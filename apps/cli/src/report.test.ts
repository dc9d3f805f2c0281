import { ClusterConfigError, JsonSyntaxError } from '@boxcar/model';
import { describe, expect, it } from 'vitest';
import { ActionableError } from '@boxcar/kit';
import { EXIT, MissingPrerequisiteError, UsageError } from './cli-kit.ts';
import { ExitError } from './cluster-options.ts';
import { describeError, exitCodeOf, reportError, takeVerbose } from './report.ts';

describe('takeVerbose', () => {
  it('takes --verbose from anywhere before "--", or BOXCAR_DEBUG=1', () => {
    expect(takeVerbose(['node', 'down', '--verbose', 'x'], {})).toEqual({ argv: ['node', 'down', 'x'], verbose: true });
    expect(takeVerbose(['--verbose', 'config', 'show'], {})).toEqual({ argv: ['config', 'show'], verbose: true });
    expect(takeVerbose(['cluster', 'ssh', 'n', '--', 'ls', '--verbose'], {})).toEqual({ argv: ['cluster', 'ssh', 'n', '--', 'ls', '--verbose'], verbose: false });
    expect(takeVerbose(['config', 'show'], { BOXCAR_DEBUG: '1' })).toEqual({ argv: ['config', 'show'], verbose: true });
    expect(takeVerbose(['config', 'show'], { BOXCAR_DEBUG: '0' })).toEqual({ argv: ['config', 'show'], verbose: false });
  });
});

describe('exitCodeOf: the one map from errors to exit codes', () => {
  const abort = new Error('stopped');
  abort.name = 'AbortError';
  it.each([
    ['a usage error', new UsageError('x'), EXIT.usage],
    ['an invalid configuration', new ClusterConfigError([{ path: 'workers', message: 'm' }]), EXIT.invalidConfig],
    ['a JSON syntax error', new JsonSyntaxError('c.json', 1, 2, 'oops'), EXIT.invalidConfig],
    ['a missing prerequisite', new MissingPrerequisiteError('install packer'), EXIT.missingPrerequisite],
    ['an abort', abort, EXIT.interrupted],
    ['an explicit exit', new ExitError(4, 'no terraform'), 4],
    ['anything else', new TypeError('bug'), EXIT.failure],
    ['a thrown string', 'what', EXIT.failure],
  ])('%s', (_, error, code) => expect(exitCodeOf(error)).toBe(code));
});

describe('describeError', () => {
  it('prints expected errors as their message, others with their name; no stack', () => {
    expect(describeError(new ClusterConfigError([{ path: 'workers', message: 'must be a whole number from 1 to 64, got 0' }], 'c.json'), false)).toBe(
      'c.json has 1 problem(s):\n  - workers: must be a whole number from 1 to 64, got 0',
    );
    expect(describeError(new UsageError('a node name is required'), false)).toBe('a node name is required');
    expect(describeError(new Error('a bug somewhere'), false)).toBe('boxcar: Error: a bug somewhere');
    // A state the user can act on: said as it is, exit 1.
    expect(describeError(new ActionableError('cluster lab has no node "x"; nodes: cni-master1'), false)).toBe('cluster lab has no node "x"; nodes: cni-master1');
    expect(exitCodeOf(new ActionableError('x'))).toBe(EXIT.failure);
    expect(describeError(42, false)).toBe('boxcar: 42');
  });

  it('adds the causes it does not already quote', () => {
    const cause = new Error('EACCES: permission denied');
    expect(describeError(new Error('publishing failed', { cause }), false)).toBe('boxcar: Error: publishing failed\n  cause: Error: EACCES: permission denied');
    expect(describeError(new Error(`publishing failed: ${cause.message}`, { cause }), false)).toBe('boxcar: Error: publishing failed: EACCES: permission denied');
  });

  it('adds the stacks, of the causes too, when verbose', () => {
    const text = describeError(new Error('outer', { cause: new Error('inner') }), true);
    expect(text).toMatch(/^boxcar: Error: outer\n {4}at [^]*\n {2}cause: Error: inner\n {4}at /);
  });

  it('reportError writes the description and returns the exit code', () => {
    let written = '';
    expect(reportError(new UsageError('bad'), false, (text) => (written += text))).toBe(EXIT.usage);
    expect(written).toBe('bad\n');
  });
});
