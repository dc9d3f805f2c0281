import { createReporter, generateTemplates, openBake, validateTemplates, type BakePlan } from '@boxcar/bake';
import { defaultStoreUrl, openStore, type CopiedLayers } from '@boxcar/box-store';
import { BUILDERS, ClusterConfigError, DEFAULT_PROFILE, listProfiles, loadCluster, readJsonFile, type BuilderName } from '@boxcar/model';
import { detectPacker, PackerBuildError } from '@boxcar/packer';
import { EXIT, MissingPrerequisiteError, str, table, UsageError, type Group, type Options, type Values } from '../cli-kit.ts';

const PROFILE: Options = { profile: { type: 'string', short: 'p', description: 'image profile: xenial-2016 (default) or lab' } as Options[string] };
const STORE: Options = { store: { type: 'string', description: 'box store URL (default: $BOXCAR_STORE, else ~/.cache/boxcar/store)' } as Options[string] };
const PUBLIC_URL: Options = {
  'public-url': {
    type: 'string',
    description: "the URL a web server serves the store at: catalogs get box URLs under it (default: the config's boxStorePublicUrl, else the store's own URL)",
  } as Options[string],
  config: { type: 'string', short: 'c', description: 'cluster config file, for boxStorePublicUrl (default: $BOXCAR_CONFIG, else ./cluster.config.json)' } as Options[string],
};
const ALL_PROFILES: Options = { all: { type: 'boolean', description: 'every profile' } as Options[string] };

function profileOf(values: Values): string {
  return str(values, 'profile') ?? DEFAULT_PROFILE;
}

function builderOf(values: Values): BuilderName | undefined {
  const builder = str(values, 'builder');
  if (builder !== undefined && !(BUILDERS as readonly string[]).includes(builder)) {
    throw new UsageError(`--builder must be one of ${BUILDERS.join(', ')}, got "${builder}"`);
  }
  return builder as BuilderName | undefined;
}

/** What a copy did with the boxes' layers; a layer the source lacks is named, since a qemu node cannot boot without it. */
function describeLayers(layers: CopiedLayers): string {
  const missing = layers.missing.map((l) => `  no layer ${l.profile}/${l.layer} ${l.key.slice(0, 12)} in the source: its box serves Vagrant providers, but a qemu node cannot boot from it\n`);
  return `layers: copied ${layers.copied.length}, already there ${layers.present.length} (verified)\n${missing.join('')}`;
}

function list(values: Values, name: string): string[] {
  const value = values[name];
  return (Array.isArray(value) ? (value as string[]) : typeof value === 'string' ? [value] : []).flatMap((item) => item.split(',')).filter(Boolean);
}

function storeUrl(values: Values): string {
  return str(values, 'store') ?? defaultStoreUrl();
}

/**
 * --public-url, else the config file's boxStorePublicUrl. Only that field's problems stop the command:
 * the rest of the cluster configuration does not concern a bake or a publish.
 */
function publicUrlOf(values: Values): string | undefined {
  const flag = str(values, 'public-url');
  if (flag !== undefined) return flag;
  const loaded = loadCluster({ configFile: str(values, 'config') });
  if (!loaded.configFile) return undefined;
  const problems = loaded.problems.filter((problem) => problem.path === 'boxStorePublicUrl');
  if (problems.length > 0) throw new ClusterConfigError(problems, loaded.configFile);
  return (readJsonFile(loaded.configFile) as { boxStorePublicUrl?: string }).boxStorePublicUrl;
}

