import { cpSync, existsSync, mkdtempSync, renameSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { execa } from 'execa';
import { REPO_ROOT, resolveClusterOrThrow } from '@boxcar/model';

export const BOXCAR = join(REPO_ROOT, 'apps', 'cli', 'bin', 'boxcar.mjs');

/**
 * A throwaway world for the lab profile: its own store, cluster state, build dir and a copy of the
 * profiles and of cni/ (so that a test can change a script or a CNI file without touching the checkout). Artifact and base
 * image caches stay the user's (~/.cache/boxcar): they are keyed by content.
 */
export function labWorkspace(prefix: string) {
  const work = mkdtempSync(join(tmpdir(), prefix));
  const profiles = join(work, 'profiles');
  cpSync(join(REPO_ROOT, 'images', 'profiles'), profiles, { recursive: true });
  const cni = join(work, 'cni');
  cpSync(join(REPO_ROOT, 'cni'), cni, { recursive: true });
  const storeDir = join(work, 'store');
  const env = {
    BOXCAR_STORE: pathToFileURL(storeDir).href,
    // The baker's bootstrap key: with the baker (this workspace), never in a store.
    BOXCAR_BOOTSTRAP_KEY: join(work, 'baker', 'bootstrap_ed25519'),
    BOXCAR_STATE_DIR: join(work, 'state'),
    BOXCAR_PROFILES_DIR: profiles,
    BOXCAR_CNI_DIR: cni,
    BOXCAR_BUILD_DIR: join(work, 'build'),
  };
  const cluster = resolveClusterOrThrow({ profile: 'lab' });
  const stackDir = join(env.BOXCAR_STATE_DIR, cluster.name, 'cdktf.out', 'stacks', cluster.name);

  /**
   * The real CLI in a child process, with this workspace's environment (plus `options.env`), inside
   * `options.netns` when given; throws on a non-zero exit.
   */
  async function boxcarWith(options: { env?: Record<string, string>; netns?: string }, ...args: string[]): Promise<{ stdout: string; seconds: number }> {
    const started = Date.now();
    const command = [process.execPath, BOXCAR, ...args];
    const [program, ...programArgs] = options.netns ? ['ip', 'netns', 'exec', options.netns, ...command] : command;
    const result = await execa(program!, programArgs, { env: { ...env, ...options.env }, reject: false, stderr: 'inherit' });
    if (result.exitCode !== 0) throw new Error(`boxcar ${args.join(' ')} exited ${result.exitCode}:\n${result.stdout}`);
    return { stdout: String(result.stdout), seconds: (Date.now() - started) / 1000 };
  }
  const boxcar = (...args: string[]) => boxcarWith({}, ...args);

  /**
   * Store B: what `images publish --to` copies from the workspace's store (A) into another directory,
   * for a bring-up that reads its boxes and layers from the copy only. Idempotent: a second call
   * re-verifies what is there and copies what A has gained since.
   */
  const copiedStore = pathToFileURL(join(work, 'store-b')).href;
  async function publishCopy(): Promise<string> {
    await boxcar('images', 'publish', '--to', copiedStore);
    return copiedStore;
  }

  /**
   * Runs `action` with store A renamed away, so that whatever reads A fails: a bring-up from B proves that
   * B alone carries what the nodes need. A is back afterwards, whatever happened; something that made a
   * new A meanwhile is an error.
   */
  async function withoutStoreA<T>(action: () => Promise<T>): Promise<T> {
    const aside = `${storeDir}.out-of-reach`;
    renameSync(storeDir, aside);
    try {
      return await action();
    } finally {
      if (existsSync(storeDir)) throw new Error(`${storeDir} was made while store A was out of reach: something read or wrote store A`);
      renameSync(aside, storeDir);
    }
  }

  return { work, profiles, cni, env, cluster, stackDir, boxcar, boxcarWith, publishCopy, withoutStoreA };
}

export type LabWorkspace = ReturnType<typeof labWorkspace>;
