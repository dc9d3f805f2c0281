import { shellQuote } from '@boxcar/kit';
import { BOOTSTRAP_USER, type BuilderName, type Layer, type LayerGraph } from '@boxcar/model';
import { checkScript } from './checks.ts';
import type { PackerFeatures } from './version.ts';

// Packer templates as HCL2 JSON (.pkr.json), generated as pure data from a layer. Everything that
// differs between machines (paths, accelerator, keys) is a Packer variable whose value comes from a
// .pkrvars.json file written at bake time, so the template itself is the same on every machine and
// can be part of the layer's content key.

export const GUEST_STAGING = '/tmp/boxcar';
export const GUEST_ARTIFACTS = '/var/cache/boxcar/artifacts';
/** Outputs of build stages, as $BOXCAR_BUILDS/<build>/<file>. */
export const GUEST_BUILDS = '/var/cache/boxcar/builds';

export type PackerJson = Record<string, unknown>;

export interface TemplateFiles {
  /** The layer's build: variables, source, provisioners, post-processors. Part of the content key. */
  'layer.pkr.json': PackerJson;
  /** `packer { required_plugins }` for Packer 1.7+; absent on 1.6, which rejects the block. */
  'packer.pkr.json'?: PackerJson;
}

/** Values of the template's variables for one bake on one machine. */
export interface TemplateVariables {
  parent_image: string;
  parent_image_checksum: string;
  output_dir: string;
  box_output: string;
  artifact_cache: string;
  /** Host cache of build stage outputs (<build>-<key>/<file>); declared only in layers that install build outputs. */
  build_cache?: string;
  profile_dir: string;
  ssh_private_key_file: string;
  serial_log: string;
  accelerator: string;
  headless: boolean;
  memory: number;
  cpus: number;
  /** NoCloud seed (user-data with the bootstrap key) for cloud images; empty otherwise. */
  seed_dir: string;
  /** The bootstrap public key, uploaded to the root layer (scripts that create the login user read it). */
  bootstrap_public_key: string;
  /** Debian/Ubuntu mirror for layers that install from apt inside the guest; empty: none. */
  apt_mirror: string;
}

const VARIABLES: Record<keyof TemplateVariables, { type: string; default?: unknown; description: string }> = {
  parent_image: { type: 'string', description: 'disk (qemu) or OVF (virtualbox) this layer starts from' },
  parent_image_checksum: { type: 'string', default: 'none', description: 'sha256:<hex> of parent_image' },
  output_dir: { type: 'string', description: 'where Packer writes the VM; must not exist' },
  box_output: { type: 'string', default: '', description: 'the Vagrant box file of a box layer' },
  artifact_cache: { type: 'string', description: 'host artifact cache (sha256/<digest>/<file>)' },
  build_cache: { type: 'string', default: '', description: 'host cache of build stage outputs (<build>-<key>/<file>)' },
  profile_dir: { type: 'string', description: 'images/profiles/<profile> of this checkout' },
  ssh_private_key_file: { type: 'string', description: 'the bootstrap private key' },
  serial_log: { type: 'string', default: '/dev/null', description: 'guest serial console log (qemu)' },
  accelerator: { type: 'string', default: 'tcg', description: 'kvm where it really works, else tcg' },
  headless: { type: 'bool', default: true, description: 'no VM window' },
  memory: { type: 'number', default: 1024, description: 'build VM memory (MB)' },
  cpus: { type: 'number', default: 1, description: 'build VM vCPUs' },
  seed_dir: { type: 'string', default: '', description: 'cloud-init NoCloud seed directory' },
  bootstrap_public_key: { type: 'string', description: 'bootstrap public key file' },
  apt_mirror: { type: 'string', default: '', description: 'apt mirror URL for layers that install from apt in the guest' },
};

export const REQUIRED_PLUGINS = {
  qemu: { source: 'github.com/hashicorp/qemu', version: '>= 1.1.0' },
  virtualbox: { source: 'github.com/hashicorp/virtualbox', version: '>= 1.0.5' },
  vagrant: { source: 'github.com/hashicorp/vagrant', version: '>= 1.1.0' },
};