export function renderPlan(plan: BakePlan): string {
  const builds = plan.builds.length
    ? `${table(
        plan.builds.map((build) => [
          build.build,
          build.key.slice(0, 12),
          build.status === 'build' ? 'to build' : build.status,
          build.status === 'build' ? `${build.reasons.join('; ')} (for ${build.neededBy.join(', ')})` : build.status === 'cached' ? `built on this machine (for ${build.neededBy.join(', ')})` : 'no layer to build needs it',
        ]),
        ['build stage', 'key', 'status', 'why'],
      )}\n`
    : '';
  return builds + table(
    plan.layers.map((layer) => [
      layer.layer,
      layer.key.slice(0, 12),
      layer.status === 'cached' ? 'cached' : 'to build',
      layer.box ? layer.box.name : '',
      layer.status === 'build' ? layer.reasons.join('; ') : '',
    ]),
    ['layer', 'key', 'status', 'box', 'why it builds'],
  );
}

async function profilesOf(values: Values): Promise<string[]> {
  if (!values.all) return [profileOf(values)];
  return listProfiles();
}

export const imagesGroup: Group = {
  name: 'images',
  summary: 'Generate, validate and bake the layered images; manage the box store.',
  commands: [
    {
      name: 'generate',
      summary: 'Write the Packer templates of every layer and builder into build/packer/<profile>/.',
      options: { ...PROFILE, ...ALL_PROFILES },
      async run(values) {
        const packer = await detectPacker();
        for (const profile of await profilesOf(values)) {
          const templates = await generateTemplates(profile, { requiredPlugins: packer?.requiredPlugins ?? true });
          process.stdout.write(table(templates.map((t) => [t.layer, t.builder, t.dir]), ['layer', 'builder', 'template directory']));
        }
        if (!packer) process.stderr.write('packer is not installed: templates use `required_plugins` (Packer 1.7+)\n');
        return EXIT.ok;
      },
    },
    {
      name: 'validate',
      summary: 'Generate the templates and run `packer validate` on every one.',
      options: { ...PROFILE, ...ALL_PROFILES },
      async run(values) {
        const packer = await detectPacker();
        if (!packer) throw new MissingPrerequisiteError('packer is not installed: apt-get install packer (see `boxcar doctor`)');
        let failures = 0;
        for (const profile of await profilesOf(values)) {
          const results = await validateTemplates(await generateTemplates(profile, packer));
          process.stdout.write(table(results.map((r) => [profile, r.layer, r.builder, r.ok ? 'valid' : 'INVALID']), ['profile', 'layer', 'builder', `packer ${packer.version} validate`]));
          for (const result of results.filter((r) => !r.ok)) {
            failures += 1;
            process.stderr.write(`\n${result.dir}:\n${result.output}\n`);
          }
        }
        return failures ? EXIT.failure : EXIT.ok;
      },
    },
    {
      name: 'bake',
      summary: 'Bake the layers whose content key is not in the box store, then publish their boxes.',
      options: {
        ...PROFILE,
        ...STORE,
        ...PUBLIC_URL,
        builder: { type: 'string', description: `${BUILDERS.join(' or ')} (default: the profile's first)` } as Options[string],
        only: { type: 'string', multiple: true, description: 'bake only this layer (and its missing ancestors); repeatable' } as Options[string],
        force: { type: 'string', multiple: true, description: 'rebuild this layer even if cached; repeatable' } as Options[string],
        jobs: { type: 'string', short: 'j', description: 'independent layers baked at once (default 2)' } as Options[string],
        'dry-run': { type: 'boolean', description: 'print the plan (layer, key, cached or to build, why) and stop' } as Options[string],
        mirror: { type: 'string', description: 'artifact mirror base URL (default: $BOXCAR_ARTIFACT_MIRROR)' } as Options[string],
        'apt-mirror': { type: 'string', description: 'apt mirror for layers that install from apt in the guest (default: $BOXCAR_APT_MIRROR)' } as Options[string],
        gui: { type: 'boolean', description: 'show the VM window (Packer headless=false)' } as Options[string],
        debug: { type: 'boolean', description: 'packer -debug: pause between steps' } as Options[string],
        'on-error': { type: 'string', description: 'packer -on-error: cleanup (default), abort, ask' } as Options[string],
        json: { type: 'boolean', description: 'print the plan and the result as JSON on stdout (progress stays on stderr)' } as Options[string],
      },
      details: `
Exit codes: 0 every planned layer is baked and published; 1 a layer failed (the error names the layer,
the step, the last lines and the log); 130 interrupted (finished layers stay published).`,
      async run(values) {
        const jobs = Number(str(values, 'jobs') ?? '2');
        if (!Number.isInteger(jobs) || jobs < 1) throw new UsageError(`--jobs must be a whole number of 1 or more, got "${str(values, 'jobs')}"`);
        const onError = str(values, 'on-error');
        if (onError !== undefined && !['cleanup', 'abort', 'ask', 'run-cleanup-provisioner'].includes(onError)) {
          throw new UsageError(`--on-error must be cleanup, abort, ask or run-cleanup-provisioner, got "${onError}"`);
        }
        const controller = new AbortController();
        const onSignal = () => {
          process.stderr.write('\ninterrupted: stopping packer (it removes its VM files); finished layers stay published\n');
          controller.abort();
        };
        process.on('SIGINT', onSignal);
        process.on('SIGTERM', onSignal);
        const reporter = createReporter();
        const started = Date.now();
        try {
          const session = await openBake({
            profile: profileOf(values),
            builder: builderOf(values),
            storeUrl: storeUrl(values),
            publicUrl: publicUrlOf(values),
            only: list(values, 'only'),
            force: list(values, 'force'),
            jobs,
            gui: Boolean(values.gui),
            packerArgs: [...(values.debug ? ['-debug'] : []), ...(onError ? [`-on-error=${onError}`] : [])],
            mirror: str(values, 'mirror'),
            aptMirror: str(values, 'apt-mirror'),
            signal: controller.signal,
            reporter,
          });
          const json = Boolean(values.json);
          const header = `profile ${session.graph.profile}, builder ${session.plan.builder}, store ${session.store.url}\n${renderPlan(session.plan)}`;
          (json ? process.stderr : process.stdout).write(header);
          if (values['dry-run']) {
            if (json) process.stdout.write(`${JSON.stringify({ plan: session.plan }, null, 2)}\n`);
            return EXIT.ok;
          }
          const result = await session.run();
          reporter.close();
          if (json) {
            const { failed, ...rest } = result;
            process.stdout.write(`${JSON.stringify({ plan: session.plan, result: { ...rest, ...(failed ? { failed: { layer: failed.layer, error: failed.error.message } } : {}) }, seconds: (Date.now() - started) / 1000 }, null, 2)}\n`);
          }
          const seconds = ((Date.now() - started) / 1000).toFixed(1);
          if (result.failed) {
            const error = result.failed.error;
            process.stderr.write(`\nbake failed: layer ${result.failed.layer}: ${error.message}\n`);
            if (error instanceof PackerBuildError) {
              process.stderr.write(`last lines:\n${error.lastLines.map((line) => `  | ${line}`).join('\n')}\nfull log: ${error.logFile}\n`);
            }
            if (result.built.length) process.stderr.write(`published before the failure: ${result.built.map((b) => b.layer).join(', ')}\n`);
            if (result.skipped.length) process.stderr.write(`not started: ${result.skipped.join(', ')}\n`);
            return controller.signal.aborted ? EXIT.interrupted : EXIT.failure;
          }
          (json ? process.stderr : process.stdout).write(
            `bake done in ${seconds} s: ${result.built.length} layer(s) baked (${result.packerRuns} packer run(s)), ${result.cached.length} cached\n` +
              (result.builds ?? [])
                .map((build) => `  build ${build.build}: ${build.seconds.toFixed(0)} s (${Object.entries(build.steps).map(([step, s]) => `${step} ${s} s`).join(', ')})\n`)
                .join('') +
              result.built.filter((b) => b.box).map((b) => `  ${b.box!.name} ${b.box!.version}: vagrant box add ${session.store.catalogUrl(b.box!.name)}\n`).join(''),
          );
          return EXIT.ok;
        } finally {
          reporter.close();
          process.off('SIGINT', onSignal);
          process.off('SIGTERM', onSignal);
        }
      },
    },
    {
      name: 'list',
      summary: 'List boxes, versions, content keys, sizes and dates in a store.',
      options: { ...STORE, json: { type: 'boolean', description: 'machine-readable output' } as Options[string] },
      async run(values) {
        const store = await openStore(storeUrl(values));
        const boxes = await store.listBoxes();
        if (values.json) {
          process.stdout.write(`${JSON.stringify(boxes, null, 2)}\n`);
          return EXIT.ok;
        }
        process.stdout.write(`store ${store.url}\n`);
        process.stdout.write(
          table(
            boxes.flatMap((box) =>
              box.versions.map((version) => [
                box.name,
                version.version,
                version.key.slice(0, 12),
                version.providers.map((p) => `${p.name} ${(p.size / 2 ** 20).toFixed(0)} MiB`).join(', '),
                version.createdAt,
              ]),
            ),
            ['box', 'version', 'key', 'providers', 'created'],
          ),
        );
        return EXIT.ok;
      },
    },
    {
      name: 'gc',
      summary: 'Remove all but the newest N versions of each box, and layers nothing needs; keep what a cluster runs on.',
      options: {
        ...STORE,
        keep: { type: 'string', description: 'versions to keep per box (default 3)' } as Options[string],
        'dry-run': { type: 'boolean', description: 'say what would be removed' } as Options[string],
      },
      details: `
Box versions and layers that a running cluster's nodes were booted from (see \`images refs\`) are kept
whatever --keep says, and listed with the cluster that keeps them.`,
      async run(values) {
        const keep = Number(str(values, 'keep') ?? '3');
        if (!Number.isInteger(keep) || keep < 1) throw new UsageError(`--keep must be a whole number of 1 or more, got "${str(values, 'keep')}"`);
        const store = await openStore(storeUrl(values));
        const result = await store.gc({ keep, dryRun: Boolean(values['dry-run']) });
        const verb = values['dry-run'] ? 'would remove' : 'removed';
        process.stdout.write(
          `${verb} ${result.boxVersions.length} box version(s), ${result.layers.length} layer(s)\n` +
            result.boxVersions.map((b) => `  ${b.name} ${b.version}\n`).join('') +
            result.layers.map((l) => `  layer ${l.profile}/${l.layer} ${l.key.slice(0, 12)}\n`).join('') +
            result.kept
              .map((k) => (k.box ? `kept ${k.box.version} of ${k.box.name}: ${k.reason}\n` : `kept layer ${k.profile}/${k.layer} ${k.key.slice(0, 12)}: ${k.reason}\n`))
              .join(''),
        );
        return EXIT.ok;
      },
    },
    {
      name: 'refs',
      summary: "List the clusters' references to the store's layers (what gc keeps), or drop those of a dead cluster.",
      options: {
        ...STORE,
        drop: { type: 'string', description: 'remove the references of this cluster (its nodes no longer run)' } as Options[string],
        host: { type: 'string', description: 'with --drop: the host the cluster ran on (default: this one)' } as Options[string],
        json: { type: 'boolean', description: 'machine-readable output' } as Options[string],
      },
      details: `
\`node up\` records which layer (and box version) each node boots from; \`node down\` and \`cluster down\`
remove it. A cluster that died without going down leaves its references, and gc keeps its layers:
\`images refs --drop <cluster>\` removes them, the cluster named as this list shows it (its name and a
hash of the user and the state directory that run it: two checkouts' "lab" clusters are two clusters). A file:// store keeps references in the store (every
host's); an http(s):// store, read only, in this machine's layer cache.`,
      async run(values) {
        const store = await openStore(storeUrl(values));
        const drop = str(values, 'drop');
        const host = str(values, 'host');
        if (host !== undefined && drop === undefined) throw new UsageError('--host goes with --drop <cluster>');
        if (drop !== undefined) {
          const dropped = await store.dropRefs({ cluster: drop, ...(host !== undefined && { host }) });
          if (values.json) process.stdout.write(`${JSON.stringify(dropped, null, 2)}\n`);
          else process.stdout.write(`dropped ${dropped.length} reference(s) of cluster ${drop}${dropped.map((r) => `\n  ${r.node}: ${r.box.name} ${r.box.version}`).join('')}\n`);
          return EXIT.ok;
        }
        const refs = await store.listRefs();
        if (values.json) {
          process.stdout.write(`${JSON.stringify(refs, null, 2)}\n`);
          return EXIT.ok;
        }
        process.stdout.write(`store ${store.url}\n`);
        process.stdout.write(
          table(
            refs.map((r) => [r.host, r.cluster, r.node, `${r.box.name} ${r.box.version}`, `${r.profile}/${r.layer} ${r.key.slice(0, 12)}`, r.createdAt, r.owner ? `${r.owner.user} ${r.owner.stateDir}` : '']),
            ['host', 'cluster', 'node', 'box', 'layer', 'since', 'owner'],
          ),
        );
        return EXIT.ok;
      },
    },
    {
      name: 'publish',
      summary: 'Copy boxes, with the layers they were baked from, from a store to another (a team share), with catalog URLs of the target.',
      options: {
        ...STORE,
        to: { type: 'string', description: 'target store URL (file://, required)' } as Options[string],
        box: { type: 'string', multiple: true, description: 'only this box; repeatable (default: all)' } as Options[string],
        ...PUBLIC_URL,
      },
      details: `
To share a store through a web server, publish into the directory it serves and give the URL it is
served at: the catalogs then point Vagrant there, not at this machine's file:// paths.

  boxcar images publish --to /srv/boxes --public-url https://boxes.lab.example/
  vagrant box add https://boxes.lab.example/boxes/boxcar/lab-worker/metadata.json`,
      async run(values) {
        const to = str(values, 'to');
        if (!to) throw new UsageError('--to <store URL> is required');
        const source = await openStore(storeUrl(values));
        const publicUrl = publicUrlOf(values);
        const target = await openStore(to, publicUrl !== undefined ? { publicUrl } : {});
        const boxes = list(values, 'box');
        const result = await source.copyTo(target, boxes.length ? { boxes } : {});
        process.stdout.write(
          `copied ${result.copied.length}, already there ${result.present.length}\n` +
            describeLayers(result.layers) +
            [...new Set([...result.copied, ...result.present].map((b) => b.name))].map((name) => `  vagrant box add ${target.catalogUrl(name)}\n`).join(''),
        );
        return EXIT.ok;
      },
    },
    {
      name: 'pull',
      summary: 'Copy a box (newest version, or --version) from a shared store into the local one.',
      args: '<box>',
      options: {
        from: { type: 'string', description: 'store to pull from (required)' } as Options[string],
        version: { type: 'string', description: 'version (default: newest)' } as Options[string],
        ...STORE,
      },
      async run(values, positionals) {
        const from = str(values, 'from');
        const [box] = positionals;
        if (!from || !box) throw new UsageError('usage: boxcar images pull <box> --from <store URL> [--version V]');
        const source = await openStore(from);
        const local = await openStore(storeUrl(values));
        const result = await source.copyTo(local, { boxes: [box], ...(str(values, 'version') ? { versions: [str(values, 'version')!] } : {}) });
        process.stdout.write(`pulled ${result.copied.length} file(s), ${result.present.length} already local\n${describeLayers(result.layers)}  vagrant box add ${local.catalogUrl(box)}\n`);
        return EXIT.ok;
      },
    },
  ],
};
