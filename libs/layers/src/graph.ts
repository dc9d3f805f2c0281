import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { artifactFilename, loadLock, lockEntryDigest, type ArtifactLock } from '@boxcar/artifacts';
import { sha256Hex } from '@boxcar/kit';
import {
  BUILDER_OF_SOURCE,
  canonicalJson,
  checkShape,
  NATIVE_BUILD_SCRIPT,
  DEFAULT_PROFILES_DIR,
  InputProblemsError,
  isAtOrUnder,
  readJsonFile,
  type BaseSource,
  type BuilderName,
  type BuildStage,
  type HashedFile,
  type Layer,
  type LayerArtifact,
  type LayerChecks,
  type LayerGraph,
  type Problem,
  type Role,
} from '@boxcar/model';

// The layer graph of a profile, read from images/profiles/<profile>/layers.json: data, validated, with
// every input file hashed, so that keys and templates are pure functions of it. The shape of the file
// is libs/model/schemas/layers.schema.json's; what the values mean (parents, one base, sources per
// builder, files that exist, artifacts in the lock, no cycle) is checked here.

export interface LayerSpec {
  name: string;
  description?: string;
  parent?: string;
  source?: BaseSource;
  /** Per builder, when the root can start from more than one base (cloud image for qemu, box for VirtualBox). */
  sources?: Partial<Record<BuilderName, BaseSource>>;
  scripts?: string[];
  files?: { src: string; dest: string }[];
  artifacts?: string[];
  builds?: { build: string; files: string[] }[];
  env?: Record<string, string>;
  checks?: Partial<LayerChecks>;
  box?: { role: Role; description?: string };
}

export interface BuildSpec {
  name: string;
  description?: string;
  script: string;
  helpers?: string[];
  patches?: string;
  root: { suite: string; mirror: string; include?: string[] };
  artifacts?: string[];
  env?: Record<string, string>;
  outputs: string[];
}

/** A layer graph with the lock it was resolved against (for fetching the artifacts). */
export interface LoadedLayerGraph extends LayerGraph {
  lock: ArtifactLock;
}

export class LayerGraphError extends InputProblemsError {
  constructor(
    readonly file: string,
    problems: Problem[],
  ) {
    super(file, problems);
  }
}

function hashFile(dir: string, path: string): HashedFile {
  const absolute = join(dir, path);
  return { path, absolute, sha256: sha256Hex(readFileSync(absolute)) };
}

/** The file at `path` (relative to the profile) hashed, or a problem at `where` when it is not a file there. */
function hashExistingFile(dir: string, path: string, where: string, problems: Problem[]): HashedFile[] {
  if (existsSync(join(dir, path)) && statSync(join(dir, path)).isFile()) return [hashFile(dir, path)];
  problems.push({ path: where, message: `no such file ${path} in ${dir}` });
  return [];
}

/** Lock entries by id, as a layer or build stage takes them; a problem at `<where>[i]` for each id the lock lacks. */
function lockedArtifacts(ids: unknown[], where: string, lock: ArtifactLock, lockFile: string, problems: Problem[]): LayerArtifact[] {
  return ids.flatMap((id, i) => {
    if (typeof id !== 'string') return [];
    const entry = lock.artifacts.find((candidate) => candidate.id === id);
    if (!entry) {
      problems.push({ path: `${where}[${i}]`, message: `"${id}" is not in ${lockFile}` });
      return [];
    }
    return [{ id: entry.id, sha256: entry.sha256, filename: artifactFilename(entry), digest: lockEntryDigest(entry) }];
  });
}

function listFilesUnder(root: string): string[] {
  return readdirSync(root, { withFileTypes: true })
    .flatMap((entry) => (entry.isDirectory() ? listFilesUnder(join(root, entry.name)) : [join(root, entry.name)]))
    .sort();
}

