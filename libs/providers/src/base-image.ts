import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, readFile, stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';

/** The script that makes the lab base image (images/base/ in this repository). */
export const DEBOOTSTRAP_SCRIPT = fileURLToPath(new URL('../../../images/base/debootstrap-image.sh', import.meta.url));

export interface DebootstrapImageOptions {
  /** The qcow2 file to write (replaced atomically when the build succeeds). */
  output: string;
  /** The bootstrap public key baked into ~vagrant/.ssh/authorized_keys. */
  publicKeyFile: string;
  suite?: string;
  mirror?: string;
  /** Virtual disk size, e.g. "4G". */
  diskSize?: string;
  /** Debian packages on top of the script's base list. */
  include?: string[];
  /** Full build log; default: the output path with .build.log instead of .qcow2. */
  logFile?: string;
  onLine?: (line: string) => void;
  signal?: AbortSignal;
  /** XDG_CACHE_HOME for the script's debootstrap cache; default: this process's. */
  cacheHome?: string;
}

export interface DebootstrapImage {
  path: string;
  seconds: number;
  logFile: string;
}

/** The script's command line (pure). */
export function debootstrapImageArgs(options: DebootstrapImageOptions): string[] {
  if (!options.output?.endsWith('.qcow2')) throw new Error(`debootstrap image: output must be a .qcow2 path, got ${JSON.stringify(options.output)}`);
  if (!options.publicKeyFile) throw new Error('debootstrap image: publicKeyFile must name the bootstrap public key file');
  const args = ['--output', resolve(options.output), '--public-key', resolve(options.publicKeyFile)];
  if (options.suite !== undefined) args.push('--suite', options.suite);
  if (options.mirror !== undefined) args.push('--mirror', options.mirror);
  if (options.diskSize !== undefined) args.push('--size', options.diskSize);
  if (options.include?.length) args.push('--include', options.include.join(','));
  return args;
}

/** Runs images/base/debootstrap-image.sh (as root; through `sudo -n` when this process is not root). */
export async function buildDebootstrapImage(options: DebootstrapImageOptions): Promise<DebootstrapImage> {
  const scriptArgs = debootstrapImageArgs(options);
  const output = resolve(options.output);
  const logFile = resolve(options.logFile ?? output.replace(/\.qcow2$/, '.build.log'));
  await mkdir(dirname(logFile), { recursive: true });
  const cacheHome = options.cacheHome ?? process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache');
  const asRoot = process.getuid?.() === 0;
  const [command, args] = asRoot
    ? ['bash', [DEBOOTSTRAP_SCRIPT, ...scriptArgs]]
    : ['sudo', ['-n', 'env', `XDG_CACHE_HOME=${cacheHome}`, 'bash', DEBOOTSTRAP_SCRIPT, ...scriptArgs]];

  const log = createWriteStream(logFile);
  const started = Date.now();
  const tail: string[] = [];
  const child = execa(command, args, {
    all: true,
    reject: false,
    stdin: 'ignore',
    env: { XDG_CACHE_HOME: cacheHome },
    ...(options.signal ? { cancelSignal: options.signal } : {}),
  });
  for await (const line of child.iterable({ from: 'all' })) {
    log.write(`${line}\n`);
    tail.push(line);
    if (tail.length > 20) tail.shift();
    options.onLine?.(line);
  }
  const result = await child;
  await new Promise<void>((done, fail) => log.end((error?: Error | null) => (error ? fail(error) : done())));
  if (result.isCanceled) throw new Error(`debootstrap image ${output}: cancelled; log: ${logFile}`);
  if (result.exitCode !== 0) {
    throw new Error(`debootstrap image ${output}: the script exited with status ${result.exitCode}; log: ${logFile}\n${tail.join('\n')}`);
  }
  return { path: output, seconds: (Date.now() - started) / 1000, logFile };
}

/**
 * A content key for the image: the script itself and every input that changes the result. Pure: the
 * caller reads the script and the key.
 */
export function debootstrapImageKey(inputs: { script: string; publicKey: string; suite?: string; mirror?: string; diskSize?: string; include?: string[] }): string {
  const hash = createHash('sha256');
  for (const part of [inputs.script, inputs.publicKey.trim(), inputs.suite ?? '', inputs.mirror ?? '', inputs.diskSize ?? '', [...(inputs.include ?? [])].sort().join(',')]) {
    hash.update(`${part.length}:${part}\n`);
  }
  return hash.digest('hex').slice(0, 20);
}

export interface EnsureDebootstrapImageOptions extends Omit<DebootstrapImageOptions, 'output'> {
  /** Where built images are kept; default ${XDG_CACHE_HOME:-~/.cache}/boxcar/images. */
  imageCacheDir?: string;
}

/** The cached image for these inputs, built first when it is not there yet. */
export async function ensureDebootstrapImage(options: EnsureDebootstrapImageOptions): Promise<DebootstrapImage & { cached: boolean }> {
  const key = debootstrapImageKey({
    script: await readFile(DEBOOTSTRAP_SCRIPT, 'utf8'),
    publicKey: await readFile(options.publicKeyFile, 'utf8'),
    ...(options.suite === undefined ? {} : { suite: options.suite }),
    ...(options.mirror === undefined ? {} : { mirror: options.mirror }),
    ...(options.diskSize === undefined ? {} : { diskSize: options.diskSize }),
    ...(options.include === undefined ? {} : { include: options.include }),
  });
  const cacheHome = options.cacheHome ?? process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache');
  const dir = options.imageCacheDir ?? join(cacheHome, 'boxcar', 'images');
  const path = join(dir, `debootstrap-${options.suite ?? 'bookworm'}-${key}.qcow2`);
  const logFile = options.logFile ?? path.replace(/\.qcow2$/, '.build.log');
  const started = Date.now();
  if (await isFile(path)) return { path, seconds: (Date.now() - started) / 1000, logFile, cached: true };
  return { ...(await buildDebootstrapImage({ ...options, output: path, logFile })), cached: false };
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}
