// Readers for what the plans write, used by the tests to check rendered files field by field. YAML is read
// by a real YAML 1.1 parser (PyYAML, as the Go YAML of the 2016 kubelet is YAML 1.1), not by our own code.

import { execa } from 'execa';
import type { NodePlan, PlanFile, Step } from '../types.ts';

export function step(plan: NodePlan, id: string): Step {
  const found = plan.steps.find((s) => s.id === id);
  if (!found) throw new Error(`plan of ${plan.node} has no step "${id}"; it has: ${plan.steps.map((s) => s.id).join(', ')}`);
  return found;
}

export function fileAt(plan: NodePlan, path: string): PlanFile {
  const found = plan.steps.flatMap((s) => s.files).find((f) => f.path === path);
  if (!found) throw new Error(`plan of ${plan.node} writes no ${path}`);
  return found;
}

export function text(file: PlanFile): string {
  return typeof file.content === 'string' ? file.content : new TextDecoder().decode(file.content);
}

export type Unit = Record<string, [string, string][]>;

/** systemd unit syntax: sections, key=value, backslash-newline continuations. */
export function parseUnit(source: string): Unit {
  const unit: Unit = {};
  let section = '';
  for (const line of source.replace(/\\\n/g, ' ').split('\n')) {
    if (!line.trim() || line.startsWith('#')) continue;
    const header = /^\[(.+)\]$/.exec(line);
    if (header) unit[(section = header[1]!)] = [];
    else {
      const at = line.indexOf('=');
      unit[section]!.push([line.slice(0, at), line.slice(at + 1)]);
    }
  }
  return unit;
}

export function unitValues(unit: Unit, section: string, key: string): string[] {
  return (unit[section] ?? []).filter(([k]) => k === key).map(([, v]) => v);
}

/** An ExecStart command line as systemd splits it (double quotes, backslash escapes, `$$` and `%%`). */
export function splitExecStart(value: string): string[] {
  const words: string[] = [];
  const re = /"((?:[^"\\]|\\.)*)"|(\S+)/g;
  for (const match of value.matchAll(re)) {
    const word = match[1] !== undefined ? match[1].replace(/\\(.)/g, '$1') : match[2]!;
    words.push(word.replaceAll('$$', '$').replaceAll('%%', '%'));
  }
  return words;
}

/** KEY="value" lines of an EnvironmentFile. */
export function parseEnvFile(source: string): Record<string, string> {
  const values: Record<string, string> = {};
  for (const line of source.split('\n')) {
    const match = /^([A-Z0-9_]+)="(.*)"$/.exec(line);
    if (match) values[match[1]!] = match[2]!;
  }
  return values;
}

/** `--name=value` flags of an argument list, by name; a flag given twice is an error. */
export function flagMap(args: string[]): Map<string, string> {
  const flags = new Map<string, string>();
  for (const arg of args.filter((a) => a.startsWith('--'))) {
    const at = arg.indexOf('=');
    const [name, value] = at < 0 ? [arg, ''] : [arg.slice(0, at), arg.slice(at + 1)];
    if (flags.has(name)) throw new Error(`flag ${name} given twice`);
    flags.set(name, value);
  }
  return flags;
}

export async function parseYaml(documents: string[]): Promise<unknown[]> {
  const { stdout } = await execa('python3', ['-c', 'import json, sys, yaml; print(json.dumps([yaml.safe_load(d) for d in json.load(sys.stdin)]))'], {
    input: JSON.stringify(documents),
  });
  return JSON.parse(stdout) as unknown[];
}

/** TOML read by Python's tomllib (TOML 1.0), as containerd's own parser would read it. */
export async function parseToml(source: string): Promise<Record<string, unknown>> {
  const { stdout } = await execa('python3', ['-c', 'import json, sys, tomllib; print(json.dumps(tomllib.loads(sys.stdin.read())))'], { input: source });
  return JSON.parse(stdout) as Record<string, unknown>;
}
