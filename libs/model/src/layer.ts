import type { Role } from './types.ts';

// The model of an image layer. Layers are data (images/profiles/<profile>/layers.json); @boxcar/layers
// loads and validates them into these types, @boxcar/packer turns them into templates.

/** The login every box ships (Vagrant's convention): passwordless sudo, the bootstrap key until cluster:up. */
export const BOOTSTRAP_USER = 'vagrant';

export const BUILDERS = ['qemu', 'virtualbox-ovf'] as const;
export type BuilderName = (typeof BUILDERS)[number];

export type BaseSource =
  | { type: 'cloud-image'; artifact: string }
  | { type: 'vagrant-box'; artifact: string }
  | { type: 'debootstrap'; suite: string; mirror: string; variant?: string; include?: string[]; diskSizeMb?: number };

/** Which builder bakes on top of which base source. */
export const BUILDER_OF_SOURCE: Record<BaseSource['type'], BuilderName> = {
  'cloud-image': 'qemu',
  debootstrap: 'qemu',
  'vagrant-box': 'virtualbox-ovf',
};

export interface HashedFile {
  /** Path relative to the profile directory: what keys, templates and logs show. */
  path: string;
  absolute: string;
  sha256: string;
}

/** A pinned download as a layer uses it: uploaded into the guest under its filename. */
export interface LayerArtifact {
  id: string;
  /** null while the lock entry is pending (no digest taken yet): the bake refuses it, validate does not. */
  sha256: string | null;
  filename: string;
  /** Digest of the whole lock entry, so that any change of it changes the layer's key. */
  digest: string;
}

/**
 * What must hold in a layer's guest before it is published (as image-builder's goss checks), run as
 * the layer's last provisioner. Each layer declares its own: checks are not inherited, since a child
 * may change what its parent checked (box layers carry the "sealed image" checks, after cleanup).
 */
export interface LayerChecks {
  /** systemd units that `systemctl is-enabled` must report as enabled. */
  servicesEnabled: string[];
  /** systemd units that must be disabled or masked (not started at boot by their own install). */
  servicesDisabled: string[];
  /** Absolute paths or globs that must match nothing (private keys, shell history, apt lists). */
  absent: string[];
  /** Files that must exist and be empty (an /etc/machine-id made at first boot). */
  empty: string[];
  /** Commands (bash) that must exit 0, by name. */
  commands: { name: string; run: string }[];
}

/**
 * A build stage: a program compiled natively on the bake host (never under an emulated CPU), in a chroot
 * made only of pinned Debian packages and without network, from pinned artifacts and the profile's
 * patches. Keyed by the hash of all of that; its outputs are cached by key and uploaded into the
 * layers that name them.
 */
export interface BuildStage {
  name: string;
  description: string;
  /** Runs inside the build root as root; writes its outputs under $BOXCAR_OUT. */
  script: HashedFile;
  /** More scripts the build script calls (copied to /build/scripts). */
  helpers: HashedFile[];
  /** The patch directory (relative to the profile) and every file in it, applied in name order. */
  patches: { dir: string; entries: HashedFile[] };
  /** The build root: debootstrap minbase of this suite plus these packages; pinned .deb artifacts go on top. */
  root: { suite: string; mirror: string; include: string[] };
  artifacts: LayerArtifact[];
  env: Record<string, string>;
  /** Paths under the output directory the script must leave (checked, hashed, recorded). */
  outputs: string[];
  /** sha256 of the host-side runner (images/build/native-build.sh), which makes the build root. */
  runner: string;
  /** sha256 over everything above and the host-side runner script: the stage's content key. */
  key: string;
}

/** Files of a build stage's output uploaded into a layer's guest, under $BOXCAR_BUILDS/<build>/<file>. */
export interface LayerBuildUse {
  build: string;
  /** The stage's content key: part of the layer's key, so a new build rebuilds the layer. */
  key: string;
  files: string[];
}

export interface Layer {
  name: string;
  description: string;
  parent?: string;
  /** Base sources by builder; only the root layer has them. */
  sources: Partial<Record<BuilderName, BaseSource>>;
  scripts: HashedFile[];
  /** Each upload: its source relative to the profile dir, destination in the guest, the files it holds. */
  files: { src: string; dest: string; isDirectory: boolean; entries: HashedFile[] }[];
  artifacts: LayerArtifact[];
  /** Outputs of build stages the layer installs. */
  builds: LayerBuildUse[];
  env: Record<string, string>;
  /** Checked in the guest after the scripts; a failed check fails the layer. */
  checks: LayerChecks;
  box?: { role: Role; description: string };
}

export interface LayerGraph {
  profile: string;
  /** images/profiles/<profile> */
  dir: string;
  /** Parents before children. */
  layers: Layer[];
  /** The builders the root layer has a source for. */
  builders: BuilderName[];
  /** The profile's build stages, by name order of layers.json. */
  builds: BuildStage[];
}
