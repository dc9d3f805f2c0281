// Lint is here for one rule: @nx/enforce-module-boundaries, which keeps the libraries layered.
// Tags are in each project's package.json ("nx.tags") or project.json ("tags"):
//
//   scope:kit        libs/kit: small helpers; depends on no project, anything may import it
//   scope:model      libs/model: the cluster and layer model; depends on kit only
//   scope:base       artifacts, packer, providers, box-store, layers, node-config: model and kit,
//                    plus the few imports between them that exist (lib:<name> tags below)
//   scope:composite  bake, nodes: base, model, kit
//   scope:app        apps/*, images, e2e: anything
//
// The rule reads Nx's cached project graph: `npm run lint` refreshes it first (`nx show projects`);
// without one the rule skips itself with a warning.
import nx from '@nx/eslint-plugin';
import tseslint from 'typescript-eslint';

const FOUNDATION = ['scope:model', 'scope:kit'];

/** @param {{ tests: boolean }} files which files the constraints are for: tests may use a little more */
function depConstraints({ tests }) {
  return [
    { sourceTag: 'scope:kit', onlyDependOnLibsWithTags: [] },
    { sourceTag: 'scope:model', onlyDependOnLibsWithTags: ['scope:kit'] },
    { sourceTag: 'scope:base', onlyDependOnLibsWithTags: [...FOUNDATION, 'scope:base'] },
    // Within base, only the imports that exist: a new one is a decision, made here.
    { sourceTag: 'lib:artifacts', onlyDependOnLibsWithTags: FOUNDATION },
    { sourceTag: 'lib:providers', onlyDependOnLibsWithTags: FOUNDATION },
    { sourceTag: 'lib:node-config', onlyDependOnLibsWithTags: FOUNDATION },
    // packer's template tests build templates from real profiles' layer graphs.
    { sourceTag: 'lib:packer', onlyDependOnLibsWithTags: tests ? [...FOUNDATION, 'lib:layers'] : FOUNDATION },
    { sourceTag: 'lib:box-store', onlyDependOnLibsWithTags: FOUNDATION },
    { sourceTag: 'lib:layers', onlyDependOnLibsWithTags: [...FOUNDATION, 'lib:artifacts', 'lib:packer'] },
    { sourceTag: 'scope:composite', onlyDependOnLibsWithTags: [...FOUNDATION, 'scope:base'] },
    { sourceTag: 'scope:app', onlyDependOnLibsWithTags: ['*'] },
  ];
}

function boundaries({ tests }) {
  return [
    'error',
    {
      allow: [],
      depConstraints: depConstraints({ tests }),
      // layers' keys hash packer's templates, and packer's tests use layers (see above): the only cycle.
      ignoredCircularDependencies: [['layers', 'packer']],
    },
  ];
}

export default [
  { ignores: ['**/node_modules/**', '**/build/**', '**/dist/**', '**/.cluster/**', '**/cdktf.out/**', '**/.nx/**'] },
  {
    files: ['**/*.ts'],
    languageOptions: { parser: tseslint.parser, parserOptions: { sourceType: 'module' } },
    plugins: { '@nx': nx },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules: { '@nx/enforce-module-boundaries': boundaries({ tests: false }) },
  },
  {
    files: ['**/*.test.ts'],
    rules: { '@nx/enforce-module-boundaries': boundaries({ tests: true }) },
  },
];
