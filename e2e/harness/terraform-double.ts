import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';

// TEST DOUBLE for the terraform/tofu binary, which cannot be installed on this machine. It applies
// a synthesized cdk.tf.json of null_resources the way terraform does: resources in dependency order
// (depends_on plus ${null_resource.X.id} references in triggers), create-time local-exec provisioners
// on create, destroy-time ones on destroy, a resource replaced when its triggers change and, since
// its id changes then, every resource whose triggers reference it replaced too. The product path is
// terraform/tofu (`boxcar cluster up`); this double exists only so that tests can run the stack.

interface NullResource {
  depends_on?: string[];
  triggers?: Record<string, string>;
  provisioner?: { 'local-exec': { command: string; when?: 'destroy' | 'create' } }[];
}

interface HarnessState {
  resources: Record<string, { id: string; triggers: Record<string, string> }>;
}

export interface ApplyReport {
  created: string[];
  replaced: string[];
  unchanged: string[];
  destroyed: string[];
  commands: string[];
}

const STATE_FILE = 'harness.tfstate.json';
const REFERENCE = /\$\{null_resource\.([\w-]+)\.id\}/g;

function readStack(stackDir: string): Record<string, NullResource> {
  const document = JSON.parse(readFileSync(join(stackDir, 'cdk.tf.json'), 'utf8'));
  return document.resource?.null_resource ?? {};
}

function readState(stackDir: string): HarnessState {
  const file = join(stackDir, STATE_FILE);
  return existsSync(file) ? JSON.parse(readFileSync(file, 'utf8')) : { resources: {} };
}

function writeState(stackDir: string, state: HarnessState): void {
  writeFileSync(join(stackDir, STATE_FILE), `${JSON.stringify(state, null, 2)}\n`);
}

export function dependenciesOf(resource: NullResource): string[] {
  const explicit = (resource.depends_on ?? []).map((ref) => ref.replace(/^null_resource\./, ''));
  const implicit = Object.values(resource.triggers ?? {}).flatMap((value) => [...value.matchAll(REFERENCE)].map((match) => match[1]!));
  return [...new Set([...explicit, ...implicit])];
}

export function dependencyOrder(resources: Record<string, NullResource>): string[] {
  const order: string[] = [];
  const visiting = new Set<string>();
  const visit = (name: string) => {
    if (order.includes(name)) return;
    if (visiting.has(name)) throw new Error(`dependency cycle through null_resource.${name}`);
    if (!resources[name]) throw new Error(`reference to undeclared null_resource.${name}`);
    visiting.add(name);
    dependenciesOf(resources[name]!).forEach(visit);
    visiting.delete(name);
    order.push(name);
  };
  Object.keys(resources).sort().forEach(visit);
  return order;
}

export interface StackRunOptions {
  /** Every provisioner command, as it starts. */
  onCommand?: (command: string) => void;
  /** Run the provisioners inside this network namespace, as `ip netns exec <netns> terraform apply` would. */
  netns?: string;
  /** On top of this process's environment, as the shell that runs terraform would set it. */
  env?: Record<string, string>;
}

async function run(command: string, report: ApplyReport, options: StackRunOptions): Promise<void> {
  options.onCommand?.(command);
  report.commands.push(command);
  // terraform runs local-exec through `/bin/sh -c` and fails the apply on a non-zero exit.
  const shell = ['/bin/sh', '-c', command];
  const [program, ...args] = options.netns ? ['ip', 'netns', 'exec', options.netns, ...shell] : shell;
  await execa(program!, args, { stdio: 'inherit', ...(options.env ? { env: options.env } : {}) });
}

function provisioners(resource: NullResource, when: 'create' | 'destroy'): string[] {
  return (resource.provisioner ?? []).map((p) => p['local-exec']).filter((p) => (p.when ?? 'create') === when).map((p) => p.command);
}

export async function applyStack(stackDir: string, options: StackRunOptions = {}): Promise<ApplyReport> {
  const resources = readStack(stackDir);
  const state = readState(stackDir);
  const report: ApplyReport = { created: [], replaced: [], unchanged: [], destroyed: [], commands: [] };
  const ids = new Map(Object.entries(state.resources).map(([name, entry]) => [name, entry.id]));
  let serial = Math.max(0, ...Object.values(state.resources).map((entry) => Number(entry.id.split('-').at(-1)) || 0));

  // Resources gone from the stack are destroyed first, dependents before dependencies.
  for (const name of Object.keys(state.resources).filter((n) => !resources[n]).reverse()) {
    report.destroyed.push(name);
    delete state.resources[name];
    writeState(stackDir, state);
  }

  // Like terraform, every resource whose dependencies are done starts at once (parallelism 10).
  const pending = new Set(dependencyOrder(resources));
  const done = new Set<string>();
  const applyOne = async (name: string) => {
    const resource = resources[name]!;
    const triggers = Object.fromEntries(
      Object.entries(resource.triggers ?? {}).map(([key, value]) => [key, value.replace(REFERENCE, (_, ref: string) => ids.get(ref) ?? '(known after apply)')]),
    );
    const previous = state.resources[name];
    if (previous && JSON.stringify(previous.triggers) === JSON.stringify(triggers)) {
      report.unchanged.push(name);
      return;
    }
    if (previous) {
      for (const command of provisioners(resource, 'destroy')) await run(command, report, options);
      report.replaced.push(name);
    } else report.created.push(name);
    delete state.resources[name];
    writeState(stackDir, state);
    for (const command of provisioners(resource, 'create')) await run(command, report, options);
    serial += 1;
    const id = `harness-${serial}`;
    ids.set(name, id);
    state.resources[name] = { id, triggers };
    writeState(stackDir, state);
  };
  while (pending.size) {
    const ready = [...pending].filter((name) => dependenciesOf(resources[name]!).every((dependency) => done.has(dependency))).slice(0, 10);
    ready.forEach((name) => pending.delete(name));
    // A failed provisioner fails the apply, as in terraform; the others of the wave finish first.
    const results = await Promise.allSettled(ready.map(applyOne));
    const failed = results.find((result): result is PromiseRejectedResult => result.status === 'rejected');
    if (failed) throw failed.reason;
    ready.forEach((name) => done.add(name));
  }
  return report;
}

/** Destroys in reverse dependency order, running each destroy-time provisioner. */
export async function destroyStack(stackDir: string, options: StackRunOptions = {}): Promise<ApplyReport> {
  const resources = readStack(stackDir);
  const state = readState(stackDir);
  const report: ApplyReport = { created: [], replaced: [], unchanged: [], destroyed: [], commands: [] };
  for (const name of dependencyOrder(resources).reverse()) {
    if (!state.resources[name]) continue;
    for (const command of provisioners(resources[name]!, 'destroy')) await run(command, report, options);
    delete state.resources[name];
    writeState(stackDir, state);
    report.destroyed.push(name);
  }
  return report;
}
