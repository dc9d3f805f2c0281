import { createRequire } from 'node:module';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '@boxcar/model';
import { artifactsGroup } from './commands/artifacts.ts';
import { clusterGroup } from './commands/cluster.ts';
import { imagesGroup } from './commands/images.ts';

// The Nx targets (the user's verbs, tools/nx-plugin) and the CLI's commands are two lists: held equal
// here, both ways. The groups of user verbs are these three; `node` (the provisioners' steps), `config`
// and `doctor` are the CLI's own.
const { VERBS } = createRequire(import.meta.url)(join(REPO_ROOT, 'tools/nx-plugin/index.cjs')) as { VERBS: Record<string, Record<string, string>> };

describe('the Nx verbs and the CLI commands', () => {
  const cli = [imagesGroup, artifactsGroup, clusterGroup].flatMap((group) => group.commands.map((command) => `${group.name} ${command.name}`)).sort();
  const nx = Object.values(VERBS).flatMap((targets) => Object.values(targets)).sort();

  it('every Nx verb runs a command the CLI has', () => expect(nx.filter((command) => !cli.includes(command))).toEqual([]));

  it('every command of the user groups has its Nx verb', () => expect(cli.filter((command) => !nx.includes(command))).toEqual([]));

  it('a cluster verb is named as its command', () => {
    for (const [target, command] of Object.entries(VERBS['apps/cluster']!)) expect(command).toBe(`cluster ${target}`);
  });
});
