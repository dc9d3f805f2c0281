// Local Nx plugin: one bake target per image layer, named bake-<profile>-<layer>, depending on its
// parent layer's target, so that `nx graph` shows each profile's layer DAG and `nx run
// images:bake-lab-worker` bakes a layer after its ancestors. The layer graph itself stays data
// (images/profiles/<profile>/layers.json); this only reads it.
const { readFileSync } = require('node:fs');
const { dirname, basename } = require('node:path');

const CLI = 'node --import tsx apps/cli/src/main.ts';

function targetsOf(layersFile) {
  const profile = basename(dirname(layersFile));
  const { layers = [] } = JSON.parse(readFileSync(layersFile, 'utf8'));
  const targets = {};
  for (const layer of layers) {
    targets[`bake-${profile}-${layer.name}`] = {
      executor: 'nx:run-commands',
      options: { command: `${CLI} images bake --profile ${profile} --only ${layer.name}`, cwd: '{workspaceRoot}' },
      dependsOn: layer.parent ? [`bake-${profile}-${layer.parent}`] : [],
      metadata: { description: `${layer.description ?? layer.name}${layer.box ? ` (publishes the ${layer.box.role} box)` : ''}` },
    };
  }
  return targets;
}

module.exports = {
  name: 'boxcar-layers',
  createNodesV2: [
    'images/profiles/*/layers.json',
    async (files) =>
      files.map((file) => [file, { projects: { images: { name: 'images', root: 'images', targets: targetsOf(file) } } }]),
  ],
};