export async function loadLayerGraph(profile: string, profilesDir = DEFAULT_PROFILES_DIR): Promise<LoadedLayerGraph> {
  const dir = join(profilesDir, profile);
  const file = join(dir, 'layers.json');
  if (!existsSync(file)) throw new Error(`profile "${profile}" has no layers.json (${file})`);
  const profileData = readJsonFile(join(dir, 'profile.json'));
  const document = readJsonFile(file) as { layers?: unknown; builds?: unknown } | null;
  const lockFile = join(dir, 'artifacts.lock.json');
  const lock: ArtifactLock = existsSync(lockFile) ? await loadLock(lockFile) : { lockVersion: 1, artifacts: [] };
  const shape = checkShape('layers', document);
  const problems: Problem[] = [];
  // Past the shape check, whatever has the wrong shape is left out (it was reported): a layer that is
  // not an object, a list that is not a list, an entry of a list that is not a string.
  const entries: unknown[] = Array.isArray(document?.layers) ? document.layers : [];
  const specs = entries.flatMap((spec, index) => {
    const path = `layers[${index}]`;
    return isObject(spec) ? [{ path, spec: substituteProfileValues(spec as unknown as LayerSpec, profileData, path, problems) }] : [];
  });

  const builds = loadBuilds(document?.builds, { dir, profileData, lock, lockFile, problems });

  const byName = new Map<string, LayerSpec>();
  for (const { spec, path } of specs) {
    if (typeof spec.name !== 'string') continue;
    if (byName.has(spec.name)) problems.push({ path: `${path}.name`, message: `duplicate layer name "${spec.name}"` });
    else byName.set(spec.name, spec);
  }

  const roots = specs.filter(({ spec }) => spec.parent === undefined);
  if (roots.length !== 1) problems.push({ path: 'layers', message: `exactly one layer must have no parent (the base), found ${roots.length}` });
  const layers: Layer[] = [];
  specs.forEach(({ spec, path }) => {
    if (spec.parent !== undefined && !byName.has(spec.parent)) {
      problems.push({ path: `${path}.parent`, message: `unknown layer "${spec.parent}"; allowed: ${[...byName.keys()].join(', ')}` });
    }
    const sources = validateSources(spec, path, lock, problems);
    const scripts = listOf<string>(spec.scripts).flatMap((script, i) => (typeof script === 'string' ? hashExistingFile(dir, script, `${path}.scripts[${i}]`, problems) : []));
    const files = listOf<{ src: string; dest: string }>(spec.files).flatMap((upload, i) => {
      if (!isObject(upload) || typeof upload.src !== 'string') return [];
      const source = join(dir, upload.src);
      if (!existsSync(source)) {
        problems.push({ path: `${path}.files[${i}].src`, message: `no such file or directory ${JSON.stringify(upload.src)} in ${dir}` });
        return [];
      }
      const isDirectory = statSync(source).isDirectory();
      const entries = isDirectory ? listFilesUnder(source).map((absolute) => hashFile(dir, relative(dir, absolute))) : [hashFile(dir, upload.src)];
      return [{ src: upload.src, dest: upload.dest, isDirectory, entries }];
    });
    const artifacts = lockedArtifacts([...new Set(listOf<unknown>(spec.artifacts))], `${path}.artifacts`, lock, lockFile, problems);
    const buildUses = listOf<{ build: string; files: string[] }>(spec.builds).flatMap((use, i) => {
      if (!isObject(use) || typeof use.build !== 'string') return [];
      const stage = builds.find((candidate) => candidate.name === use.build);
      if (!stage) {
        problems.push({ path: `${path}.builds[${i}].build`, message: `unknown build "${use.build}"; builds: ${builds.map((b) => b.name).join(', ') || 'none'}` });
        return [];
      }
      const files = listOf<string>(use.files).filter((name) => typeof name === 'string');
      files.forEach((name, j) => {
        if (!stage.outputs.includes(name)) problems.push({ path: `${path}.builds[${i}].files[${j}]`, message: `"${name}" is not an output of build "${stage.name}"; outputs: ${stage.outputs.join(', ')}` });
      });
      return [{ build: stage.name, key: stage.key, files }];
    });
    layers.push({
      name: spec.name,
      description: spec.description ?? '',
      ...(spec.parent !== undefined ? { parent: spec.parent } : {}),
      sources,
      scripts,
      files,
      artifacts,
      builds: buildUses,
      env: spec.env ?? {},
      checks: validateChecks(spec.checks, `${path}.checks`, problems),
      ...(spec.box ? { box: { role: spec.box.role, description: spec.box.description ?? spec.description ?? spec.name } } : {}),
    });
  });

  // A path the shape check reported is not reported again (an unknown artifact id that is not even a string).
  const all = [...shape, ...problems.filter((problem) => !shape.some((known) => isAtOrUnder(problem.path, known.path)))];
  const ordered = all.length ? [] : topologicalOrder(layers, all);
  if (all.length) throw new LayerGraphError(file, all);
  const root = ordered[0]!;
  return { profile, dir, layers: ordered, builders: Object.keys(root.sources) as BuilderName[], builds, lock };
}

