// The fault scenarios as a table: runs the suite (`node --import tsx e2e/faults/report.ts [vitest filters]`,
// from the repository root) with vitest's JSON reporter and prints, per test, the scenario, what was
// tried and what happened. Exit code: vitest's.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';

interface AssertionResult {
  ancestorTitles: string[];
  title: string;
  status: 'passed' | 'failed' | 'skipped' | 'pending' | 'todo';
  duration?: number | null;
  failureMessages: string[];
}

interface JsonReport {
  testResults: { name: string; startTime: number; endTime: number; assertionResults: AssertionResult[] }[];
}

const repo = fileURLToPath(new URL('../..', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'boxcar-faults-report-'));
const output = join(dir, 'results.json');
const started = Date.now();
try {
  const run = await execa('npx', ['vitest', 'run', 'e2e/faults', '--reporter=json', `--outputFile=${output}`, ...process.argv.slice(2)], {
    cwd: repo,
    reject: false,
    stdout: 'ignore',
    stderr: 'inherit',
  });
  const report = JSON.parse(readFileSync(output, 'utf8')) as JsonReport;
  // One block per scenario (the fault that was tried), one row per promise checked, with its outcome.
  // Seconds are those of the check itself; the fault is staged in each scenario's beforeAll.
  const lines = ['outcome  seconds  scenario: what was tried / promise checked'];
  for (const file of [...report.testResults].sort((a, b) => a.name.localeCompare(b.name))) {
    lines.push('', file.name.slice(repo.length));
    let scenario = '';
    for (const test of file.assertionResults) {
      const name = test.ancestorTitles.join(' > ');
      if (name !== scenario) lines.push(`                  ${(scenario = name)}`);
      lines.push(`${test.status.toUpperCase().padEnd(7)}  ${((test.duration ?? 0) / 1000).toFixed(1).padStart(7)}    ${test.title}`);
      const why = test.failureMessages[0]?.replace(/\x1b\[[0-9;]*m/g, '').split('\n')[0]?.slice(0, 160);
      if (test.status === 'failed' && why) lines.push(`                      ${why}`);
    }
  }
  process.stdout.write(`${lines.join('\n')}\n`);
  const all = report.testResults.flatMap((file) => file.assertionResults);
  process.stdout.write(`\n${all.filter((t) => t.status === 'passed').length} passed, ${all.filter((t) => t.status === 'failed').length} failed, ${all.filter((t) => t.status !== 'passed' && t.status !== 'failed').length} skipped, in ${((Date.now() - started) / 1000).toFixed(0)} s\n`);
  process.exitCode = run.exitCode ?? 1;
} finally {
  rmSync(dir, { recursive: true, force: true });
}
