import { chmodSync, existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { loadLayerGraph } from '@boxcar/layers';
import type { LayerChecks } from '@boxcar/model';
import { checkNames, checkScript, failedChecks, namingFailedChecks } from './checks.ts';
import { PackerBuildError } from './runner.ts';
import { GUEST_ARTIFACTS, layerTemplate } from './template.ts';

const NONE: LayerChecks = { servicesEnabled: [], servicesDisabled: [], absent: [], empty: [], commands: [] };
const checks = (some: Partial<LayerChecks>): LayerChecks => ({ ...NONE, ...some });

/**
 * Runs a check script on this machine: paths under a temp dir stand for the guest's, and a
 * `systemctl` on PATH answers `is-enabled` from a table (unit=state).
 */
async function runChecks(layerChecks: LayerChecks, units: Record<string, string> = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'checks-'));
  const bin = join(dir, 'bin');
  mkdirSync(bin);
  const table = Object.entries(units).map(([unit, state]) => `  ${unit}) echo ${state}; exit ${state === 'enabled' ? 0 : 1} ;;`);
  writeFileSync(join(bin, 'systemctl'), ['#!/bin/sh', '[ "$1" = is-enabled ] || exit 2', 'case "$2" in', ...table, '  *) echo "Failed to get unit file state for $2" >&2; exit 1 ;;', 'esac', ''].join('\n'));
  chmodSync(join(bin, 'systemctl'), 0o755);
  const script = join(dir, 'script_1.sh');
  writeFileSync(script, checkScript({ name: 'demo', checks: layerChecks })!);
  const result = await execa('bash', [script], { env: { PATH: `${bin}:${process.env.PATH}` }, reject: false });
  return { ...result, scriptLeft: existsSync(script), lines: result.stdout.split('\n') };
}

describe('layer check scripts', () => {
  const all = checks({
    servicesEnabled: ['ssh.service'],
    servicesDisabled: ['etcd.service'],
    absent: ['/etc/ssh/ssh_host_*', "/home/*/.bash_history"],
    empty: ['/etc/machine-id'],
    commands: [{ name: 'cni-ipvlan', run: "test -x /opt/cni/bin/ipvlan && echo \"${HOME}\" '%{x}'" }],
  });

  it('none when the layer declares no check', () => {
    expect(checkScript({ name: 'x', checks: NONE })).toBeUndefined();
  });

  it('runs in strict mode and is shellcheck-clean', async () => {
    const script = checkScript({ name: 'demo', checks: all })!;
    expect(script).toMatch(/^set -euo pipefail$/m);
    const file = join(mkdtempSync(join(tmpdir(), 'checks-')), 'checks.sh');
    writeFileSync(file, script);
    const result = await execa('shellcheck', ['--severity=info', file], { reject: false });
    expect(`${result.stdout}${result.stderr}`).toBe('');
    expect(result.exitCode).toBe(0);
  });

  it('names each check after what it checks', () => {
    expect(checkNames(all)).toEqual(['enabled:ssh.service', 'disabled:etcd.service', 'absent:/etc/ssh/ssh_host_*', 'absent:/home/*/.bash_history', 'empty:/etc/machine-id', 'cni-ipvlan']);
  });

  it('prints ok for every check that holds, exits 0 and removes itself', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'guest-'));
    writeFileSync(join(dir, 'machine-id'), '');
    writeFileSync(join(dir, 'tool'), '#!/bin/sh\n');
    chmodSync(join(dir, 'tool'), 0o755);
    const result = await runChecks(
      checks({
        servicesEnabled: ['ssh.service'],
        servicesDisabled: ['etcd.service', 'old.service'],
        absent: [`${dir}/ssh_host_*`, `${dir}/missing`],
        empty: [`${dir}/machine-id`],
        commands: [{ name: 'tool', run: `test -x ${dir}/tool` }],
      }),
      { 'ssh.service': 'enabled', 'etcd.service': 'disabled', 'old.service': 'masked' },
    );
    expect(result.exitCode, result.stderr).toBe(0);
    expect(result.lines).toEqual([
      'boxcar-check: ok enabled:ssh.service',
      'boxcar-check: ok disabled:etcd.service',
      'boxcar-check: ok disabled:old.service',
      `boxcar-check: ok absent:${dir}/ssh_host_*`,
      `boxcar-check: ok absent:${dir}/missing`,
      `boxcar-check: ok empty:${dir}/machine-id`,
      'boxcar-check: ok tool',
      'boxcar-check: all 7 passed',
    ]);
    expect(result.scriptLeft).toBe(false);
  });

  it('runs every check, says why each failed, and exits 1', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'guest-'));
    writeFileSync(join(dir, 'ssh_host_ed25519_key'), 'key');
    writeFileSync(join(dir, 'machine-id'), '0123456789abcdef\n');
    const result = await runChecks(
      checks({
        servicesEnabled: ['ssh.service', 'ghost.service'],
        servicesDisabled: ['etcd.service'],
        absent: [`${dir}/ssh_host_*`],
        empty: [`${dir}/machine-id`, `${dir}/nothing`],
        commands: [
          { name: 'fails', run: 'echo first; echo "last words" >&2; exit 3' },
          { name: 'pipe', run: 'false | true' },
        ],
      }),
      { 'ssh.service': 'enabled', 'etcd.service': 'enabled' },
    );
    expect(result.exitCode).toBe(1);
    expect(result.lines).toEqual([
      'boxcar-check: ok enabled:ssh.service',
      'boxcar-check: FAILED enabled:ghost.service: systemctl is-enabled says unknown (no such unit?)',
      'boxcar-check: FAILED disabled:etcd.service: systemctl is-enabled says enabled, expected disabled or masked',
      `boxcar-check: FAILED absent:${dir}/ssh_host_*: present: ${dir}/ssh_host_ed25519_key `,
      `boxcar-check: FAILED empty:${dir}/machine-id: 17 bytes`,
      `boxcar-check: FAILED empty:${dir}/nothing: no such file`,
      'boxcar-check: FAILED fails: exit 3: last words',
      'boxcar-check: FAILED pipe: exit 1: ',
      `boxcar-check: 7 of 8 failed: enabled:ghost.service disabled:etcd.service absent:${dir}/ssh_host_* empty:${dir}/machine-id empty:${dir}/nothing fails pipe`,
    ]);
    expect(result.scriptLeft).toBe(false);
    expect(failedChecks(result.lines).map((check) => check.name)).toEqual([
      'enabled:ghost.service',
      'disabled:etcd.service',
      `absent:${dir}/ssh_host_*`,
      `empty:${dir}/machine-id`,
      `empty:${dir}/nothing`,
      'fails',
      'pipe',
    ]);
  });

  it('reads failed checks from Packer text, with the build prefix, once each', () => {
    expect(
      failedChecks([
        'master.qemu.master: boxcar-check: ok enabled:ssh.service',
        'master.qemu.master: boxcar-check: FAILED absent:/etc/ssh/ssh_host_*: present: /etc/ssh/ssh_host_ed25519_key ',
        '    master.qemu.master: boxcar-check: FAILED absent:/etc/ssh/ssh_host_*: present: /etc/ssh/ssh_host_ed25519_key ',
        'master.qemu.master: boxcar-check: 1 of 2 failed: absent:/etc/ssh/ssh_host_*',
      ]),
    ).toEqual([{ name: 'absent:/etc/ssh/ssh_host_*', why: 'present: /etc/ssh/ssh_host_ed25519_key' }]);
  });
});

