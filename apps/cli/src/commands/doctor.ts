import { statfsSync, mkdirSync } from 'node:fs';
import { execa } from 'execa';
import type { Cluster } from '@boxcar/model';
import { detectPacker } from '@boxcar/packer';
import { aptInstall, detectAccelerator, nodeProvider, providerNames, type Prerequisite } from '@boxcar/providers';
import { defaultStoreUrl } from '@boxcar/box-store';
import { defaultCacheDir } from '@boxcar/artifacts';
import { fileURLToPath } from 'node:url';
import { EXIT, table, type Command, type Values } from '../cli-kit.ts';
import { CLUSTER_OPTIONS, clusterFromOptions } from '../cluster-options.ts';

type Status = 'ok' | 'missing' | 'unusable';
type Scope = 'bake' | 'up';

export interface Check {
  name: string;
  status: Status;
  version: string;
  detail: string;
  howToGet: string;
  /** The scopes for which this check must pass, given the chosen profile and provider. */
  neededFor: Scope[];
}

const APT = aptInstall;

async function probe(binary: string, args: string[]): Promise<{ found: boolean; output: string; failed: boolean }> {
  try {
    const result = await execa(binary, args, { timeout: 30_000, reject: false, all: true });
    if ((result as { code?: string }).code === 'ENOENT' || result.exitCode === undefined) return { found: false, output: '', failed: true };
    return { found: true, output: result.all ?? '', failed: result.exitCode !== 0 };
  } catch {
    return { found: false, output: '', failed: true };
  }
}

function firstVersion(output: string): string {
  return /(\d+\.\d+(\.\d+)?[\w.+~-]*)/.exec(output)?.[1] ?? '?';
}

async function simpleCheck(name: string, binary: string, args: string[], neededFor: Scope[], howToGet: string, detail = ''): Promise<Check> {
  const result = await probe(binary, args);
  if (!result.found) return { name, status: 'missing', version: '', detail, howToGet, neededFor };
  return { name, status: result.failed ? 'unusable' : 'ok', version: firstVersion(result.output), detail: result.failed ? result.output.split('\n')[0] ?? '' : detail, howToGet, neededFor };
}

function freeSpace(label: string, path: string): Check {
  try {
    mkdirSync(path, { recursive: true });
    const stats = statfsSync(path);
    const gib = (stats.bavail * stats.bsize) / 2 ** 30;
    const status: Status = gib < 10 ? 'unusable' : 'ok';
    return { name: label, status, version: `${gib.toFixed(1)} GiB free`, detail: `${path}${status === 'ok' ? '' : ' (a bake needs about 10 GiB)'}`, howToGet: 'free disk space or point BOXCAR_STORE / XDG_CACHE_HOME elsewhere', neededFor: ['bake'] };
  } catch (error) {
    return { name: label, status: 'unusable', version: '', detail: `${path}: ${(error as Error).message}`, howToGet: 'make the directory writable', neededFor: ['bake'] };
  }
}