/** Bump when the meaning of a build key's inputs changes. */
const BUILD_KEY_FORMAT = 1;

/**
 * The profile's build stages, validated, every input hashed and keyed. The key covers the build script, its
 * helpers, every patch, the build root's packages, the artifacts' lock entries, the environment, the
 * outputs asked for and the host-side runner (images/build/native-build.sh), which makes the chroot.
 */
function loadBuilds(
  value: unknown,
  context: { dir: string; profileData: unknown; lock: ArtifactLock; lockFile: string; problems: Problem[] },
): BuildStage[] {
  const { dir, profileData, lock, lockFile, problems } = context;
  const seen = new Set<string>();
  const stages = listOf<unknown>(value);
  // Read once, and only where a profile has build stages.
  const runner = stages.length === 0 ? '' : existsSync(NATIVE_BUILD_SCRIPT) ? sha256Hex(readFileSync(NATIVE_BUILD_SCRIPT)) : 'missing';
  return stages.flatMap((raw, index) => {
    const path = `builds[${index}]`;
    if (!isObject(raw)) return [];
    const spec = substituteProfileValues(raw as unknown as LayerSpec, profileData, path, problems) as unknown as BuildSpec;
    if (typeof spec.name !== 'string' || typeof spec.script !== 'string' || !isObject(spec.root) || !Array.isArray(spec.outputs)) return [];
    if (seen.has(spec.name)) {
      problems.push({ path: `${path}.name`, message: `duplicate build name "${spec.name}"` });
      return [];
    }
    seen.add(spec.name);
    const [script] = hashExistingFile(dir, spec.script, `${path}.script`, problems);
    const helpers = listOf<unknown>(spec.helpers).flatMap((helper, i) => (typeof helper === 'string' ? hashExistingFile(dir, helper, `${path}.helpers[${i}]`, problems) : []));
    let patches: BuildStage['patches'] = { dir: '', entries: [] };
    if (typeof spec.patches === 'string') {
      const patchDir = join(dir, spec.patches);
      if (!existsSync(patchDir) || !statSync(patchDir).isDirectory()) problems.push({ path: `${path}.patches`, message: `no such folder ${spec.patches} in ${dir}` });
      else patches = { dir: spec.patches, entries: listFilesUnder(patchDir).map((absolute) => hashFile(dir, relative(dir, absolute))) };
    }
    const artifacts = lockedArtifacts(listOf<unknown>(spec.artifacts), `${path}.artifacts`, lock, lockFile, problems);
    if (!script) return [];
    const stage: Omit<BuildStage, 'key'> = {
      name: spec.name,
      description: spec.description ?? '',
      script,
      helpers,
      patches,
      root: { suite: spec.root.suite, mirror: spec.root.mirror, include: [...new Set(spec.root.include ?? [])].sort() },
      artifacts,
      env: spec.env ?? {},
      outputs: spec.outputs,
      runner,
    };
    return [{ ...stage, key: sha256Hex(canonicalJson(buildKeyInputs(stage))) }];
  });
}