describe('the checks provisioner', () => {
  it('is the last provisioner, after cleanup.sh and the staging removal, and HCL reads it literally', async () => {
    const lab = await loadLayerGraph('lab');
    const worker = { ...lab.layers.find((l) => l.name === 'worker')!, checks: checks({ commands: [{ name: 'home', run: 'echo "${HOME}" %{x}' }] }) };
    const steps = (layerTemplate(lab, worker, 'qemu') as { build: { provisioner: Record<string, any>[] } }).build.provisioner;
    const last = steps.at(-1)!.shell;
    expect(steps.at(-2)!.shell.inline[1]).toEqual(`rm -rf ${GUEST_ARTIFACTS} /tmp/boxcar`);
    expect(steps.at(-3)!.shell.scripts.at(-1)).toBe('${var.profile_dir}/scripts/cleanup.sh');
    expect(last.execute_command).toBe('sudo bash {{ .Path }}');
    expect(last.inline.join('\n')).toBe(checkScript(worker)!.trimEnd().replaceAll('${', () => '$${').replaceAll('%{', () => '%%{'));
    expect(last.inline).toContain(`check_command 'home' 'echo "$\${HOME}" %%{x}'`);
  });

  it('is absent from a layer without checks', async () => {
    const lab = await loadLayerGraph('lab');
    const base = lab.layers.find((l) => l.name === 'base')!;
    const steps = (layerTemplate(lab, { ...base, checks: NONE }, 'qemu') as { build: { provisioner: Record<string, any>[] } }).build.provisioner;
    expect(JSON.stringify(steps)).not.toContain('boxcar-check');
  });
});

describe('a packer build that failed in the checks', () => {
  it('is reported with the failed checks named; other failures stay as they are', () => {
    const error = new PackerBuildError('packer build failed at step "Provisioning with shell script: /tmp/packer-shell1" (exit code 1)', 'step', ['a'], '/log', false);
    const lines = ['master.qemu.master: boxcar-check: ok box-role', 'master.qemu.master: boxcar-check: FAILED empty:/etc/machine-id: 33 bytes'];
    const named = namingFailedChecks(error, lines) as PackerBuildError;
    expect(named).toBeInstanceOf(PackerBuildError);
    expect(named.message).toBe('packer build failed at step "Provisioning with shell script: /tmp/packer-shell1" (exit code 1): layer check failed: empty:/etc/machine-id (33 bytes)');
    expect([named.step, named.lastLines, named.logFile, named.interrupted]).toEqual(['step', ['a'], '/log', false]);
    expect(namingFailedChecks(error, ['boxcar-check: ok box-role'])).toBe(error);
    const other = new Error('disk full');
    expect(namingFailedChecks(other, lines)).toBe(other);
  });
});
