import { notYet, type Group } from '../cli-kit.ts';
import { CLUSTER_OPTIONS } from '../cluster-options.ts';

export const imagesGroup: Group = {
  name: 'images',
  summary: 'Generate, validate and bake the layered images; manage the box store.',
  commands: [
    { name: 'generate', summary: 'Write the Packer templates of every layer and builder into build/packer/.', options: CLUSTER_OPTIONS, run: async () => notYet('template generation (issue 3)') },
    { name: 'validate', summary: 'Run `packer validate` on every generated template.', options: CLUSTER_OPTIONS, run: async () => notYet('packer validate of the generated templates (issue 3)') },
    { name: 'bake', summary: 'Bake the layers whose content key is not in the box store; publish the boxes.', options: CLUSTER_OPTIONS, run: async () => notYet('incremental layered bake (issue 4)') },
    { name: 'publish', summary: 'Copy boxes to another store (--to <url>).', run: async () => notYet('publish to another store (issue 4)') },
    { name: 'pull', summary: 'Copy boxes from a store into the local one.', run: async () => notYet('pull from a store (issue 4)') },
    { name: 'list', summary: 'List boxes, versions, keys, sizes and dates in the store.', run: async () => notYet('store listing (issue 4)') },
    { name: 'gc', summary: 'Remove all but the newest N versions of each box.', run: async () => notYet('store garbage collection (issue 4)') },
  ],
};
