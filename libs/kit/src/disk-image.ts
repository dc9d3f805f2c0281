import { open } from 'node:fs/promises';
import { basename } from 'node:path';

// What a disk image from somewhere else would make a hypervisor open beside it. A qcow2 header can name
// a backing file or an external data file, a VMDK descriptor a parent or extents in other files: qemu,
// libvirt and VirtualBox open those paths on the host, and the guest then reads (or writes) that host
// file as its disk. Nothing in a store is signed, so an image is read for such names before any VM
// sees it. The headers are parsed here, without qemu-img, which itself opens what the image names.

const QCOW2_MAGIC = 0x514649fb;
/** qcow2 incompatible feature bit 2: the guest data lives in an external file. */
const QCOW2_INCOMPAT_DATA_FILE = 1n << 2n;
const QCOW2_EXT_DATA_FILE = 0x44415441;
const VMDK_SPARSE_MAGIC = 0x564d444b; // 'KDMV' read little-endian
const SECTOR = 512;
const MAX_HEADER = 64 * 1024;

async function readAt(path: string, position: number, length: number): Promise<Buffer> {
  const handle = await open(path, 'r');
  try {
    const buffer = Buffer.alloc(length);
    const { bytesRead } = await handle.read(buffer, 0, length, position);
    return buffer.subarray(0, bytesRead);
  } finally {
    await handle.close();
  }
}

async function qcow2References(path: string, header: Buffer): Promise<string[]> {
  const found: string[] = [];
  const version = header.readUInt32BE(4);
  const backingOffset = Number(header.readBigUInt64BE(8));
  const backingSize = header.readUInt32BE(16);
  if (backingOffset !== 0 && backingSize !== 0) {
    const name = (await readAt(path, backingOffset, Math.min(backingSize, 4096))).toString('utf8');
    found.push(`a backing file: ${JSON.stringify(name)}`);
  }
  if (version >= 3 && header.length >= 104) {
    if ((header.readBigUInt64BE(72) & QCOW2_INCOMPAT_DATA_FILE) !== 0n) found.push('an external data file (incompatible feature bit "data file")');
    // Header extensions follow the header: type, length, data padded to 8 bytes; type 0 ends them.
    let offset = header.readUInt32BE(100);
    while (offset + 8 <= header.length) {
      const type = header.readUInt32BE(offset);
      const length = header.readUInt32BE(offset + 4);
      if (type === 0) break;
      if (type === QCOW2_EXT_DATA_FILE) found.push(`an external data file: ${JSON.stringify(header.subarray(offset + 8, offset + 8 + length).toString('utf8'))}`);
      offset += 8 + Math.ceil(length / 8) * 8;
    }
  }
  return found;
}

/** A VMDK descriptor names its parent and its extents; only extents in the image itself are safe. */
function vmdkDescriptorReferences(descriptor: string, self: string | undefined): string[] {
  const found: string[] = [];
  const parent = /^\s*parentFileNameHint\s*=\s*"([^"]*)"/m.exec(descriptor);
  if (parent) found.push(`a parent disk: ${JSON.stringify(parent[1])}`);
  const createType = /^\s*createType\s*=\s*"([^"]*)"/m.exec(descriptor)?.[1];
  const inItself = self !== undefined && (createType === 'monolithicSparse' || createType === 'streamOptimized');
  for (const extent of descriptor.matchAll(/^\s*(?:RW|RDONLY|NOACCESS)\s+\d+\s+\w+\s+"([^"]*)"/gm)) {
    if (!inItself) found.push(`an extent in another file: ${JSON.stringify(extent[1])}`);
  }
  return found;
}

/**
 * The host files a disk image would have a hypervisor open, described for an error message: empty for
 * a self-contained image (a qcow2 without backing or data file, a monolithic or stream-optimized VMDK,
 * raw, VDI). Reads only the image's own header.
 */
export async function diskImageHostReferences(path: string): Promise<string[]> {
  const header = await readAt(path, 0, MAX_HEADER);
  if (header.length >= 72 && header.readUInt32BE(0) === QCOW2_MAGIC) return qcow2References(path, header);
  if (header.length >= 44 && header.readUInt32LE(0) === VMDK_SPARSE_MAGIC) {
    const descriptorOffset = Number(header.readBigUInt64LE(28)) * SECTOR;
    const descriptorSize = Math.min(Number(header.readBigUInt64LE(36)) * SECTOR, MAX_HEADER);
    if (descriptorOffset === 0 || descriptorSize === 0) return [];
    return vmdkDescriptorReferences((await readAt(path, descriptorOffset, descriptorSize)).toString('latin1').replace(/\0+$/, ''), basename(path));
  }
  // A VMDK text descriptor is nothing but references to other files.
  if (header.subarray(0, 21).toString('latin1') === '# Disk DescriptorFile') return vmdkDescriptorReferences(header.toString('latin1'), undefined).concat(['a VMDK text descriptor (its disk is in other files)']);
  return [];
}
