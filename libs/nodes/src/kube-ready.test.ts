import { describe, expect, it } from 'vitest';
import type { NodeReadiness } from './kube-api.ts';
import { KubernetesNotReadyError, waitForNodesReady, type Clock, type ReadyWaitOptions } from './kube-ready.ts';

// cluster up's wait until every node is Ready, with an injected clock and probe: what it prints while it
// waits, when it returns, and the error on its deadline (each late node, the end of its kubelet journal).

const NODES = ['cni-master1', 'cni-worker1', 'cni-worker2'];

/** A clock that moves only when the loop sleeps. */
function fakeClock(): Clock & { slept: number[] } {
  let now = 1_000_000;
  const slept: number[] = [];
  return { slept, now: () => now, sleep: async (ms) => void (slept.push(ms), (now += ms)) };
}

const ready = (name: string, version = 'v1.20.2'): NodeReadiness => ({ name, registered: true, ready: true, kubeletVersion: version });
const notReady = (name: string, reason = 'Ready False: KubeletNotReady (container runtime network not ready)'): NodeReadiness => ({ name, registered: true, ready: false, reason });
const unregistered = (name: string): NodeReadiness => ({ name, registered: false, ready: false, reason: 'not registered with the API server' });

/** Twenty journal lines that say which node they are from. */
const journalOf = async (node: string) => Array.from({ length: 20 }, (_, index) => `Dec 01 10:00:${String(index).padStart(2, '0')} ${node} kubelet[812]: line ${index + 1}`).join('\n') + '\n';

function options(probe: ReadyWaitOptions['probe'], extra: Partial<ReadyWaitOptions> = {}) {
  const progress: string[] = [];
  const clock = fakeClock();
  const journals: string[] = [];
  const all: ReadyWaitOptions = {
    cluster: 'lab',
    nodes: NODES,
    probe,
    journal: async (node) => (journals.push(node), journalOf(node)),
    deadlineMs: 60_000,
    intervalMs: 5_000,
    clock,
    onProgress: (message) => progress.push(message),
    ...extra,
  };
  return { all, progress, clock, journals };
}

