import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStore } from '@boxcar/box-store';
import { REPO_ROOT } from '@boxcar/model';

// `images publish --public-url` and the config's boxStorePublicUrl, `images refs` and what `images gc`
// says about referenced layers, through the installed entry point on stores in a temp dir.
const BOXCAR = `${REPO_ROOT}/apps/cli/bin/boxcar.mjs`;
const NAME = 'boxcar/lab-worker';

let dir: string;
let local: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'boxcar-cli-images-'));
  local = join(dir, 'local');
  const store = openStore(local);
  await mkdir(join(dir, 'src', 'layer'), { recursive: true });
  await writeFile(join(dir, 'src', 'layer', 'disk.qcow2'), 'disk k1');
  await store.publishLayer('lab', 'worker', 'k1', join(dir, 'src', 'layer'), {});
  await writeFile(join(dir, 'src', 'a.box'), 'box k1');
  const date = new Date('2026-11-28T12:00:00Z');
  await store.publishBox({ boxName: NAME, description: 'worker', provider: 'libvirt', boxFile: join(dir, 'src', 'a.box'), key: 'k1', layer: 'worker', profile: 'lab', date });
  await writeFile(join(dir, 'src', 'layer', 'disk.qcow2'), 'disk k2');
  await store.publishLayer('lab', 'worker', 'k2', join(dir, 'src', 'layer'), {});
  await writeFile(join(dir, 'src', 'b.box'), 'box k2');
  await store.publishBox({ boxName: NAME, description: 'worker', provider: 'libvirt', boxFile: join(dir, 'src', 'b.box'), key: 'k2', layer: 'worker', profile: 'lab', date: new Date('2026-11-30T12:00:00Z') });
});
afterAll(() => rm(dir, { recursive: true, force: true }));

async function images(...args: string[]) {
  // Nothing of the caller's boxcar settings may reach the CLI.
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('BOXCAR_')));
  const result = await execa(process.execPath, [BOXCAR, 'images', ...args], { cwd: dir, env, extendEnv: false, reject: false });
  return { code: result.exitCode, stdout: String(result.stdout), stderr: String(result.stderr) };
}

const boxUrls = async (root: string): Promise<string[]> =>
  (JSON.parse(await readFile(join(root, 'boxes', NAME, 'metadata.json'), 'utf8')) as { versions: { providers: { url: string }[] }[] }).versions.flatMap((v) => v.providers.map((p) => p.url));

describe('boxcar images publish --public-url', () => {
  it('writes catalogs whose box URLs are under the public URL, from the flag or the config', async () => {
    const team = join(dir, 'team');
    const flag = await images('publish', '--store', local, '--to', team, '--public-url', 'https://boxes.lab.example/');
    expect(flag, flag.stderr).toMatchObject({ code: 0 });
    expect(flag.stdout).toContain(`vagrant box add https://boxes.lab.example/boxes/${NAME}/metadata.json`);
    // The layers the versions were baked from travel with them (a qemu node boots a layer's disk), verified.
    expect(flag.stdout).toContain('layers: copied 2, already there 0 (verified)');
    expect(await readFile(join(team, 'layers', 'lab', 'worker', 'k2', 'disk.qcow2'), 'utf8')).toBe('disk k2');
    expect((await images('publish', '--store', local, '--to', team)).stdout).toContain('layers: copied 0, already there 2 (verified)');
    expect(await boxUrls(team)).toEqual([
      `https://boxes.lab.example/boxes/${NAME}/1.20261128.0/libvirt.box`,
      `https://boxes.lab.example/boxes/${NAME}/1.20261130.0/libvirt.box`,
    ]);

    const config = join(dir, 'served.config.json');
    await writeFile(config, JSON.stringify({ profile: 'lab', boxStorePublicUrl: 'http://10.0.0.5:8080/store' }));
    const fromConfig = await images('publish', '--store', local, '--to', join(dir, 'team2'), '--config', config);
    expect(fromConfig, fromConfig.stderr).toMatchObject({ code: 0 });
    expect(await boxUrls(join(dir, 'team2'))).toEqual([
      `http://10.0.0.5:8080/store/boxes/${NAME}/1.20261128.0/libvirt.box`,
      `http://10.0.0.5:8080/store/boxes/${NAME}/1.20261130.0/libvirt.box`,
    ]);
  });

  it('refuses a config whose boxStorePublicUrl is no URL, naming the field', async () => {
    const config = join(dir, 'bad.config.json');
    await writeFile(config, JSON.stringify({ boxStorePublicUrl: 'boxes.lab.example' }));
    const result = await images('publish', '--store', local, '--to', join(dir, 'team3'), '--config', config);
    expect(result.code).toBe(3);
    expect(result.stderr).toMatch(/boxStorePublicUrl.*must be a file:\/\/, http:\/\/ or https:\/\/ URL/);
  });
});

describe('boxcar images refs and gc', () => {
  it('gc keeps what a cluster runs on and says so; refs lists and drops the references', async () => {
    const store = openStore(local);
    await store.addRef({ cluster: 'lab', node: 'cni-worker1', profile: 'lab', layer: 'worker', key: 'k1', box: { name: NAME, version: '1.20261128.0' } });
    await store.addRef({ cluster: 'lab', node: 'cni-worker2', profile: 'lab', layer: 'worker', key: 'k1', box: { name: NAME, version: '1.20261128.0' } });

    const listed = await images('refs', '--store', local);
    expect(listed.code, listed.stderr).toBe(0);
    expect(listed.stdout).toMatch(/cluster +node +box/);
    expect(listed.stdout).toMatch(/lab +cni-worker1 +boxcar\/lab-worker 1\.20261128\.0 +lab\/worker k1/);

    const gc = await images('gc', '--store', local, '--keep', '1');
    expect(gc.code, gc.stderr).toBe(0);
    expect(gc.stdout).toContain('removed 0 box version(s), 0 layer(s)');
    expect(gc.stdout).toContain(`kept 1.20261128.0 of ${NAME}: used by cluster lab (cni-worker1, cni-worker2)`);

    expect(await images('refs', '--store', local, '--host', 'x')).toMatchObject({ code: 2, stderr: expect.stringContaining('--host goes with --drop <cluster>') });
    const dropped = await images('refs', '--store', local, '--drop', 'lab');
    expect(dropped.stdout).toBe(`dropped 2 reference(s) of cluster lab\n  cni-worker1: ${NAME} 1.20261128.0\n  cni-worker2: ${NAME} 1.20261128.0`);
    const after = await images('gc', '--store', local, '--keep', '1');
    expect(after.stdout).toBe(`removed 1 box version(s), 1 layer(s)\n  ${NAME} 1.20261128.0\n  layer lab/worker k1`);

    const help = await images('refs', '--help');
    expect(help.stdout).toContain('images refs --drop <cluster>');
  });
});
