// The name of a cluster snapshot: it names a file under .cluster/<name>/snapshots/ and goes into the
// providers' snapshot commands (a QEMU monitor command line, virsh), so only plain words.

/** The snapshot `cluster stop` keeps in each node (where the provider keeps it as a snapshot). */
export const STOPPED_SNAPSHOT = 'boxcar-stopped';

/** Names boxcar takes for itself: not names a user may take. */
export const RESERVED_SNAPSHOT_NAMES: readonly string[] = [STOPPED_SNAPSHOT];

const SNAPSHOT_NAME = /^[a-z0-9][a-z0-9._-]{0,62}$/;

/** Whether `name` is a plain word a snapshot may be called (reserved names included): safe in a monitor command line. */
export function isSnapshotWord(name: string): boolean {
  return SNAPSHOT_NAME.test(name);
}

/** The name when it is one a snapshot may have; otherwise an error that says what is allowed. */
export function checkSnapshotName(name: string | undefined): string {
  if (name === undefined || name === '') throw new Error('snapshot name: required, e.g. `cluster snapshot save after-first-up`');
  if (!isSnapshotWord(name)) {
    throw new Error(`snapshot name ${JSON.stringify(name)}: 1 to 63 characters, lowercase letters, digits, '.', '_' and '-', starting with a letter or digit`);
  }
  if (RESERVED_SNAPSHOT_NAMES.includes(name)) throw new Error(`snapshot name "${name}": reserved for cluster stop/start; choose another`);
  return name;
}
