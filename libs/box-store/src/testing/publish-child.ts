// Run by the process tests as a separate node process: publishes one box and prints the result.
// With a stage, it says "halted at <stage>" there and waits to be killed mid-publish.
import type { PublishStage } from '../index.ts';
import { openStore } from '../index.ts';

const [storeUrl, boxFile, key, haltAt] = process.argv.slice(2);
if (!storeUrl || !boxFile || !key) {
  process.stderr.write('usage: publish-child.ts <store-url> <box-file> <key> [<stage to halt at>]\n');
  process.exit(2);
}
const store = openStore(storeUrl, {
  lock: { pollMs: 20, timeoutMs: 60_000, onWait: (holder) => process.stderr.write(`waiting for "${holder?.purpose}"\n`) },
  onPublishStage: async (stage: PublishStage) => {
    if (stage !== haltAt) return;
    process.stdout.write(`halted at ${stage}\n`);
    await new Promise(() => setInterval(() => undefined, 60_000));
  },
});
const result = await store.publishBox({
  boxName: 'boxcar/concurrent',
  description: 'concurrency test',
  provider: 'libvirt',
  boxFile,
  key,
  layer: 'base',
  profile: 'lab',
  date: new Date('2026-11-28T12:00:00Z'),
});
process.stdout.write(`${JSON.stringify(result)}\n`);