function sourceBlock(layer: Layer, builder: BuilderName, isRootCloudImage: boolean): PackerJson {
  const ssh = {
    ssh_username: BOOTSTRAP_USER,
    ssh_private_key_file: '${var.ssh_private_key_file}',
    ssh_timeout: '20m',
    shutdown_command: 'sudo systemctl poweroff',
    headless: '${var.headless}',
    output_directory: '${var.output_dir}',
  };
  if (builder === 'qemu') {
    return {
      ...ssh,
      iso_url: '${var.parent_image}',
      iso_checksum: '${var.parent_image_checksum}',
      disk_image: true,
      // Every layer's disk is self-contained: the store holds layers independently of each other.
      use_backing_file: false,
      format: 'qcow2',
      disk_interface: 'virtio',
      // No "Converting hard drive" (30-40 s of zlib on one core): the bake compresses only the disks of
      // layers that publish a box, itself (libs/bake box-image.ts). What the guest frees (apt lists, the
      // staged artifacts) is trimmed out of the qcow2 instead (fstrim in the last provisioner).
      skip_compaction: true,
      disk_compression: false,
      disk_discard: 'unmap',
      disk_detect_zeroes: 'unmap',
      vm_name: 'disk.qcow2',
      accelerator: '${var.accelerator}',
      memory: '${var.memory}',
      cpus: '${var.cpus}',
      boot_wait: '1s',
      vnc_bind_address: '127.0.0.1',
      // Replaces Packer's default user network: no route out of the guest (restrict=on), SSH
      // forwarded on the loopback only, NIC at PCI slot 3 so the guest names it enp0s3.
      qemuargs: [
        ['-netdev', 'user,id=user.0,restrict=on,hostfwd=tcp:127.0.0.1:{{ .SSHHostPort }}-:22'],
        ['-device', 'virtio-net-pci,netdev=user.0,addr=0x3'],
        ['-serial', 'file:${var.serial_log}'],
      ],
      ...(isRootCloudImage ? { cd_files: ['${var.seed_dir}/user-data', '${var.seed_dir}/meta-data'], cd_label: 'cidata' } : {}),
    };
  }
  return {
    ...ssh,
    source_path: '${var.parent_image}',
    checksum: '${var.parent_image_checksum}',
    format: 'ovf',
    guest_additions_mode: 'disable',
    vm_name: `boxcar-${layer.name}`,
    vboxmanage: [
      ['modifyvm', '{{ .Name }}', '--memory', '${var.memory}'],
      ['modifyvm', '{{ .Name }}', '--cpus', '${var.cpus}'],
    ],
  };
}

function provisioners(layer: Layer): PackerJson[] {
  const buildFiles = layer.builds.flatMap((use) => use.files.map((file) => ({ use, file })));
  const buildDirs = [...new Set(buildFiles.map(({ use, file }) => `${GUEST_STAGING}/builds/${use.build}/${dirnameOf(file)}`.replace(/\/\.$/, '')))];
  const staging = [`${GUEST_STAGING}/artifacts`, ...layer.files.map((_, index) => `${GUEST_STAGING}/files/${index}`), ...buildDirs];
  const install = [
    `install -d -m 0755 ${GUEST_ARTIFACTS}`,
    ...(layer.artifacts.length ? [`mv ${GUEST_STAGING}/artifacts/* ${GUEST_ARTIFACTS}/`] : []),
    ...(buildFiles.length ? [`rm -rf ${GUEST_BUILDS} && mv ${GUEST_STAGING}/builds ${GUEST_BUILDS}`] : []),
    ...layer.files.map((upload, index) =>
      upload.isDirectory
        ? `install -d -m 0755 ${shellQuote(upload.dest)} && cp -R ${GUEST_STAGING}/files/${index}/. ${shellQuote(upload.dest)}/`
        : `install -D -m 0644 ${GUEST_STAGING}/files/${index}/${shellQuote(basename(upload.src))} ${shellQuote(upload.dest)}`,
    ),
  ];
  const checks = checkScript(layer);
  const env = { ...layer.env, BOXCAR_ARTIFACTS: GUEST_ARTIFACTS, ...(buildFiles.length ? { BOXCAR_BUILDS: GUEST_BUILDS } : {}), BOXCAR_LAYER: layer.name, BOXCAR_APT_MIRROR: '${var.apt_mirror}' };
  return [
    { shell: { inline: [`mkdir -p ${staging.join(' ')}`] } },
    ...(layer.parent === undefined ? [{ file: { source: '${var.bootstrap_public_key}', destination: `${GUEST_STAGING}/bootstrap.pub` } }] : []),
    ...layer.artifacts.map((entry) => ({
      file: {
        source: `\${var.artifact_cache}/sha256/${entry.sha256 ?? 'pending'}/${entry.filename}`,
        destination: `${GUEST_STAGING}/artifacts/${entry.filename}`,
      },
    })),
    // The build's key is in the source path: the template (and so the layer's key) names the exact build.
    ...buildFiles.map(({ use, file }) => ({
      file: { source: `\${var.build_cache}/${use.build}-${use.key}/${file}`, destination: `${GUEST_STAGING}/builds/${use.build}/${file}` },
    })),
    ...layer.files.map((upload, index) => ({
      file: upload.isDirectory
        ? { source: `\${var.profile_dir}/${trimSlash(upload.src)}/`, destination: `${GUEST_STAGING}/files/${index}/` }
        : { source: `\${var.profile_dir}/${upload.src}`, destination: `${GUEST_STAGING}/files/${index}/${basename(upload.src)}` },
    })),
    { shell: { execute_command: 'sudo -E sh -eu {{ .Path }}', inline: install } },
    ...(layer.scripts.length
      ? [
          {
            shell: {
              execute_command: 'sudo -E env {{ .Vars }} bash {{ .Path }}',
              environment_vars: Object.entries(env).map(([key, value]) => `${key}=${value}`),
              scripts: layer.scripts.map((script) => `\${var.profile_dir}/${script.path}`),
              expect_disconnect: false,
            },
          },
        ]
      : []),
    // Downloads are inputs of the bake, not content of the image; the blocks they and the layer's
    // cleanup freed go back to the host (the disk is attached with discard=unmap).
    { shell: { execute_command: 'sudo -E sh -eu {{ .Path }}', inline: [SHRED_HOST_KEYS, `rm -rf ${[GUEST_ARTIFACTS, ...(buildFiles.length ? [GUEST_BUILDS] : []), GUEST_STAGING].join(' ')}`, 'sync', "fstrim --all || echo 'boxcar: this disk takes no trim: the blocks freed stay in the image'"] } },
    // Last: the layer's checks see the image as it is published (checks.ts).
    ...(checks ? [{ shell: { execute_command: 'sudo bash {{ .Path }}', inline: checks.trimEnd().split('\n').map(hclLiteral) } }] : []),
  ];
}

