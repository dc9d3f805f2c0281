// Run by the reference tests as a separate node process: records one node's reference to a layer.
import { openStore } from '../index.ts';

const [storeUrl, cluster, node, key, version] = process.argv.slice(2);
if (!storeUrl || !cluster || !node || !key || !version) {
  process.stderr.write('usage: ref-child.ts <store-url> <cluster> <node> <layer key> <box version>\n');
  process.exit(2);
}
const store = openStore(storeUrl, { lock: { pollMs: 20, timeoutMs: 60_000 } });
const ref = await store.addRef({ cluster, node, profile: 'lab', layer: 'worker', key, box: { name: 'boxcar/lab-worker', version } });
process.stdout.write(`${JSON.stringify(ref)}\n`);
