// The cluster key replaces the bootstrap key in authorized_keys. A malformed key would lock boxcar out of
// the node, so the key is checked here, before anything is written.

const KEY_TYPES = ['ssh-ed25519', 'ecdsa-sha2-nistp256', 'ecdsa-sha2-nistp384', 'ecdsa-sha2-nistp521', 'ssh-rsa'];

export function authorizedKeysFor(publicKey: string): string {
  const line = publicKey.trim();
  const [type = '', blob = '', ...comment] = line.split(/\s+/);
  const problem = line.includes('\n') ? 'must be one line' : keyProblem(type, blob);
  if (problem) {
    throw new Error(`inputs.clusterPublicKey: ${problem}; expected an OpenSSH public key line such as "ssh-ed25519 AAAA... comment"`);
  }
  return `${[type, blob, ...comment].join(' ')}\n`;
}

function keyProblem(type: string, blob: string): string | undefined {
  if (!KEY_TYPES.includes(type)) return `unknown key type ${JSON.stringify(type)}; allowed: ${KEY_TYPES.join(', ')}`;
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(blob)) return 'the key is not base64';
  // The blob starts with its own type name (RFC 4253 string): a truncated or mismatched key fails here.
  const bytes = Buffer.from(blob, 'base64');
  const length = bytes.length >= 4 ? bytes.readUInt32BE(0) : -1;
  const embedded = length > 0 && length + 4 <= bytes.length ? bytes.subarray(4, 4 + length).toString('latin1') : '';
  if (embedded !== type) return `the key data says ${JSON.stringify(embedded)}, the line says ${JSON.stringify(type)}`;
  return undefined;
}
