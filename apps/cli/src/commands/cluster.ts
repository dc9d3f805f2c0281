import { notYet, type Group } from '../cli-kit.ts';
import { CLUSTER_OPTIONS } from '../cluster-options.ts';

export const clusterGroup: Group = {
  name: 'cluster',
  summary: 'Bring the cluster up from baked boxes (CDKTF + terraform/tofu), inspect it, tear it down.',
  commands: [
    { name: 'synth', summary: 'Synthesize the CDKTF stack into cdktf.out/.', options: CLUSTER_OPTIONS, run: async () => notYet('the CDKTF app (issue 7)') },
    { name: 'plan', summary: 'terraform/tofu plan of the synthesized stack.', options: CLUSTER_OPTIONS, run: async () => notYet('cluster plan (issue 7)') },
    { name: 'up', summary: 'Synthesize and apply: boot every node and configure it.', options: CLUSTER_OPTIONS, run: async () => notYet('cluster up (issue 7)') },
    { name: 'down', summary: 'Destroy every node; leave no process, socket or overlay.', options: CLUSTER_OPTIONS, run: async () => notYet('cluster down (issue 7)') },
    { name: 'status', summary: 'Per node: running, reachable, configured, box version.', options: CLUSTER_OPTIONS, run: async () => notYet('cluster status (issue 7)') },
    { name: 'ssh', summary: 'Open a shell on a node with the cluster key.', args: '<node>', options: CLUSTER_OPTIONS, run: async () => notYet('cluster ssh (issue 7)') },
    { name: 'extras', summary: 'Deploy kube-dns and the UI (the seed\'s deploy-extras.sh).', options: CLUSTER_OPTIONS, run: async () => notYet('cluster extras (issue 7)') },
  ],
};

export const nodeGroup: Group = {
  name: 'node',
  summary: 'One step on one node; what the CDKTF stack\'s provisioners call.',
  commands: [
    { name: 'up', summary: 'Boot one node from its box.', args: '<node>', options: CLUSTER_OPTIONS, run: async () => notYet('node up (issue 7)') },
    { name: 'configure', summary: 'Apply the final configuration to one node over SSH.', args: '<node>', options: CLUSTER_OPTIONS, run: async () => notYet('node configure (issue 7)') },
    { name: 'down', summary: 'Stop one node and remove its disk overlay.', args: '<node>', options: CLUSTER_OPTIONS, run: async () => notYet('node down (issue 7)') },
  ],
};
