import { chmod, mkdtemp, readdir, readFile, rm, stat, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { bakerBootstrapKey, bootstrapKeyPath, ensureKeyPair, existingBootstrapKey } from './keys.ts';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'boxcar-keys-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function derived(privateKey: string): Promise<string> {
  const { stdout } = await execa('ssh-keygen', ['-y', '-f', privateKey]);
  return stdout.trim();
}

describe('ensureKeyPair', () => {
  it('makes an ed25519 pair with a private key of mode 600 in a fresh directory', async () => {
    const path = join(dir, 'deep', 'bootstrap_ed25519');
    const pair = await ensureKeyPair(path, 'boxcar-bootstrap');
    expect(pair.privateKey).toBe(path);
    expect(pair.publicKey).toBe(`${path}.pub`);
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    expect(pair.publicKeyLine).toMatch(/^ssh-ed25519 [A-Za-z0-9+/=]+ boxcar-bootstrap$/);
    expect((await readFile(pair.publicKey, 'utf8')).trim()).toBe(pair.publicKeyLine);
    expect(pair.publicKeyLine.startsWith(await derived(path))).toBe(true);
    expect(await readdir(join(dir, 'deep'))).toEqual(['bootstrap_ed25519', 'bootstrap_ed25519.pub']);
  });

  it('is idempotent: a second call keeps the same key', async () => {
    const path = join(dir, 'key');
    const first = await ensureKeyPair(path, 'c');
    const privateBefore = await readFile(path, 'utf8');
    const second = await ensureKeyPair(path, 'c');
    expect(second).toEqual(first);
    expect(await readFile(path, 'utf8')).toBe(privateBefore);
  });

  it('gives one consistent pair when several callers race', async () => {
    const path = join(dir, 'key');
    const pairs = await Promise.all(Array.from({ length: 4 }, () => ensureKeyPair(path, 'race')));
    expect(new Set(pairs.map((pair) => pair.publicKeyLine)).size).toBe(1);
    expect(pairs[0]!.publicKeyLine.startsWith(await derived(path))).toBe(true);
  });

  it('repairs a lost public key and a private key others can read', async () => {
    const path = join(dir, 'key');
    const pair = await ensureKeyPair(path, 'repair');
    await unlink(pair.publicKey);
    await chmod(path, 0o644);
    const again = await ensureKeyPair(path, 'repair');
    expect(again.publicKeyLine).toBe(pair.publicKeyLine);
    expect((await stat(path)).mode & 0o777).toBe(0o600);
  });

  it('replaces a public key that does not belong to the private key', async () => {
    const path = join(dir, 'key');
    const pair = await ensureKeyPair(path, 'mine');
    const other = await ensureKeyPair(join(dir, 'other'), 'other');
    await writeFile(pair.publicKey, `${other.publicKeyLine}\n`);
    expect((await ensureKeyPair(path, 'mine')).publicKeyLine).toBe(pair.publicKeyLine);
  });

  it('refuses a file that is not a private key, and a comment ssh would mangle', async () => {
    const path = join(dir, 'key');
    await writeFile(path, 'not a key\n', { mode: 0o600 });
    await expect(ensureKeyPair(path, 'x')).rejects.toThrow(/is not a usable private key .*move it away/);
    await expect(ensureKeyPair(join(dir, 'k2'), 'two words')).rejects.toThrow(/comment must be 1-100 characters/);
  });
});

describe("the baker's bootstrap key", () => {
  it('lives under XDG_CONFIG_HOME (else ~/.config), or where BOXCAR_BOOTSTRAP_KEY says, which must be absolute', () => {
    expect(bootstrapKeyPath({ XDG_CONFIG_HOME: '/home/baker/.config' })).toBe('/home/baker/.config/boxcar/bootstrap_ed25519');
    // A relative XDG_CONFIG_HOME is ignored, as the XDG spec says.
    expect(bootstrapKeyPath({ XDG_CONFIG_HOME: 'rel', HOME: process.env.HOME })).toMatch(/\/\.config\/boxcar\/bootstrap_ed25519$/);
    expect(bootstrapKeyPath({ BOXCAR_BOOTSTRAP_KEY: '/srv/keys/bake_ed25519', XDG_CONFIG_HOME: '/x' })).toBe('/srv/keys/bake_ed25519');
    expect(() => bootstrapKeyPath({ BOXCAR_BOOTSTRAP_KEY: 'keys/bake' })).toThrow('BOXCAR_BOOTSTRAP_KEY must be the absolute path of a private key file, got "keys/bake"');
  });

  it('is made by the baker on first use (mode 600, directory 700) and only found, never made, for a login', async () => {
    const env = { XDG_CONFIG_HOME: join(dir, 'config') };
    expect(await existingBootstrapKey(env)).toBeUndefined();
    await expect(stat(join(dir, 'config'))).rejects.toThrow(/ENOENT/);
    const made = await bakerBootstrapKey(env);
    expect(made.privateKey).toBe(join(dir, 'config', 'boxcar', 'bootstrap_ed25519'));
    expect(made.publicKeyLine).toMatch(/^ssh-ed25519 \S+ boxcar-bootstrap-key$/);
    expect((await stat(made.privateKey)).mode & 0o777).toBe(0o600);
    expect((await stat(join(dir, 'config', 'boxcar'))).mode & 0o777).toBe(0o700);
    expect(await existingBootstrapKey(env)).toEqual(made);
    expect(await bakerBootstrapKey(env)).toEqual(made);
  });
});
