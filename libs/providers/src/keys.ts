import { chmod, link, mkdir, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { execa } from 'execa';
import { atomicWriteFile } from '@boxcar/kit';

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

  if (!(await exists(path))) {
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
  const current = await readFile(publicKey, 'utf8').catch(() => undefined);
  const [type, body] = derived.split(' ');
  const currentFields = current?.trim().split(' ');
  let publicKeyLine = current?.trim() ?? '';
  if (currentFields?.[0] !== type || currentFields?.[1] !== body) {
    publicKeyLine = `${type} ${body} ${comment}`;
    await atomicWriteFile(publicKey, `${publicKeyLine}\n`, { mode: 0o644 });
  }
  return { privateKey: path, publicKey, publicKeyLine };
}

async function derivePublicKey(privateKey: string): Promise<string> {
  const result = await execa('ssh-keygen', ['-y', '-f', privateKey], { stdin: 'ignore', reject: false });
  if (result.exitCode !== 0) {
    throw new Error(`${privateKey} is not a usable private key (ssh-keygen -y: ${String(result.stderr).trim()}); move it away to have a new one made`);
  }
  return String(result.stdout).trim();
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw error;
  }
}
