import { describe, expect, it } from 'vitest';
import { loadLayerGraph } from '@boxcar/layers';
import { GUEST_ARTIFACTS, GUEST_BUILDS, layerTemplate, templateFiles } from './template.ts';

// Assertions on the parsed templates (not text snapshots): what a Packer user would check by hand.
const lab = await loadLayerGraph('lab');
const layer = (name: string) => lab.layers.find((l) => l.name === name)!;
type Json = Record<string, any>;
const qemuSource = (template: Json, name: string): Json => template.source.qemu[name];
const provisioners = (template: Json): Json[] => template.build.provisioner;

describe('qemu templates of the lab profile', () => {
  const worker = layerTemplate(lab, layer('worker'), 'qemu') as Json;
  const base = layerTemplate(lab, layer('base'), 'qemu') as Json;

  it('boot the parent disk image, headless, on the accelerator chosen at bake time', () => {
    const source = qemuSource(worker, 'worker');
    expect(source.disk_image).toBe(true);
    expect(source.iso_url).toBe('${var.parent_image}');
    expect(source.iso_checksum).toBe('${var.parent_image_checksum}');
    expect(source.accelerator).toBe('${var.accelerator}');
    expect(source.headless).toBe('${var.headless}');
    expect(source.format).toBe('qcow2');
    expect(source.vm_name).toBe('disk.qcow2');
  });

  it('publish self-contained disks (no backing file chain in the store)', () => {
    expect(qemuSource(worker, 'worker').use_backing_file).toBe(false);
  });

  it("leave the disk as the VM wrote it, trimmed: Packer neither compacts nor compresses (the bake compresses a box's disk)", () => {
    const source = qemuSource(worker, 'worker');
    expect([source.skip_compaction, source.disk_compression]).toEqual([true, false]);
    expect([source.disk_discard, source.disk_detect_zeroes]).toEqual(['unmap', 'unmap']);
  });

  it('restrict the guest network and forward SSH on 127.0.0.1 only, NIC at slot 3', () => {
    const args = qemuSource(worker, 'worker').qemuargs as string[][];
    const netdev = args.find((arg) => arg[0] === '-netdev')![1]!;
    expect(netdev).toContain('restrict=on');
    expect(netdev).toContain('hostfwd=tcp:127.0.0.1:{{ .SSHHostPort }}-:22');
    expect(args.find((arg) => arg[0] === '-device')![1]).toBe('virtio-net-pci,netdev=user.0,addr=0x3');
    expect(qemuSource(worker, 'worker').vnc_bind_address).toBe('127.0.0.1');
  });

  it('log in as the bootstrap user with the bootstrap key', () => {
    expect(qemuSource(worker, 'worker').ssh_username).toBe('vagrant');
    expect(qemuSource(worker, 'worker').ssh_private_key_file).toBe('${var.ssh_private_key_file}');
  });

  it('upload artifacts by sha256 and build outputs by build key before the scripts, run the scripts in order, then remove both', () => {
    const kube = layerTemplate(lab, layer('kube'), 'qemu') as Json;
    const steps = provisioners(kube);
    const kinds = steps.map((step) => Object.keys(step)[0]);
    const artifacts = layer('kube').artifacts.length;
    const buildFiles = layer('kube').builds[0]!.files.length;
    expect(kinds).toEqual(['shell', ...Array(artifacts + buildFiles).fill('file'), 'shell', 'shell', 'shell', 'shell']);
    const etcd = layer('kube').artifacts.findIndex((artifact) => artifact.id === 'deb-etcd-server');
    expect(steps[1 + etcd]!.file.source).toBe('${var.artifact_cache}/sha256/3a9445d4560ad6de1c375756b2a17d97713df44cbd20a658c871fe108af7ef5d/etcd-server_3.4.23-4+b4_amd64.deb');
    // The build's key is in the path: a new build of Kubernetes is a new template, so a new key for the layer.
    const build = layer('kube').builds[0]!;
    expect(build.key).toMatch(/^[0-9a-f]{64}$/);
    expect(steps[1 + artifacts]!.file).toEqual({ source: `\${var.build_cache}/kubernetes-${build.key}/bin/kubelet`, destination: '/tmp/boxcar/builds/kubernetes/bin/kubelet' });
    expect(steps[0]!.shell.inline[0]).toContain('/tmp/boxcar/builds/kubernetes/bin');
    const install = steps[1 + artifacts + buildFiles]!.shell.inline;
    expect(install).toContain(`mv /tmp/boxcar/artifacts/* ${GUEST_ARTIFACTS}/`);
    expect(install).toContain(`rm -rf ${GUEST_BUILDS} && mv /tmp/boxcar/builds ${GUEST_BUILDS}`);
    const scripts = steps[2 + artifacts + buildFiles]!.shell;
    expect(scripts.scripts).toEqual(['scripts/install-debs.sh', 'scripts/etcd-disabled.sh', 'scripts/kubernetes-node.sh'].map((s) => `\${var.profile_dir}/${s}`));
    expect(scripts.environment_vars).toEqual(expect.arrayContaining([`BOXCAR_ARTIFACTS=${GUEST_ARTIFACTS}`, `BOXCAR_BUILDS=${GUEST_BUILDS}`, 'BOXCAR_LAYER=kube', 'BOXCAR_APT_MIRROR=${var.apt_mirror}']));
    expect(scripts.execute_command).toBe('sudo -E env {{ .Vars }} bash {{ .Path }}');
    const cleanup = steps[3 + artifacts + buildFiles]!.shell.inline;
    // The bake VM's host keys are zeroed, not only unlinked (their blocks would ship in the box).
    expect(cleanup[0]).toMatch(/shred --iterations=0 --zero --remove "\$key"/);
    expect(cleanup.slice(1, 3)).toEqual([`rm -rf ${GUEST_ARTIFACTS} ${GUEST_BUILDS} /tmp/boxcar`, 'sync']);
    // Trimming is worth having, not worth failing a bake for (a disk without discard support).
    expect(cleanup[3]).toMatch(/^fstrim --all \|\| echo /);
    // The layer's checks come last (checks.test.ts).
    expect(steps.at(-1)!.shell.inline).toContain("check_disabled 'etcd.service'");
    expect(kube.variable).toHaveProperty('build_cache');
  });

  it('a layer without build outputs neither declares build_cache nor uploads or removes builds', () => {
    const steps = provisioners(worker);
    expect(steps.map((step) => Object.keys(step)[0])).toEqual(['shell', 'shell', 'shell', 'shell', 'shell']);
    expect(worker.variable).not.toHaveProperty('build_cache');
    expect(steps[3]!.shell.inline[1]).toBe(`rm -rf ${GUEST_ARTIFACTS} /tmp/boxcar`);
    expect(steps[2]!.shell.environment_vars).toEqual(expect.arrayContaining(['BOXCAR_ROLE=worker', 'BOXCAR_LAYER=worker']));
    expect(steps[2]!.shell.environment_vars.some((value: string) => value.startsWith('BOXCAR_BUILDS='))).toBe(false);
  });

  it('have no post-processor: the bake packs libvirt boxes itself', () => {
    for (const template of [worker, base, layerTemplate(lab, layer('node'), 'qemu') as Json]) expect(template.build).not.toHaveProperty('post-processor');
  });

  it('the base layer uploads the bootstrap public key and no artifact', () => {
    expect(provisioners(base).filter((step) => 'file' in step)).toEqual([{ file: { source: '${var.bootstrap_public_key}', destination: '/tmp/boxcar/bootstrap.pub' } }]);
  });

  it('emit required_plugins only for Packer 1.7+', () => {
    expect(templateFiles(lab, layer('base'), 'qemu', { requiredPlugins: false })['packer.pkr.json']).toBeUndefined();
    const modern = templateFiles(lab, layer('base'), 'qemu', { requiredPlugins: true })['packer.pkr.json'] as Json;
    expect(Object.keys(modern.packer.required_plugins)).toEqual(['qemu', 'vagrant']);
    expect(modern.packer.required_plugins.qemu.source).toBe('github.com/hashicorp/qemu');
  });

  it('is the same text for the same layer: no path, time or host inside', () => {
    const again = JSON.stringify(layerTemplate(lab, layer('worker'), 'qemu'));
    expect(again).toBe(JSON.stringify(worker));
    expect(again).not.toContain(lab.dir);
    // The checks provisioner (last) names guest paths such as /root/.bash_history.
    const hostSide = JSON.stringify({ ...worker, build: { ...worker.build, provisioner: provisioners(worker).slice(0, -1) } });
    expect(hostSide).not.toMatch(/\/root|\/home|\/work/);
  });
});

describe('virtualbox-ovf templates', () => {
  it('start from the parent OVF, no guest additions, sized by the build variables', () => {
    const template = layerTemplate(lab, layer('worker'), 'virtualbox-ovf') as Json;
    const source = template.source['virtualbox-ovf'].worker;
    expect(source.source_path).toBe('${var.parent_image}');
    expect(source.guest_additions_mode).toBe('disable');
    expect(source.vboxmanage).toEqual([
      ['modifyvm', '{{ .Name }}', '--memory', '${var.memory}'],
      ['modifyvm', '{{ .Name }}', '--cpus', '${var.cpus}'],
    ]);
    expect(template.build.sources).toEqual(['source.virtualbox-ovf.worker']);
  });

  it("box layers end with Packer's vagrant post-processor (OVF + VMDK); other layers have none", () => {
    const worker = layerTemplate(lab, layer('worker'), 'virtualbox-ovf') as Json;
    expect(worker.build['post-processor']).toEqual([{ vagrant: { output: '${var.box_output}', keep_input_artifact: true, compression_level: 6 } }]);
    expect(layerTemplate(lab, layer('node'), 'virtualbox-ovf').build).not.toHaveProperty('post-processor');
  });
});
