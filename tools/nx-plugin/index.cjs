// Local Nx plugin. It infers three kinds of targets, so that none of them is written out per project:
//
// - The user's verbs (`images:bake`, `cluster:up`, ...): each runs one command of this repo's CLI, and
//   arguments after the target go to that command (`nx run cluster:status --profile lab`).
// - One bake target per image layer, named bake-<profile>-<layer>, depending on its parent layer's
//   target, so that `nx graph` shows each profile's layer DAG and `nx run images:bake-lab-worker` bakes
//   a layer after its ancestors. The layer graph itself stays data (images/profiles/<profile>/layers.json);
//   this only reads it.
// - `typecheck` (tsc on the project's tsconfig.json, for a project that has one) and `test` (the fast
//   vitest project on the project's own files), per project. Their inputs and caching are in nx.json's
//   targetDefaults.
const { existsSync, readFileSync } = require('node:fs');
const { dirname, basename, join } = require('node:path');

const CLI = 'node --import tsx apps/cli/src/main.ts';

// Project root -> Nx target -> the CLI command it runs (`boxcar <command> --help` says what each does).
const VERBS = {
  images: {
    bake: 'images bake',
    generate: 'images generate',
    validate: 'images validate',
    publish: 'images publish',
    pull: 'images pull',
    list: 'images list',
    gc: 'images gc',
    refs: 'images refs',
    fetch: 'artifacts fetch',
    'refresh-lock': 'artifacts refresh',
  },
  'apps/cluster': {
    synth: 'cluster synth',
    plan: 'cluster plan',
    up: 'cluster up',
    down: 'cluster down',
    status: 'cluster status',
    ssh: 'cluster ssh',
    extras: 'cluster extras',
    snapshot: 'cluster snapshot',
    stop: 'cluster stop',
    start: 'cluster start',
  },
};

function cliTarget(command, description = `boxcar ${command}`) {
  return {
    executor: 'nx:run-commands',
    options: { command: `${CLI} ${command}`, cwd: '{workspaceRoot}' },
    metadata: { description },
  };
}

function layerTargets(layersFile, workspaceRoot) {
  const profile = basename(dirname(layersFile));
  const { layers = [] } = JSON.parse(readFileSync(join(workspaceRoot, layersFile), 'utf8'));
  const targets = {};
  for (const layer of layers) {
    const description = `${layer.description ?? layer.name}${layer.box ? ` (publishes the ${layer.box.role} box)` : ''}`;
    targets[`bake-${profile}-${layer.name}`] = {
      ...cliTarget(`images bake --profile ${profile} --only ${layer.name}`, description),
      dependsOn: layer.parent ? [`bake-${profile}-${layer.parent}`] : [],
    };
  }
  return targets;
}

function projectTargets(root, workspaceRoot) {
  const targets = {};
  for (const [target, command] of Object.entries(VERBS[root] ?? {})) targets[target] = cliTarget(command);
  if (existsSync(join(workspaceRoot, root, 'tsconfig.json'))) {
    targets.typecheck = {
      executor: 'nx:run-commands',
      options: { command: `tsc -p ${root}/tsconfig.json --noEmit`, cwd: '{workspaceRoot}' },
      metadata: { description: "type-check the project's files (tests included) and what they import" },
    };
  }
  // e2e's own `test` target (e2e/project.json) is the VM suite; its fast files run with `npm test`.
  if (root !== 'e2e') {
    targets.test = {
      executor: 'nx:run-commands',
      options: { command: `vitest run --project fast --passWithNoTests ${root}/`, cwd: '{workspaceRoot}' },
      metadata: { description: "the fast tests of the project's own files" },
    };
  }
  return targets;
}

module.exports = {
  name: 'boxcar',
  // Read by apps/cli's verbs test, which holds these and the CLI's commands equal both ways.
  VERBS,
  createNodesV2: [
    '{images/profiles/*/layers.json,libs/*/package.json,apps/*/package.json,images/package.json,e2e/package.json}',
    async (files, _options, context) =>
      files.map((file) => {
        if (file.endsWith('layers.json')) return [file, { projects: { images: { root: 'images', targets: layerTargets(file, context.workspaceRoot) } } }];
        const root = dirname(file);
        return [file, { projects: { [root]: { root, targets: projectTargets(root, context.workspaceRoot) } } }];
      }),
  ],
};
