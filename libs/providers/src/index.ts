// The public API of @boxcar/providers; what is not named here is private to the library.

// Every provider behind one interface (qemu/, vagrant/), by name.
export { nodeProvider, providerNames } from './registry.ts';
export { aptInstall, forwardsKubernetesApi, HOST_KEY_LINE, NodeBootError, type BootedNode, type BoxRef, type NodeBoot, type NodeProvider, type Prerequisite, type ProviderContext } from './provider.ts';
// Snapshots and stop/start with the running state kept, per node (libs/nodes does it cluster-wide).
export { type NodeRunState, type NodeSnapshots, type SnapshotInfo } from './provider.ts';

// The accelerator, chosen by booting a probe guest (KVM only where it really runs).
export { detectAccelerator } from './accel.ts';

// The lab profile's base image, made with debootstrap on the host.
export { DEBOOTSTRAP_SCRIPT, ensureDebootstrapImage } from './base-image.ts';

// SSH to the nodes, and the key pairs boxcar makes.
export { closeSshMaster, HostKeyMismatchError, sshArgs, sshCopy, sshRun, waitForSsh, type SshTarget } from './ssh.ts';
export { bakerBootstrapKey, BOOTSTRAP_KEY_COMMENT, bootstrapKeyPath, ensureKeyPair, existingBootstrapKey, type KeyPair } from './keys.ts';

// Whole-cluster qemu runs for the benchmark's raw-boot reference (not a provider step).
export { qemuDown, qemuUp } from './qemu/provider.ts';