/** What a build stage's key is made of: no absolute path, time or host name (the same on every machine). */
export function buildKeyInputs(stage: Omit<BuildStage, 'key'>): Record<string, unknown> {
  return {
    format: BUILD_KEY_FORMAT,
    runner: stage.runner,
    script: stage.script.sha256,
    helpers: Object.fromEntries(stage.helpers.map((helper) => [helper.path, helper.sha256])),
    patches: Object.fromEntries(stage.patches.entries.map((patch) => [patch.path, patch.sha256])),
    root: stage.root,
    artifacts: Object.fromEntries(stage.artifacts.map((artifact) => [artifact.id, artifact.digest])),
    env: stage.env,
    outputs: stage.outputs,
  };
}

const REFERENCE = /\$\{([A-Za-z0-9_.-]+)\}/g;

/**
 * Values in layers.json may name profile.json values as `${versions.docker.default}`, so that a version
 * is written once: in the profile. Applies to env values, artifact ids and the base source's artifact.
 */
function substituteProfileValues(spec: LayerSpec, profile: unknown, path: string, problems: Problem[]): LayerSpec {
  const resolve = (text: string, where: string): string =>
    text.replace(REFERENCE, (whole, reference: string) => {
      const value = reference.split('.').reduce<unknown>((node, key) => (node && typeof node === 'object' ? (node as Record<string, unknown>)[key] : undefined), profile);
      if (typeof value === 'string' || typeof value === 'number') return String(value);
      problems.push({ path: where, message: `${whole}: profile.json has no string at ${reference}` });
      return whole;
    });
  if (typeof spec !== 'object' || spec === null) return spec;
  return {
    ...spec,
    ...(spec.env ? { env: Object.fromEntries(Object.entries(spec.env).map(([key, value]) => [key, typeof value === 'string' ? resolve(value, `${path}.env.${key}`) : value])) } : {}),
    ...(Array.isArray(spec.artifacts) ? { artifacts: spec.artifacts.map((id, i) => (typeof id === 'string' ? resolve(id, `${path}.artifacts[${i}]`) : id)) } : {}),
    ...(isObject(spec.source) && 'artifact' in spec.source && typeof spec.source.artifact === 'string' ? { source: { ...spec.source, artifact: resolve(spec.source.artifact, `${path}.source.artifact`) } } : {}),
  };
}

function validateSources(spec: LayerSpec, path: string, lock: ArtifactLock, problems: Problem[]): Layer['sources'] {
  const isRoot = spec.parent === undefined;
  if (!isRoot) {
    if (spec.source || spec.sources) problems.push({ path: `${path}.source`, message: 'only the base layer (no parent) has a source' });
    return {};
  }
  const given: [string, BaseSource][] = isObject(spec.sources)
    ? Object.entries(spec.sources).map(([builder, source]) => [`${path}.sources.${builder}`, source])
    : spec.source
      ? [[`${path}.source`, spec.source]]
      : [];
  if (given.length === 0) problems.push({ path: `${path}.source`, message: 'the base layer needs a source: cloud-image, vagrant-box or debootstrap' });
  const sources: Layer['sources'] = {};
  for (const [sourcePath, source] of given) {
    // A source that is not an object, or of no known type, was reported by the shape check.
    const builder = isObject(source) && Object.hasOwn(BUILDER_OF_SOURCE, source.type) ? BUILDER_OF_SOURCE[source.type] : undefined;
    if (!builder) continue;
    if (spec.sources && !Object.prototype.hasOwnProperty.call(spec.sources, builder)) {
      problems.push({ path: sourcePath, message: `a ${source.type} source is baked by the ${builder} builder; list it under sources.${builder}` });
    }
    if (source.type !== 'debootstrap' && !lock.artifacts.some((entry) => entry.id === source.artifact)) {
      problems.push({ path: `${sourcePath}.artifact`, message: `"${source.artifact}" is not in the profile's artifacts.lock.json` });
    }
    sources[builder] = source;
  }
  return sources;
}