export async function runChecks(cluster: Cluster): Promise<Check[]> {
  const { provider } = cluster;
  const bakeSource = cluster.profile.name === 'lab' ? 'debootstrap' : 'cloud-image';
  const up = (condition: boolean): Scope[] => (condition ? ['up'] : []);
  /** Whether the chosen provider runs this program (its folder says so). */
  const providerRuns = (name: string) => nodeProvider(provider).prerequisites.some((prerequisite) => prerequisite.name === name);

  const checks: Check[] = [];
  const packer = await detectPacker().catch((error: Error) => error);
  if (packer instanceof Error) checks.push({ name: 'packer', status: 'unusable', version: '', detail: packer.message, howToGet: APT('packer'), neededFor: ['bake'] });
  else if (!packer) checks.push({ name: 'packer', status: 'missing', version: '', detail: '', howToGet: `${APT('packer')}; or a release from HashiCorp`, neededFor: ['bake'] });
  else {
    const features = packer.requiredPlugins
      ? `required_plugins + packer init${packer.externalBuilders ? ' (qemu/virtualbox/vagrant are plugins)' : ''}`
      : 'built-in builders, no required_plugins; qemu-img -F shim';
    checks.push({ name: 'packer', status: 'ok', version: packer.version, detail: features, howToGet: APT('packer'), neededFor: ['bake'] });
  }
  // The bake runs its layers under qemu whatever the cluster's provider.
  checks.push(await simpleCheck('qemu-system-x86_64', 'qemu-system-x86_64', ['--version'], ['bake', ...up(providerRuns('qemu-system-x86_64'))], APT('qemu-system-x86')));
  checks.push(await simpleCheck('qemu-img', 'qemu-img', ['--version'], ['bake', ...up(providerRuns('qemu-img'))], APT('qemu-utils')));
  checks.push(await accelCheck());
  checks.push(await simpleCheck('debootstrap', 'debootstrap', ['--version'], bakeSource === 'debootstrap' ? ['bake'] : [], APT('debootstrap'), 'builds the lab base image (as root)'));
  checks.push(rootCheck(bakeSource === 'debootstrap'));
  // What each provider runs on the host, from the provider's own folder: needed for up on the chosen one.
  const listed = new Set(checks.map((check) => check.name));
  for (const name of providerNames()) {
    for (const prerequisite of nodeProvider(name).prerequisites) {
      if (listed.has(prerequisite.name)) continue;
      listed.add(prerequisite.name);
      checks.push(await prerequisiteCheck(prerequisite, up(providerRuns(prerequisite.name))));
    }
  }
  checks.push(await terraformCheck());
  checks.push(await simpleCheck('ssh', 'ssh', ['-V'], ['up'], APT('openssh-client')));
  checks.push(await simpleCheck('openssl', 'openssl', ['version'], ['up'], APT('openssl'), 'cluster CA and certificates'));
  checks.push(await simpleCheck('shellcheck', 'shellcheck', ['--version'], [], APT('shellcheck'), 'lints the VM scripts (tests)'));
  checks.push(freeSpace('disk: box store', storePath()));
  checks.push(freeSpace('disk: artifact cache', defaultCacheDir()));
  return checks;
}

function storePath(): string {
  const url = defaultStoreUrl();
  return url.startsWith('file://') ? fileURLToPath(url) : '/';
}

function rootCheck(needed: boolean): Check {
  const root = process.getuid?.() === 0;
  return {
    name: 'root',
    status: root ? 'ok' : 'missing',
    version: root ? 'uid 0' : `uid ${process.getuid?.()}`,
    detail: 'debootstrap, loop devices and grub-install need root',
    howToGet: 'run the lab bake as root (sudo -E)',
    neededFor: needed ? ['bake'] : [],
  };
}

async function accelCheck(): Promise<Check> {
  try {
    const accel = await detectAccelerator();
    return {
      name: 'accelerator',
      status: 'ok',
      version: accel.accel === 'kvm' ? 'KVM' : 'TCG',
      detail: accel.reason,
      howToGet: 'KVM needs a host CPU with vmx/svm exposed; TCG (software emulation) always works, slower',
      neededFor: [],
    };
  } catch (error) {
    return { name: 'accelerator', status: 'unusable', version: '', detail: (error as Error).message, howToGet: APT('qemu-system-x86'), neededFor: ['bake'] };
  }
}

async function prerequisiteCheck(prerequisite: Prerequisite, neededFor: Scope[]): Promise<Check> {
  const [binary, ...args] = prerequisite.command;
  if (!prerequisite.expect) return simpleCheck(prerequisite.name, binary, args, neededFor, prerequisite.howToGet, prerequisite.detail);
  const base = { name: prerequisite.name, howToGet: prerequisite.howToGet, neededFor };
  const result = await probe(binary, args);
  if (!result.found) return { ...base, status: 'missing', version: '', detail: `${binary} is missing` };
  const match = prerequisite.expect.exec(result.output);
  return match ? { ...base, status: 'ok', version: match[1] ?? '', detail: prerequisite.detail ?? '' } : { ...base, status: 'missing', version: '', detail: `not in \`${prerequisite.command.join(' ')}\`` };
}

