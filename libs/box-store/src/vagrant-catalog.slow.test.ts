// The catalog as real Vagrant reads it: `vagrant box add <metadata.json URL>` from a file:// store and
// from an http server on 127.0.0.1, and Vagrant refusing a box whose sha256 does not match.
import { cp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStore } from './store.ts';
import type { BoxStore } from './types.ts';
import { makeLibvirtBox, makeTempDir } from './testing/fixtures.ts';
import type { StaticServer } from './testing/static-server.ts';
import { serveDirectory } from './testing/static-server.ts';

const NAME = 'boxcar/vagrant-test';
const DAY = new Date('2026-11-28T12:00:00Z');

let dir: string;
let cleanup: () => Promise<void>;
let boxFile: string;

/** Runs vagrant with its own box directory, no update checks, and no proxy for 127.0.0.1. */
function vagrant(home: string, args: string[]) {
  return execa('vagrant', args, {
    reject: false,
    all: true,
    env: {
      VAGRANT_HOME: home,
      VAGRANT_CHECKPOINT_DISABLE: '1',
      VAGRANT_BOX_UPDATE_CHECK_DISABLE: '1',
      NO_PROXY: '127.0.0.1,localhost',
      no_proxy: '127.0.0.1,localhost',
    },
  });
}

async function boxList(home: string): Promise<string> {
  const listed = await vagrant(home, ['box', 'list']);
  expect(listed.exitCode, listed.all).toBe(0);
  return listed.stdout;
}

function publish(store: BoxStore, key: string) {
  return store.publishBox({ boxName: NAME, description: 'vagrant acceptance', provider: 'libvirt', boxFile, key, layer: 'base', profile: 'lab', date: DAY });
}

beforeAll(async () => {
  const found = await execa('vagrant', ['--version'], { reject: false });
  if (found.failed) {
    throw new Error(
      'vagrant is not installed, and this test needs the real one: apt-get install -y --no-install-recommends vagrant vagrant-libvirt',
    );
  }
  ({ dir, cleanup } = await makeTempDir('vagrant'));
  await mkdir(join(dir, 'box'));
  boxFile = await makeLibvirtBox(join(dir, 'box'), join(dir, 'test.box'));
});
afterAll(() => cleanup?.());

describe('vagrant reads the store catalog', () => {
  it('adds a box from a file:// store and lists it as name (libvirt, version)', async () => {
    const store = openStore(join(dir, 'file-store'));
    const { version } = await publish(store, 'k1');
    const home = join(dir, 'home-file');
    const added = await vagrant(home, ['box', 'add', '--provider', 'libvirt', store.catalogUrl(NAME)]);
    expect(added.exitCode, added.all).toBe(0);
    expect(added.stdout).toContain(`Successfully added box '${NAME}' (v${version}) for 'libvirt'!`);
    expect(await boxList(home)).toContain(`${NAME} (libvirt, ${version})`);
  });

  it('adds a box from an http server on 127.0.0.1, with the catalog copied there by copyTo', async () => {
    const servedRoot = join(dir, 'served');
    await mkdir(servedRoot);
    const server: StaticServer = await serveDirectory(servedRoot);
    try {
      const served = openStore(servedRoot, { publicUrl: server.url });
      await openStore(join(dir, 'file-store')).copyTo(served);
      const { version } = await publish(served, 'k2');
      expect(version).toBe('1.20261128.1');
      const home = join(dir, 'home-http');
      const added = await vagrant(home, ['box', 'add', '--provider', 'libvirt', served.catalogUrl(NAME)]);
      expect(added.exitCode, added.all).toBe(0);
      expect(server.requests).toContain(`/boxes/${NAME}/${version}/libvirt.box`);
      expect(await boxList(home)).toContain(`${NAME} (libvirt, ${version})`);

      // The copied (older) version is downloadable over http as well: its URL was rewritten.
      const older = await vagrant(home, ['box', 'add', '--provider', 'libvirt', '--box-version', '1.20261128.0', served.catalogUrl(NAME)]);
      expect(older.exitCode, older.all).toBe(0);
      expect(server.requests).toContain(`/boxes/${NAME}/1.20261128.0/libvirt.box`);
      expect(await boxList(home)).toContain(`${NAME} (libvirt, 1.20261128.0)`);
    } finally {
      await server.close();
    }
  });

  it('adds a box from a store baked into a directory with its public URL, then served from a copy of it', async () => {
    const baked = join(dir, 'baked');
    const servedRoot = join(dir, 'served-copy');
    await mkdir(servedRoot);
    const server = await serveDirectory(servedRoot);
    try {
      const { version, url } = await publish(openStore(baked, { publicUrl: `${server.url}/` }), 'k4');
      expect(url).toBe(`${server.url}/boxes/${NAME}/${version}/libvirt.box`);
      // Served from elsewhere, and the baker's own directory gone: only the public URLs can work.
      await cp(baked, servedRoot, { recursive: true });
      await rm(baked, { recursive: true });
      const catalog = JSON.parse(await readFile(join(servedRoot, 'boxes', NAME, 'metadata.json'), 'utf8')) as { versions: { providers: { url: string }[] }[] };
      expect(catalog.versions.flatMap((v) => v.providers.map((p) => p.url))).toEqual([url]);

      const home = join(dir, 'home-public');
      const added = await vagrant(home, ['box', 'add', '--provider', 'libvirt', `${server.url}/boxes/${NAME}/metadata.json`]);
      expect(added.exitCode, added.all).toBe(0);
      expect(server.requests).toContain(`/boxes/${NAME}/${version}/libvirt.box`);
      expect(await boxList(home)).toContain(`${NAME} (libvirt, ${version})`);
    } finally {
      await server.close();
    }
  });

  it('refuses a box whose content does not match the catalog checksum', async () => {
    const store = openStore(join(dir, 'corrupt-store'));
    const { version } = await publish(store, 'k3');
    const file = join(dir, 'corrupt-store', 'boxes', NAME, version, 'libvirt.box');
    const bytes = await readFile(file);
    bytes[bytes.length - 1] = (bytes[bytes.length - 1] as number) ^ 0xff;
    await writeFile(file, bytes);

    const home = join(dir, 'home-corrupt');
    const added = await vagrant(home, ['box', 'add', '--provider', 'libvirt', store.catalogUrl(NAME)]);
    expect(added.exitCode).not.toBe(0);
    expect(added.all).toMatch(/checksum/i);
    expect(added.all).toMatch(/Expected: .*\n?.*Received: /);
    expect(await boxList(home)).not.toContain(NAME);
  });
});
