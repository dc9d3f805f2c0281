// Publishers as separate node processes, as on a shared drive with several bakers.
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { execa } from 'execa';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { withStoreLock } from './lock.ts';
import { openStore } from './store.ts';
import { sha256Hex } from '@boxcar/kit';
import { makeTempDir, randomFile, snapshotTree } from './testing/fixtures.ts';
import type { PublishBoxResult, PublishStage } from './types.ts';

const packageDir = join(import.meta.dirname, '..');
const child = join(import.meta.dirname, 'testing', 'publish-child.ts');

let dir: string;
let cleanup: () => Promise<void>;
let storeUrl: string;
beforeEach(async () => {
  ({ dir, cleanup } = await makeTempDir('procs'));
  storeUrl = pathToFileURL(join(dir, 'store')).href;
  await mkdir(join(dir, 'src'));
});
afterEach(() => cleanup());

function publishInChild(boxFile: string, key: string, fileSizeLimitKb?: number, haltAt?: PublishStage) {
  const node = [process.execPath, '--import', 'tsx', child, storeUrl, boxFile, key, ...(haltAt ? [haltAt] : [])];
  // ulimit -f makes writes past the limit fail with EFBIG, as on a full disk (node ignores SIGXFSZ).
  return fileSizeLimitKb === undefined
    ? execa(node[0] as string, node.slice(1), { cwd: packageDir })
    : execa('bash', ['-c', `ulimit -f ${fileSizeLimitKb}; exec "$0" "$@"`, ...node], { cwd: packageDir, reject: false });
}

describe('separate publisher processes', () => {
  it('two concurrent publishes each get their own version and leave a valid catalog', async () => {
    const files = await Promise.all([0, 1].map((i) => randomFile(join(dir, 'src', `${i}.box`), 2 * 1024 * 1024)));
    const root = join(dir, 'store');
    await mkdir(root);
    // The test holds the lock until both children wait for it, so that they surely contend when it is released.
    const children = await withStoreLock(root, 'test holding the lock', async () => {
      const started = files.map((f, i) => publishInChild(f, `key-${i}`));
      await Promise.all(
        started.map((c) =>
          Promise.race([
            new Promise<void>((resolve) => c.stderr?.on('data', (d: Buffer) => d.toString().includes('waiting for "test holding the lock"') && resolve())),
            // A child that fails before waiting must not leave this test hanging: its error shows below.
            c.then(() => undefined, () => undefined),
          ]),
        ),
      );
      return started;
    });
    const results = (await Promise.all(children)).map((r) => JSON.parse(r.stdout) as PublishBoxResult);

    expect(results.map((r) => r.version).sort()).toEqual(['1.20261128.0', '1.20261128.1']);
    const store = openStore(storeUrl);
    const catalog = await store.readCatalog('boxcar/concurrent');
    expect(catalog.versions.map((v) => v.version)).toEqual(['1.20261128.0', '1.20261128.1']);
    for (const [i, result] of results.entries()) {
      expect(result.sha256).toBe(sha256Hex(await readFile(files[i] as string)));
      expect(catalog.versions.find((v) => v.version === result.version)?.boxcar.key).toBe(`key-${i}`);
      await store.verifyBox('boxcar/concurrent', result.version, 'libvirt');
    }
  });

  it('a publish that runs out of space leaves the store as it was', async () => {
    const first = JSON.parse((await publishInChild(await randomFile(join(dir, 'src', 'a.box'), 16 * 1024), 'a')).stdout) as PublishBoxResult;
    const before = await snapshotTree(join(dir, 'store'));

    const failed = await publishInChild(await randomFile(join(dir, 'src', 'b.box'), 1024 * 1024), 'b', 256);
    expect(failed.exitCode).not.toBe(0);
    expect(failed.stderr).toMatch(/EFBIG/);
    expect(await snapshotTree(join(dir, 'store'))).toEqual(before);

    const next = JSON.parse((await publishInChild(join(dir, 'src', 'b.box'), 'b')).stdout) as PublishBoxResult;
    expect([first.version, next.version]).toEqual(['1.20261128.0', '1.20261128.1']);
  });

  for (const stage of ['box-copied', 'box-renamed'] as const) {
    it(`sweepIncomplete removes what a publisher killed after ${stage} left, and nothing published`, async () => {
      for (const key of ['a', 'b']) await publishInChild(await randomFile(join(dir, 'src', `${key}.box`), 16 * 1024), key);
      const root = join(dir, 'store');
      const before = await snapshotTree(root);

      const killed = publishInChild(await randomFile(join(dir, 'src', 'c.box'), 16 * 1024), 'c', undefined, stage);
      await new Promise<void>((resolve, reject) => {
        killed.stdout?.on('data', (d: Buffer) => d.toString().includes(`halted at ${stage}`) && resolve());
        killed.then(() => reject(new Error('the publisher ended before it halted')), reject);
      });
      killed.kill('SIGKILL');
      expect((await killed.catch((error: { signal?: string }) => error)).signal).toBe('SIGKILL');
      const leftover = join(root, 'boxes', 'boxcar', 'concurrent', '1.20261128.2');
      const left = Object.keys(await snapshotTree(root)).filter((path) => !(path in before));
      expect(left).toEqual(expect.arrayContaining(['.lock', 'boxes/boxcar/concurrent/1.20261128.2/']));

      const store = openStore(storeUrl);
      expect(await store.sweepIncomplete()).toEqual([leftover]);
      expect(await snapshotTree(root)).toEqual(before);
      expect((await store.readCatalog('boxcar/concurrent')).versions.map((v) => v.boxcar.key)).toEqual(['a', 'b']);
      expect(await store.sweepIncomplete()).toEqual([]);
    });
  }
});
