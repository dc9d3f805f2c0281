import { ActionableError } from '@boxcar/kit';
import { findNode, type ProviderName } from '@boxcar/model';
import { nodeProvider, type NodeRunState } from '@boxcar/providers';
import { nodeUp, providerContext, type NodeContext } from './runtime.ts';
import { RESUMED_FROM, resumeNodes } from './snapshots.ts';
import { readNodeRecord } from './state.ts';

// The node's machine running from its own disk, whatever stopped it: the step of the stack's boot
// resource, which cluster up replaces when a node's machine is not running (its disk still there). A
// node whose disk is gone is not this step's: cluster up replaces its VM resource (node up).

export interface NodeStartResult {
  /** The machine's state before. */
  was: NodeRunState;
  /** What was done, for the provisioner's line. */
  did: string;
}

export class NodeDiskGoneError extends ActionableError {
  constructor(node: string, detail: string) {
    super(`node ${node}: ${detail}; nothing to start from: cluster up makes it again from its box (its VM is replaced)`);
    this.name = 'NodeDiskGoneError';
  }
}

export async function nodeStart(context: NodeContext, nodeName: string): Promise<NodeStartResult> {
  const { cluster, paths } = context;
  findNode(cluster, nodeName);
  const record = await readNodeRecord(paths, nodeName);
  if (!record) throw new NodeDiskGoneError(nodeName, 'it has no record (it was taken down, or never brought up)');
  const provider = record.provider as ProviderName;
  const where = providerContext(context, provider);
  if (record.restoreFailed) throw new NodeDiskGoneError(nodeName, `its restore of snapshot ${record.restoreFailed.snapshot} failed, so its memory and disk are undefined`);
  const was = (await nodeProvider(provider).status(where))[nodeName] ?? 'absent';
  const progress = (message: string) => context.onProgress?.(nodeName, message);
  switch (was) {
    case 'running':
      return { was, did: 'already running' };
    case 'paused':
    case 'stopped-with-state':
      progress(was === 'paused' ? 'paused: resuming it' : 'stopped with its state saved: starting it from that state');
      await resumeNodes(context, [record], () => was);
      return { was, did: RESUMED_FROM[was] };
    case 'stopped':
      // Crashed, killed, or every machine gone with a host reboot: the same disk, its files kept, the box it was made from.
      progress(`its machine is not running: booting it from its disk (box ${record.box.name} ${record.box.version})`);
      await nodeUp(context, nodeName, record.box.version);
      return { was, did: `booted from its disk (box ${record.box.name} ${record.box.version})` };
    case 'absent':
      throw new NodeDiskGoneError(nodeName, `its machine and its disk are gone on ${provider}`);
  }
}
