// The name of a cluster snapshot: it names a file under .cluster/<name>/snapshots/ and goes into the
// providers' snapshot commands (a QEMU monitor command line, virsh), so only plain words.

/** What `cluster stop` keeps in each node: not a name a user may take. */
export const RESERVED_SNAPSHOT_NAMES = ['boxcar-stopped'] as const;

const SNAPSHOT_NAME = /^[a-z0-9][a-z0-9._-]{0,62}$/;

/** The name when it is one a snapshot may have; otherwise an error that says what is allowed. */
export function checkSnapshotName(name: string | undefined): string {
  if (name === undefined || name === '') throw new Error('snapshot name: required, e.g. `cluster snapshot save after-first-up`');
  if (!SNAPSHOT_NAME.test(name)) {
    throw new Error(`snapshot name ${JSON.stringify(name)}: 1 to 63 characters, lowercase letters, digits, '.', '_' and '-', starting with a letter or digit`);
  }
  if ((RESERVED_SNAPSHOT_NAMES as readonly string[]).includes(name)) throw new Error(`snapshot name "${name}": reserved for cluster stop/start; choose another`);
  return name;
}
