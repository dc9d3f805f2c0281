import { execa } from 'execa';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** shellcheck's findings for bash snippets, one file each, in one shellcheck run; '' when all are clean. */
export async function shellcheck(scripts: string[]): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'boxcar-shellcheck-'));
  try {
    const files = await Promise.all(
      [...new Set(scripts)].map(async (script, index) => {
        const path = join(dir, `snippet-${index}.sh`);
        await writeFile(path, `#!/usr/bin/env bash\n${script}\n`);
        return path;
      }),
    );
    const result = await execa('shellcheck', ['--shell=bash', '--format=gcc', ...files], { reject: false });
    return result.stdout.trim();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
