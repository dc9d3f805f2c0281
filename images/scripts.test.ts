import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { DEFAULT_PROFILES_DIR, REPO_ROOT } from '@boxcar/model';

// Every script that runs inside a VM or builds an image: strict mode and shellcheck-clean
// (`-x` follows the `# shellcheck source=` directives into scripts/lib). Idempotence is exercised
// where the scripts can run: node-config's apply tests, and the lab e2e runs the lab scripts twice.
function shellScripts(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? shellScripts(join(dir, entry.name)) : entry.name.endsWith('.sh') ? [join(dir, entry.name)] : [],
  );
}

const scripts = [...shellScripts(DEFAULT_PROFILES_DIR), ...shellScripts(join(REPO_ROOT, 'images', 'base')), ...shellScripts(join(REPO_ROOT, 'tools'))];

describe('VM and image scripts', () => {
  it('there are scripts to check', () => expect(scripts.length).toBeGreaterThan(20));

  // Libraries under lib/ are sourced by scripts that set strict mode themselves.
  const executables = scripts.filter((script) => !script.includes('/lib/'));
  it.each(executables.map((script) => [relative(REPO_ROOT, script), script]))('%s runs with set -euo pipefail', (_, script) => {
    expect(readFileSync(script, 'utf8')).toMatch(/^set -euo pipefail$/m);
  });

  it('all are shellcheck-clean', async () => {
    const result = await execa('shellcheck', ['-x', '--source-path=SCRIPTDIR', '--severity=info', ...scripts], { reject: false });
    expect(`${result.stdout}${result.stderr}`).toBe('');
    expect(result.exitCode).toBe(0);
  });
});