/**
 * The bake VM's SSH host keys leave every layer, overwritten with zeros before they are unlinked:
 * a trim frees only whole qcow2 clusters, so a key merely deleted stays in the disk's bytes and ships
 * in the box (every image of both profiles makes its host keys at boot). sshd keeps the keys it
 * loaded for the provisioners' connection.
 */
const SHRED_HOST_KEYS = 'for key in /etc/ssh/ssh_host_*; do if [ -f "$key" ]; then shred --iterations=0 --zero --remove "$key"; fi; done';

/** Text that HCL must not read as a template: `${` and `%{` escaped as `$${` and `%%{`. */
function hclLiteral(text: string): string {
  // A function: in a replacement string, "$$" would stand for one "$".
  return text.replaceAll('${', () => '$${').replaceAll('%{', () => '%%{');
}

function dirnameOf(path: string): string {
  const slash = path.lastIndexOf('/');
  return slash < 0 ? '.' : path.slice(0, slash);
}

function basename(path: string): string {
  return path.split('/').at(-1)!;
}

function trimSlash(path: string): string {
  return path.replace(/\/+$/, '');
}

export function layerTemplate(graph: LayerGraph, layer: Layer, builder: BuilderName): PackerJson {
  const sourceType = builder === 'qemu' ? 'qemu' : 'virtualbox-ovf';
  const isRootCloudImage = layer.parent === undefined && layer.sources[builder]?.type === 'cloud-image';
  return {
    '//': `boxcar: layer "${layer.name}" of profile "${graph.profile}" for the ${builder} builder. Generated; edit images/profiles/${graph.profile}/layers.json instead.`,
    // build_cache only where it is used: the templates (and so the keys) of layers without builds stay as they were.
    variable: Object.fromEntries(
      Object.entries(VARIABLES).filter(([name]) => name !== 'build_cache' || layer.builds.length > 0).map(([name, spec]) => [name, { type: spec.type, description: spec.description, ...(spec.default !== undefined ? { default: spec.default } : {}) }]),
    ),
    source: { [sourceType]: { [layer.name]: sourceBlock(layer, builder, isRootCloudImage) } },
    build: {
      name: layer.name,
      sources: [`source.${sourceType}.${layer.name}`],
      provisioner: provisioners(layer),
      // A libvirt box is packed by the bake from the compressed disk (box-image.ts); a VirtualBox box
      // (OVF + VMDK) by Packer's post-processor.
      ...(layer.box && builder !== 'qemu'
        ? { 'post-processor': [{ vagrant: { output: '${var.box_output}', keep_input_artifact: true, compression_level: 6 } }] }
        : {}),
    },
  };
}

export function templateFiles(graph: LayerGraph, layer: Layer, builder: BuilderName, features: Pick<PackerFeatures, 'requiredPlugins'>): TemplateFiles {
  const plugins = builder === 'qemu' ? { qemu: REQUIRED_PLUGINS.qemu, vagrant: REQUIRED_PLUGINS.vagrant } : { virtualbox: REQUIRED_PLUGINS.virtualbox, vagrant: REQUIRED_PLUGINS.vagrant };
  return {
    'layer.pkr.json': layerTemplate(graph, layer, builder),
    ...(features.requiredPlugins ? { 'packer.pkr.json': { packer: { required_plugins: plugins } } } : {}),
  };
}