/**
 * A layer's checks with every list present; past the schema's shape check: no name twice (each
 * check reports under its name), no unit both enabled and disabled, a command that runs something.
 */
function validateChecks(checks: unknown, path: string, problems: Problem[]): LayerChecks {
  const given = isObject(checks) ? checks : {};
  const strings = (field: string): string[] => {
    const seen = new Set<string>();
    return listOf<unknown>(given[field]).flatMap((entry, i) => {
      if (typeof entry !== 'string') return [];
      if (seen.has(entry)) {
        problems.push({ path: `${path}.${field}[${i}]`, message: `"${entry}" is listed twice` });
        return [];
      }
      seen.add(entry);
      return [entry];
    });
  };
  const result: LayerChecks = {
    servicesEnabled: strings('servicesEnabled'),
    servicesDisabled: strings('servicesDisabled'),
    absent: strings('absent'),
    empty: strings('empty'),
    commands: [],
  };
  result.servicesDisabled.forEach((unit, i) => {
    if (result.servicesEnabled.includes(unit)) problems.push({ path: `${path}.servicesDisabled[${i}]`, message: `"${unit}" is also in servicesEnabled` });
  });
  listOf<unknown>(given.commands).forEach((command, i) => {
    if (!isObject(command) || typeof command.name !== 'string' || typeof command.run !== 'string') return;
    if (result.commands.some((known) => known.name === command.name)) {
      problems.push({ path: `${path}.commands[${i}].name`, message: `"${command.name}" is the name of another command` });
    } else if (!command.run.trim()) {
      problems.push({ path: `${path}.commands[${i}].run`, message: 'must be a command, got ""' });
    } else if (command.run.includes('{{')) {
      // Packer would read it as a Go template.
      problems.push({ path: `${path}.commands[${i}].run`, message: `must not contain "{{", got ${JSON.stringify(command.run)}` });
    } else {
      result.commands.push({ name: command.name, run: command.run });
    }
  });
  return result;
}

function topologicalOrder(layers: Layer[], problems: Problem[]): Layer[] {
  const ordered: Layer[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (layer: Layer, trail: string[]): void => {
    if (state.get(layer.name) === 'done') return;
    if (state.get(layer.name) === 'visiting') {
      problems.push({ path: 'layers', message: `cycle: ${[...trail, layer.name].join(' -> ')}` });
      return;
    }
    state.set(layer.name, 'visiting');
    const parent = layers.find((candidate) => candidate.name === layer.parent);
    if (parent) visit(parent, [...trail, layer.name]);
    state.set(layer.name, 'done');
    ordered.push(layer);
  };
  layers.forEach((layer) => visit(layer, []));
  return ordered;
}

export function ancestors(graph: LayerGraph, name: string): Layer[] {
  const chain: Layer[] = [];
  let current = graph.layers.find((layer) => layer.name === name);
  while (current?.parent) {
    current = graph.layers.find((layer) => layer.name === current!.parent);
    if (current) chain.unshift(current);
  }
  return chain;
}

export function descendants(graph: LayerGraph, name: string): Layer[] {
  const result: Layer[] = [];
  const frontier = [name];
  while (frontier.length) {
    const parent = frontier.shift()!;
    for (const child of graph.layers.filter((layer) => layer.parent === parent)) {
      result.push(child);
      frontier.push(child.name);
    }
  }
  return result;
}

export function getLayer(graph: LayerGraph, name: string): Layer {
  const layer = graph.layers.find((candidate) => candidate.name === name);
  if (!layer) throw new Error(`profile "${graph.profile}" has no layer "${name}"; layers: ${graph.layers.map((l) => l.name).join(', ')}`);
  return layer;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The list a field holds, or none when it holds something else (which the shape check reported). */
function listOf<T>(value: unknown): T[] {
  return Array.isArray(value) ? (value as T[]) : [];
}
