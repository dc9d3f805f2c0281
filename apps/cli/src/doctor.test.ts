import { readFileSync } from 'node:fs';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '@boxcar/model';

// `doctor` for real on this machine. The expectations are derived independently of doctor's code:
// packer's own `packer version`, the CPU flags (no vmx/svm: KVM cannot run a guest, as here, where
// /dev/kvm exists but hangs), and whether terraform or tofu are on PATH (they are not, here).
const BOXCAR = `${REPO_ROOT}/apps/cli/bin/boxcar.mjs`;
const cpuCanVirtualize = /\b(vmx|svm)\b/.test(readFileSync('/proc/cpuinfo', 'utf8'));
const onPath = async (binary: string) => (await execa('sh', ['-c', `command -v ${binary}`], { reject: false })).exitCode === 0;

async function doctor(...args: string[]) {
  const result = await execa(process.execPath, [BOXCAR, 'doctor', '--profile', 'lab', ...args], { reject: false });
  return { code: result.exitCode, stdout: String(result.stdout), stderr: String(result.stderr) };
}

describe('boxcar doctor on this machine', async () => {
  const report = await doctor('--json');
  const checks = JSON.parse(report.stdout).checks as { name: string; status: string; version: string; detail: string; neededFor: string[] }[];
  const check = (name: string) => checks.find((c) => c.name === name)!;

  it('reports the installed packer version and the template features that follow from it', async () => {
    const { stdout } = await execa('packer', ['version']);
    expect(check('packer').status).toBe('ok');
    expect(stdout).toContain(`v${check('packer').version}`);
    if (check('packer').version.startsWith('1.6.')) expect(check('packer').detail).toContain('no required_plugins');
  });

  it('decides KVM by trying: TCG when the CPU cannot virtualize', () => {
    expect(check('accelerator').version).toBe(cpuCanVirtualize ? 'KVM' : 'TCG');
    if (!cpuCanVirtualize) expect(check('accelerator').detail).toMatch(/KVM|kvm/);
  });

  it('reports terraform/tofu as missing when neither is on PATH', async () => {
    const present = (await onPath('terraform')) || (await onPath('tofu'));
    expect(check('terraform/tofu').status).toBe(present ? 'ok' : 'missing');
    if (!present) expect(check('terraform/tofu').detail).toContain('not on PATH');
  });

  it('exits 4 when something cluster:up needs is missing, naming it; 0 for the bake alone when its tools are there', async () => {
    const missingForUp = checks.filter((c) => c.status !== 'ok' && c.neededFor.includes('up'));
    expect(report.code).toBe(missingForUp.length ? 4 : 0);
    const table = await doctor();
    for (const c of missingForUp) expect(table.stdout).toContain(c.name);
    const bakeOnly = await doctor('--for', 'bake');
    const missingForBake = checks.filter((c) => c.status !== 'ok' && c.neededFor.includes('bake'));
    expect(bakeOnly.code).toBe(missingForBake.length ? 4 : 0);
  });

  it('rejects a bad --for with a usage error', async () => {
    expect((await doctor('--for', 'everything')).code).toBe(2);
  });
});

describe("doctor takes a provider's prerequisites from the provider's folder", () => {
  it('needs for cluster:up exactly what the chosen provider runs, plus ssh, openssl and terraform', async () => {
    // The lab profile runs on qemu and libvirt; VirtualBox takes the 2016 profile.
    const upNeeds = async (provider: string) => {
      const profile = provider === 'virtualbox' ? 'xenial-2016' : 'lab';
      const result = await execa(process.execPath, [BOXCAR, 'doctor', '--profile', profile, '--provider', provider, '--json'], { reject: false });
      return (JSON.parse(String(result.stdout)).checks as { name: string; neededFor: string[] }[]).filter((c) => c.neededFor.includes('up')).map((c) => c.name).sort();
    };
    const common = ['openssl', 'ssh', 'terraform/tofu'];
    expect(await upNeeds('qemu')).toEqual([...common, 'qemu-img', 'qemu-system-x86_64', 'vde_switch'].sort());
    expect(await upNeeds('libvirt')).toEqual([...common, 'libvirtd', 'qemu-system-x86_64', 'vagrant', 'vagrant-libvirt'].sort());
    expect(await upNeeds('virtualbox')).toEqual([...common, 'VBoxManage', 'vagrant'].sort());
  });
});