async function terraformCheck(): Promise<Check> {
  const chosen = process.env.TERRAFORM_BINARY_NAME;
  const candidates = chosen ? [chosen] : ['terraform', 'tofu'];
  for (const binary of candidates) {
    const result = await probe(binary, ['version']);
    if (result.found) {
      const version = firstVersion(result.output);
      // The stack's terraform_data is built in from Terraform 1.4 and OpenTofu 1.6 on.
      const minimum = binary.includes('tofu') ? [1, 6] : [1, 4];
      const [major = 0, minor = 0] = version.split('.').map(Number);
      const tooOld = major < minimum[0]! || (major === minimum[0] && minor < minimum[1]!);
      const detail = tooOld ? `the stack's terraform_data needs ${binary} ${minimum.join('.')}+ (or terraform.resource: null_resource in the config)` : 'applies the CDKTF stack (cluster:up), offline: terraform_data is built in';
      return { name: 'terraform/tofu', status: result.failed || tooOld ? 'unusable' : 'ok', version: `${binary} ${version}`, detail, howToGet: '', neededFor: ['up'] };
    }
  }
  return {
    name: 'terraform/tofu',
    status: 'missing',
    version: '',
    detail: `${candidates.join(' or ')} not on PATH; cluster:up applies the CDKTF stack with it`,
    howToGet: 'not in Debian or npm: install OpenTofu (opentofu.org, .deb) or Terraform (releases.hashicorp.com); TERRAFORM_BINARY_NAME picks one',
    neededFor: ['up'],
  };
}

export function renderChecks(checks: Check[], scopes: Scope[]): string {
  return table(
    checks.map((check) => [
      check.name,
      check.status,
      check.version,
      check.neededFor.filter((s) => scopes.includes(s)).join('+') || '-',
      [check.detail, check.status === 'ok' ? '' : check.howToGet].filter(Boolean).join('; '),
    ]),
    ['tool', 'status', 'version', 'needed for', 'detail / how to get it'],
  );
}

export function blocking(checks: Check[], scopes: Scope[]): Check[] {
  return checks.filter((check) => check.status !== 'ok' && check.neededFor.some((scope) => scopes.includes(scope)));
}

export const doctorCommand: Command = {
  name: 'doctor',
  summary: 'Check every tool the pipeline uses; exit 4 when one the chosen profile/provider needs is missing.',
  options: {
    ...CLUSTER_OPTIONS,
    for: { type: 'string', description: 'bake, up or all (default): which job the exit code speaks for' } as never,
    json: { type: 'boolean', description: 'machine-readable output' } as never,
  },
  details: `
Exit codes: 0 everything needed for the chosen job is there; 4 something needed is missing or unusable
(the table says what and how to get it); 3 the cluster config is invalid.
KVM is decided by booting a guest firmware, not by the presence of /dev/kvm.`,
  async run(values: Values) {
    const cluster = clusterFromOptions(values);
    const scopeOption = (values.for as string | undefined) ?? 'all';
    if (!['bake', 'up', 'all'].includes(scopeOption)) {
      process.stderr.write(`--for must be bake, up or all, got "${scopeOption}"\n`);
      return EXIT.usage;
    }
    const scopes: Scope[] = scopeOption === 'all' ? ['bake', 'up'] : [scopeOption as Scope];
    const checks = await runChecks(cluster);
    const missing = blocking(checks, scopes);
    if (values.json) process.stdout.write(`${JSON.stringify({ profile: cluster.profile.name, provider: cluster.provider, scopes, checks, ok: missing.length === 0 }, null, 2)}\n`);
    else {
      process.stdout.write(`boxcar doctor: profile ${cluster.profile.name}, provider ${cluster.provider}, checking for ${scopes.join(' + ')}\n\n`);
      process.stdout.write(renderChecks(checks, scopes));
      process.stdout.write(missing.length === 0 ? '\nAll tools needed are present.\n' : `\nMissing or unusable for ${scopes.join(' + ')}: ${missing.map((c) => c.name).join(', ')}\n`);
    }
    return missing.length === 0 ? EXIT.ok : EXIT.missingPrerequisite;
  },
};
