import { chmod, link, mkdir, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, isAbsolute, join } from 'node:path';
import { execa } from 'execa';
import { atomicWriteFile, pathExists, unlessMissing } from '@boxcar/kit';

export interface KeyPair {
  /** Path of the private key (mode 600). */
  privateKey: string;
  /** Path of the public key (`<privateKey>.pub`). */
  publicKey: string;
  /** The public key line, e.g. "ssh-ed25519 AAAA… boxcar-bootstrap". */
  publicKeyLine: string;
}

/**
 * An ed25519 key pair at `path` (and `path.pub`), made with ssh-keygen when missing. Idempotent and
 * safe when several processes call it at once: the private key appears by an atomic link (the first
 * one wins), and the public key is always derived from whichever private key is in place.
 */
export async function ensureKeyPair(path: string, comment: string): Promise<KeyPair> {
  if (!path) throw new Error('ensureKeyPair: path must name the private key file');
  if (!/^[\w@.:+-]{1,100}$/.test(comment)) {
    throw new Error(`ensureKeyPair: comment must be 1-100 characters of letters, digits and _@.:+-, got ${JSON.stringify(comment)}`);
  }
  const dir = dirname(path);
  await mkdir(dir, { recursive: true, mode: 0o700 });

  if (!(await pathExists(path))) {
    const scratch = await mkdtemp(join(dir, '.keygen-'));
    try {
      const fresh = join(scratch, 'key');
      await execa('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', comment, '-f', fresh], { stdin: 'ignore' });
      try {
        await link(fresh, path);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      }
    } finally {
      await rm(scratch, { recursive: true, force: true });
    }
  }

  // ssh refuses a private key that others can read.
  if (((await stat(path)).mode & 0o077) !== 0) await chmod(path, 0o600);

  const derived = await derivePublicKey(path);
  const publicKey = `${path}.pub`;
  const current = await unlessMissing(publicKey, readFile(publicKey, 'utf8'), undefined);
  const [type, body] = derived.split(' ');
  const currentFields = current?.trim().split(' ');
  let publicKeyLine = current?.trim() ?? '';
  if (currentFields?.[0] !== type || currentFields?.[1] !== body) {
    publicKeyLine = `${type} ${body} ${comment}`;
    await atomicWriteFile(publicKey, `${publicKeyLine}\n`, { mode: 0o644 });
  }
  return { privateKey: path, publicKey, publicKeyLine };
}

/** The comment of the bake's bootstrap key (what fresh images authorize until a cluster key arrives). */
export const BOOTSTRAP_KEY_COMMENT = 'boxcar-bootstrap-key';

/**
 * Where the baker's bootstrap private key lives: `$BOXCAR_BOOTSTRAP_KEY`, else
 * `${XDG_CONFIG_HOME:-~/.config}/boxcar/bootstrap_ed25519`. Never in a box store: the key opens every
 * freshly booted box with passwordless sudo, and a store is read by everyone who may use its boxes.
 */
export function bootstrapKeyPath(env: NodeJS.ProcessEnv = process.env): string {
  const override = env.BOXCAR_BOOTSTRAP_KEY?.trim();
  if (override) {
    if (!isAbsolute(override)) throw new Error(`BOXCAR_BOOTSTRAP_KEY must be the absolute path of a private key file, got ${JSON.stringify(override)}`);
    return override;
  }
  // A relative XDG_CONFIG_HOME is ignored, as the XDG spec says.
  const xdg = env.XDG_CONFIG_HOME;
  return join(xdg && isAbsolute(xdg) ? xdg : join(homedir(), '.config'), 'boxcar', 'bootstrap_ed25519');
}

/** The baker's bootstrap key pair, made on first use: the bake puts its public half into the images. */
export async function bakerBootstrapKey(env: NodeJS.ProcessEnv = process.env): Promise<KeyPair> {
  return ensureKeyPair(bootstrapKeyPath(env), BOOTSTRAP_KEY_COMMENT);
}

/**
 * The bootstrap key pair where it already is, or undefined. Never made here: a new key would open no
 * box, so a machine that did not bake the boxes must be given the baker's key (a copy at
 * `bootstrapKeyPath()`) to log in to nodes that cannot get the cluster key at first boot.
 */
export async function existingBootstrapKey(env: NodeJS.ProcessEnv = process.env): Promise<KeyPair | undefined> {
  const path = bootstrapKeyPath(env);
  return (await pathExists(path)) ? ensureKeyPair(path, BOOTSTRAP_KEY_COMMENT) : undefined;
}

async function derivePublicKey(privateKey: string): Promise<string> {
  const result = await execa('ssh-keygen', ['-y', '-f', privateKey], { stdin: 'ignore', reject: false });
  if (result.exitCode !== 0) {
    throw new Error(`${privateKey} is not a usable private key (ssh-keygen -y: ${String(result.stderr).trim()}); move it away to have a new one made`);
  }
  return String(result.stdout).trim();
}