describe('waitForNodesReady', () => {
  it('returns once every node is Ready, printing which are not yet and the time waited', async () => {
    const answers: NodeReadiness[][] = [
      [ready('cni-master1'), unregistered('cni-worker1'), unregistered('cni-worker2')],
      [ready('cni-master1'), notReady('cni-worker1'), unregistered('cni-worker2')],
      [ready('cni-master1'), ready('cni-worker1'), ready('cni-worker2')],
    ];
    const { all, progress, clock, journals } = options(async () => answers.shift()!);
    expect(await waitForNodesReady(all)).toEqual([ready('cni-master1'), ready('cni-worker1'), ready('cni-worker2')]);
    expect(progress).toEqual([
      'waiting for Kubernetes, 0 s of 60 s: not Ready yet: cni-worker1 (not registered with the API server), cni-worker2 (not registered with the API server)',
      'waiting for Kubernetes, 5 s of 60 s: not Ready yet: cni-worker1 (Ready False: KubeletNotReady (container runtime network not ready)), cni-worker2 (not registered with the API server)',
    ]);
    expect(clock.slept).toEqual([5_000, 5_000]);
    expect(journals).toEqual([]);
  });

  it('returns at once when every node is Ready at the first look', async () => {
    const { all, progress, clock } = options(async () => NODES.map((name) => ready(name)));
    expect((await waitForNodesReady(all)).every((node) => node.ready)).toBe(true);
    expect(progress).toEqual([]);
    expect(clock.slept).toEqual([]);
  });

  it('repeats an unchanged progress line only every progressEveryMs', async () => {
    let probes = 0;
    const { all, progress } = options(async () => (++probes < 10 ? [ready('cni-master1'), ready('cni-worker1'), notReady('cni-worker2')] : NODES.map((name) => ready(name))));
    await waitForNodesReady({ ...all, progressEveryMs: 20_000 });
    expect(progress.map((line) => /Kubernetes, (\d+ s)/.exec(line)![1])).toEqual(['0 s', '20 s', '40 s']);
  });

  it('on the deadline fails naming each node that is not Ready, with the last 20 lines of its kubelet journal', async () => {
    const { all, clock, journals } = options(async () => [ready('cni-master1'), notReady('cni-worker1'), unregistered('cni-worker2')]);
    const error = await waitForNodesReady(all).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(KubernetesNotReadyError);
    const message = (error as Error).message;
    const lines = message.split('\n');
    expect(lines.slice(0, 3)).toEqual([
      "cluster lab: 2 of 3 node(s) not Ready 60 s after terraform's apply (timeouts.kubernetesReadySeconds is 60 s):",
      '  cni-worker1: Ready False: KubeletNotReady (container runtime network not ready)',
      '  cni-worker2: not registered with the API server',
    ]);
    for (const node of ['cni-worker1', 'cni-worker2']) {
      const at = lines.indexOf(`${node}: the last 20 lines of its kubelet journal (journalctl -u kubelet):`);
      expect(at, node).toBeGreaterThan(0);
      expect(lines.slice(at + 1, at + 21)).toEqual((await journalOf(node)).trimEnd().split('\n').map((line) => `    ${line}`));
    }
    // The master is Ready: neither named nor its journal read.
    expect(message).not.toContain('cni-master1');
    expect(journals.sort()).toEqual(['cni-worker1', 'cni-worker2']);
    expect((error as KubernetesNotReadyError).notReady.map((node) => node.name)).toEqual(['cni-worker1', 'cni-worker2']);
    // Never waited past the deadline.
    expect(clock.slept.reduce((sum, ms) => sum + ms, 0)).toBe(60_000);
  });

  it('counts no node Ready while the API cannot be asked, and says so in the error', async () => {
    let probes = 0;
    const { all, progress } = options(async () => {
      if (++probes === 1) return [ready('cni-master1'), notReady('cni-worker1'), ready('cni-worker2')];
      throw new Error('the Kubernetes API at https://127.0.0.1:41234 could not be reached: connect ECONNREFUSED 127.0.0.1:41234');
    }, { deadlineMs: 12_000 });
    const message = await waitForNodesReady(all).then(() => 'resolved', (error: Error) => error.message);
    expect(message.split('\n').slice(0, 5)).toEqual([
      "cluster lab: 3 of 3 node(s) not Ready 12 s after terraform's apply (timeouts.kubernetesReadySeconds is 12 s):",
      "  cni-master1: Ready at the API's last answer",
      '  cni-worker1: Ready False: KubeletNotReady (container runtime network not ready)',
      "  cni-worker2: Ready at the API's last answer",
      '  (at the last try the Kubernetes API at https://127.0.0.1:41234 could not be reached: connect ECONNREFUSED 127.0.0.1:41234; the states above are the last the API gave)',
    ]);
    expect(progress.at(-1)).toBe('waiting for Kubernetes, 5 s of 12 s: the API cannot be reached yet (the Kubernetes API at https://127.0.0.1:41234 could not be reached: connect ECONNREFUSED 127.0.0.1:41234)');
  });

  it('keeps going when a journal cannot be read, saying so in its place', async () => {
    const { all } = options(async () => [ready('cni-master1'), ready('cni-worker1'), notReady('cni-worker2')], {
      deadlineMs: 0,
      journal: async () => {
        throw new Error('ssh 127.0.0.1:40022: "sudo -n journalctl -u kubelet -n 20 --no-pager" did not finish within 30000 ms');
      },
    });
    await expect(waitForNodesReady(all)).rejects.toThrow(
      'cni-worker2: the last 20 lines of its kubelet journal (journalctl -u kubelet):\n    (its journal could not be read: ssh 127.0.0.1:40022: "sudo -n journalctl -u kubelet -n 20 --no-pager" did not finish within 30000 ms)',
    );
  });

  it('once every node is Ready, waits until the cluster takes work (usable), printing what it lacks', async () => {
    const lacks = ['the controller manager has not made the default service account yet', undefined];
    const { all, progress, clock } = options(async () => NODES.map((name) => ready(name)), { usable: async () => lacks.shift() });
    expect(await waitForNodesReady(all)).toEqual(NODES.map((name) => ready(name)));
    expect(progress).toEqual(['waiting for Kubernetes, 0 s of 60 s: every node Ready; the controller manager has not made the default service account yet']);
    expect(clock.slept).toEqual([5_000]);
  });

  it('on the deadline with every node Ready names what the cluster still lacks, and reads no journal', async () => {
    const { all, journals } = options(async () => NODES.map((name) => ready(name)), { deadlineMs: 10_000, usable: async () => 'no default service account' });
    const error = await waitForNodesReady(all).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(KubernetesNotReadyError);
    expect((error as Error).message).toBe("cluster lab: every node is Ready 10 s after terraform's apply, but no default service account (timeouts.kubernetesReadySeconds is 10 s)");
    expect(journals).toEqual([]);
  });

  it('a usable check that cannot be asked counts as the API not answering', async () => {
    let asked = 0;
    const { all, progress } = options(async () => NODES.map((name) => ready(name)), {
      usable: async () => {
        asked += 1;
        if (asked === 1) throw new Error('kubectl on cni-master1 exited 1: Unable to connect to the server');
        return undefined;
      },
    });
    expect(await waitForNodesReady(all)).toEqual(NODES.map((name) => ready(name)));
    expect(progress).toEqual(['waiting for Kubernetes, 0 s of 60 s: the API cannot be reached yet (kubectl on cni-master1 exited 1: Unable to connect to the server)']);
  });
});
