import { join } from 'node:path';
import { fetchAll, isPinned, refreshLock, resolveCacheDir, resolveMirror } from '@boxcar/artifacts';
import { loadLayerGraph } from '@boxcar/layers';
import { DEFAULT_PROFILE, DEFAULT_PROFILES_DIR } from '@boxcar/model';
import { EXIT, str, table, UsageError, type Group, type Options, type Values } from '../cli-kit.ts';

const OPTIONS: Options = {
  profile: { type: 'string', short: 'p', description: 'image profile (default xenial-2016)' } as Options[string],
  mirror: { type: 'string', description: 'artifact mirror base URL (default: $BOXCAR_ARTIFACT_MIRROR)' } as Options[string],
};

const profileOf = (values: Values) => str(values, 'profile') ?? DEFAULT_PROFILE;

export const artifactsGroup: Group = {
  name: 'artifacts',
  summary: 'Fetch pinned downloads into the artifact cache; refresh the lock (maintainers).',
  commands: [
    {
      name: 'fetch',
      summary: 'Fetch every artifact of a profile into the cache (sha256 verified), e.g. before going offline.',
      options: OPTIONS,
      async run(values) {
        const graph = await loadLayerGraph(profileOf(values));
        const pending = graph.lock.artifacts.filter((entry) => !isPinned(entry));
        if (pending.length) {
          process.stderr.write(`not pinned yet (run \`boxcar artifacts refresh\` where reachable): ${pending.map((e) => e.id).join(', ')}\n`);
        }
        const cacheDir = resolveCacheDir();
        const paths = await fetchAll(graph.lock.artifacts.filter(isPinned), {
          cacheDir,
          mirror: resolveMirror(str(values, 'mirror')),
          onRetry: (event) => process.stderr.write(`retrying ${event.id} (attempt ${event.attempt}) in ${event.delayMs} ms: ${event.cause.message}\n`),
        });
        process.stdout.write(table([...paths].map(([id, path]) => [id, path]), ['artifact', 'cached at']));
        return pending.length ? EXIT.failure : EXIT.ok;
      },
    },
    {
      name: 'refresh',
      summary: "Download the named lock entries (or --all), record their sha256 and size, rewrite the profile's lock.",
      args: '[id...]',
      options: { ...OPTIONS, all: { type: 'boolean', description: 'every entry whose upstream is not gone' } as Options[string] },
      async run(values, positionals) {
        if (!values.all && positionals.length === 0) throw new UsageError('name the lock entries to refresh, or --all');
        const lockPath = join(DEFAULT_PROFILES_DIR, profileOf(values), 'artifacts.lock.json');
        const result = await refreshLock(lockPath, values.all ? 'all' : positionals, { mirror: resolveMirror(str(values, 'mirror')) });
        process.stdout.write(
          table(
            [
              ...result.changed.map((c) => [c.id, 'changed', `${c.oldSha256 ?? 'pending'} -> ${c.newSha256}`]),
              ...result.unchanged.map((id) => [id, 'unchanged', '']),
              ...result.skipped.map((id) => [id, 'skipped', 'upstream gone: the lock is the only record']),
            ],
            ['artifact', 'result', 'sha256'],
          ) + `lock: ${lockPath}\n`,
        );
        return EXIT.ok;
      },
    },
  ],
};
