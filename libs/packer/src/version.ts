import { execa } from 'execa';

export interface PackerFeatures {
  version: string;
  /** 1.7+: `packer { required_plugins {} }` and `packer init`; 1.6 rejects the block. */
  requiredPlugins: boolean;
  /** 1.10+: qemu, virtualbox and vagrant are external plugins that `packer init` must install. */
  externalBuilders: boolean;
  /** Packer 1.6's qemu builder runs `qemu-img create -b X` without `-F`, which qemu-img 6+ rejects. */
  needsQemuImgBackingFormatShim: boolean;
}

export function parsePackerVersion(output: string): string {
  const match = /(\d+\.\d+\.\d+)/.exec(output);
  if (!match) throw new Error(`cannot read a version from packer's output: ${JSON.stringify(output.slice(0, 200))}`);
  return match[1]!;
}

export function compareVersions(a: string, b: string): number {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i += 1) {
    const diff = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (diff !== 0) return Math.sign(diff);
  }
  return 0;
}

export function packerFeatures(version: string): PackerFeatures {
  return {
    version,
    requiredPlugins: compareVersions(version, '1.7.0') >= 0,
    externalBuilders: compareVersions(version, '1.10.0') >= 0,
    needsQemuImgBackingFormatShim: compareVersions(version, '1.7.0') < 0,
  };
}

/** Runs `packer version`; undefined when packer is not installed. */
export async function detectPacker(binary = process.env.PACKER_BINARY ?? 'packer'): Promise<PackerFeatures | undefined> {
  try {
    const { stdout } = await execa(binary, ['version'], { timeout: 20_000, env: { CHECKPOINT_DISABLE: '1' } });
    return packerFeatures(parsePackerVersion(stdout));
  } catch (error) {
    if ((error as { code?: string }).code === 'ENOENT') return undefined;
    throw error;
  }
}
