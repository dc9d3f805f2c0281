import { notYet, type Group } from '../cli-kit.ts';

export const artifactsGroup: Group = {
  name: 'artifacts',
  summary: 'Fetch pinned downloads into the artifact cache; refresh the lock (maintainers).',
  commands: [
    { name: 'fetch', summary: 'Fetch every artifact a profile needs into the cache (sha256 verified).', run: async () => notYet('artifact fetch (issue 3)') },
    { name: 'refresh', summary: 'Download chosen lock entries and record their sha256 and size.', run: async () => notYet('lock refresh (issue 3)') },
  ],
};
