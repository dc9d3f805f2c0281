// Nodes of the lab cluster as real qemu processes on a blank disk, through the qemu provider's own `up`:
// the firmware waits for a boot device, so no guest runs (nothing answers SSH), while the monitor, its
// pause, savevm, loadvm and quit are real. For tests of the whole-cluster verbs on nodes in given states.

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { DEFAULT_CNI_DIR, resolveClusterOrThrow } from '@boxcar/model';
import { nodeProvider, type NodeBoot } from '@boxcar/providers';
import { providerContext, type NodeContext } from '../runtime.ts';
import { clusterPaths, writeNodeRecord } from '../state.ts';

export interface BlankNodes {
  context: NodeContext;
  /** Boots `names` on the blank disk. */
  boot(names: string[]): Promise<void>;
  /** A record for every node of the cluster, as node up writes it, with `configHash` where given. */
  recordAll(configHash?: string): Promise<void>;
  /** Stops every qemu and removes the directory. */
  cleanup(): Promise<void>;
}

export async function blankNodes(prefix: string): Promise<BlankNodes> {
  const cluster = resolveClusterOrThrow({ profile: 'lab' });
  const dir = await mkdtemp(join(tmpdir(), prefix));
  const blank = join(dir, 'blank.qcow2');
  await execa('qemu-img', ['create', '-q', '-f', 'qcow2', blank, '64M']);
  // No store is touched by the verbs these tests run.
  const context = { cluster, paths: clusterPaths(cluster, join(dir, 'state')), cniDir: DEFAULT_CNI_DIR } as NodeContext;
  const box = { name: 'boxcar/lab-worker', version: '1.1', catalogUrl: 'file:///nowhere' };
  const nodeBoot: NodeBoot = {
    box,
    disk: async () => blank,
    diskSha256: async () => '0'.repeat(64),
    clusterBoxes: async () => ({}),
    bootstrapKey: async () => undefined,
    clusterKey: async () => ({ publicKey: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHN0YW5kLWluIGtleSBmb3IgYSB0ZXN0IG9ubHkgISE= test', privateKeyPath: '/nowhere' }),
  };
  const where = providerContext(context, 'qemu');
  return {
    context,
    async boot(names) {
      for (const name of names) await nodeProvider('qemu').up(where, name, nodeBoot);
    },
    async recordAll(configHash) {
      for (const node of cluster.nodes) {
        await writeNodeRecord(context.paths, { name: node.name, provider: 'qemu', box: { name: box.name, version: box.version, contentKey: 'k' }, ssh: { host: '127.0.0.1', port: 1, user: 'vagrant' }, ...(configHash ? { configHash } : {}) });
      }
    },
    async cleanup() {
      await nodeProvider('qemu').cleanup(where);
      await rm(dir, { recursive: true, force: true });
    },
  };
}
