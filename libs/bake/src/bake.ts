import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { fetchAll, type LockEntry } from '@boxcar/artifacts';
import type { BoxStore } from '@boxcar/box-store';
import { LockTimeoutError, sha256File, withLock, type LockHolder } from '@boxcar/kit';
import type { LoadedLayerGraph } from '@boxcar/layers';
import type { BuilderName, BuildStage, Layer, Profile } from '@boxcar/model';
import { initPlugins, namingFailedChecks, runPackerBuild, templateFiles, type BakePhase, type PackerFeatures, type PhaseSeconds, type TemplateVariables } from '@boxcar/packer';
import { compressDisk, packLibvirtBox } from './box-image.ts';
import { buildOutputDir, readBuildRecord, runBuildStage, type BuildRecord } from './build-stage.ts';
import { endOrphanPacker, forgetPacker, packerRecordFile, recordPacker } from './orphan.ts';
import { buildLogFile, logFile, workDir } from './paths.ts';
import { isPublished, type BakePlan, type PlannedLayer } from './plan.ts';

export interface BakeReporter {
  layerStart(layer: string, key: string, log: string): void;
  step(layer: string, step: string): void;
  line(layer: string, text: string): void;
  layerDone(layer: string, result: { seconds: number; phases: PhaseSeconds; box?: { name: string; version: string } }): void;
  layerFailed(layer: string, error: Error): void;
  message(text: string): void;
}

export interface BakeContext {
  graph: LoadedLayerGraph;
  profile: Profile;
  store: BoxStore;
  builder: BuilderName;
  packer: PackerFeatures;
  accelerator: 'kvm' | 'tcg';
  bootstrap: { privateKey: string; publicKey: string };
  /** The root layer's starting image: a qcow2 (debootstrap, cloud image) or an OVF. */
  rootImage: () => Promise<string>;
  artifactCache: string;
  /** Outputs of build stages by name and key (paths.ts buildStageCache). */
  buildCache: string;
  mirror?: string;
  aptMirror?: string;
  jobs: number;
  gui?: boolean;
  packerArgs?: string[];
  signal?: AbortSignal;
  reporter: BakeReporter;
  vm?: { memory: number; cpus: number };
}

export interface BakeResult {
  /** Build stages this bake ran (not those found built): seconds in all and per step. */
  builds?: { build: string; seconds: number; steps: Record<string, number> }[];
  /** seconds: the packer run; phases: where the layer's whole bake went (packer's phases and the bake's own). */
  built: { layer: string; seconds: number; phases: PhaseSeconds; box?: { name: string; version: string } }[];
  cached: string[];
  failed?: { layer: string; error: Error };
  skipped: string[];
  packerRuns: number;
}

/** The file a layer's VM leaves behind, which its children start from (named in the template). */
export function layerImageFile(builder: BuilderName, layer: string): string {
  return builder === 'qemu' ? 'disk.qcow2' : `boxcar-${layer}.ovf`;
}
const BOX_PROVIDER: Record<BuilderName, string> = { qemu: 'libvirt', 'virtualbox-ovf': 'virtualbox' };

/**
 * Bakes the plan's missing layers in dependency order, independent ones in parallel up to `jobs`.
 * A layer is published (atomically, by the store) as soon as it is baked, so a later failure or an
 * interruption keeps every finished layer.
 */
export async function executeBake(plan: BakePlan, context: BakeContext): Promise<BakeResult> {
  const result: BakeResult = { built: [], cached: [], skipped: [], packerRuns: 0 };
  const toBuild = plan.layers.filter((layer) => layer.status === 'build');
  result.cached = plan.layers.filter((layer) => layer.status === 'cached').map((layer) => layer.layer);
  if (toBuild.length === 0) return result;

  // Every download first, the build stages' too: a missing artifact fails the bake before a long compile.
  const stages = plan.builds.filter((build) => build.status === 'build').map((build) => context.graph.builds.find((stage) => stage.name === build.build)!);
  const stageIds = (stage: BuildStage) => stage.artifacts.map((artifact) => artifact.id);
  const entries = uniqueArtifacts([...toBuild.flatMap((planned) => artifactIds(layerOf(context, planned.layer))), ...stages.flatMap(stageIds)], context.graph.lock.artifacts);
  if (entries.length) {
    context.reporter.message(`fetching ${entries.length} artifact(s) into ${context.artifactCache}`);
    try {
      await fetchAll(entries, { cacheDir: context.artifactCache, mirror: context.mirror, signal: context.signal });
    } catch (error) {
      // Reported like a layer failure (nothing has been baked yet): the first stage or layer that needs the artifact.
      const id = (error as { id?: unknown }).id as string;
      const stage = stages.find((candidate) => stageIds(candidate).includes(id));
      const culprit = stage ? `build ${stage.name}` : (toBuild.find((planned) => artifactIds(layerOf(context, planned.layer)).includes(id)) ?? toBuild[0]!).layer;
      context.reporter.layerFailed(culprit, error as Error);
      return { ...result, failed: { layer: culprit, error: error as Error }, skipped: toBuild.map((planned) => planned.layer).filter((layer) => layer !== culprit) };
    }
  }

  // Build stages first: every layer that needs one starts only when its outputs are there.
  for (const planned of plan.builds.filter((build) => build.status !== 'not needed')) {
    const stage = context.graph.builds.find((candidate) => candidate.name === planned.build)!;
    const name = `build ${stage.name}`;
    const log = buildLogFile(plan.profile, stage.name, stage.key);
    try {
      if (planned.status === 'build') context.reporter.layerStart(name, stage.key, log);
      const built = await runBuildStage(stage, {
        cache: context.buildCache,
        artifactCache: context.artifactCache,
        lock: context.graph.lock.artifacts,
        profileDir: context.graph.dir,
        logFile: log,
        ...(context.mirror ? { mirror: context.mirror } : {}),
        ...(context.signal ? { signal: context.signal } : {}),
        onLine: (line) => {
          context.reporter.line(name, line);
          const step = /^\[[a-z-]+\]\s+\d+s (.*)$/.exec(line);
          if (step) context.reporter.step(name, step[1]!);
        },
      });
      if (!built.cached) {
        (result.builds ??= []).push({ build: stage.name, seconds: built.seconds, steps: built.steps });
        context.reporter.layerDone(name, { seconds: built.seconds, phases: {} });
      }
    } catch (error) {
      context.reporter.layerFailed(name, error as Error);
      return { ...result, failed: { layer: name, error: error as Error }, skipped: toBuild.map((layer) => layer.layer) };
    }
  }

  const done = new Set(result.cached);
  const running = new Map<string, Promise<void>>();
  const pending = [...toBuild];
  let failure: { layer: string; error: Error } | undefined;

  while ((pending.length || running.size) && !failure) {
    for (const planned of [...pending]) {
      if (running.size >= context.jobs || failure) break;
      if (planned.parent && !done.has(planned.parent)) continue;
      pending.splice(pending.indexOf(planned), 1);
      const task = bakeLayer(planned, plan, context)
        .then(({ cached, ...outcome }) => {
          if (cached) result.cached.push(planned.layer);
          else {
            result.packerRuns += 1;
            result.built.push({ layer: planned.layer, ...outcome });
          }
          done.add(planned.layer);
        })
        .catch((error: Error) => {
          result.packerRuns += 1;
          failure ??= { layer: planned.layer, error };
          context.reporter.layerFailed(planned.layer, error);
        })
        .finally(() => running.delete(planned.layer));
      running.set(planned.layer, task);
    }
    if (running.size === 0 && pending.length) {
      throw new Error(`cannot order layers ${pending.map((p) => p.layer).join(', ')}: a parent is neither cached nor planned`);
    }
    if (running.size) await Promise.race(running.values());
  }
  // Layers already running finish and stay published; nothing new starts after a failure.
  await Promise.allSettled(running.values());
  if (failure) result.failed = failure;
  result.skipped = pending.map((planned) => planned.layer);
  return result;
}

function layerOf(context: BakeContext, name: string): Layer {
  return context.graph.layers.find((layer) => layer.name === name)!;
}

/** Lock ids a layer needs: its artifacts and its base source's. */
function artifactIds(layer: Layer): string[] {
  const sources = Object.values(layer.sources).flatMap((source) => (source && 'artifact' in source ? [source.artifact] : []));
  return [...layer.artifacts.map((artifact) => artifact.id), ...sources];
}

function uniqueArtifacts(ids: string[], lock: LockEntry[]): LockEntry[] {
  const wanted = new Set(ids);
  return lock.filter((entry) => wanted.has(entry.id));
}

type LayerOutcome = { seconds: number; phases: PhaseSeconds; box?: { name: string; version: string }; cached?: true };

async function bakeLayer(planned: PlannedLayer, plan: BakePlan, context: BakeContext): Promise<LayerOutcome> {
  const work = workDir(plan.profile, planned.layer, planned.key);
  return withLayerLock(work, planned.layer, context, async () => {
    // Not published when planned (or forced): if it is now, another bake published it meanwhile.
    if (!planned.reasons.includes('forced') && (await isPublished(context.store, plan.profile, planned, planned.box?.name))) {
      context.reporter.message(`[${planned.layer}] published meanwhile by another bake: cached`);
      return { seconds: 0, phases: {}, cached: true };
    }
    return buildLayer(planned, plan, context, work);
  });
}

/** The layer lock's directory: the lock, and the record of the packer its holder started. */
function layerLockDir(work: string): string {
  return join(dirname(work), '.locks', basename(work));
}

/**
 * Two bakes on one machine would share a layer's work dir and log: the second waits until the first
 * is done with the layer (and then mostly finds it published). A lock left by a killed bake is taken
 * over, and a packer that bake left running is ended first. Waits in short rounds so that an
 * interrupt is noticed.
 */
async function withLayerLock<T>(work: string, layer: string, context: BakeContext, fn: () => Promise<T>): Promise<T> {
  const root = layerLockDir(work);
  const lockFile = join(root, '.lock');
  await mkdir(root, { recursive: true });
  let ran = false;
  let lastHolder = '';
  const holding = async () => {
    ran = true;
    await endOrphanPacker(packerRecordFile(root), (text) => context.reporter.message(`[${layer}] ${text}`));
    return fn();
  };
  const onWait = (holder: LockHolder | undefined) => {
    const who = holder ? `pid ${holder.pid} on ${holder.host} (since ${holder.createdAt})` : 'another bake';
    if (who !== lastHolder) context.reporter.message(`[${layer}] waiting for ${who}, which bakes this layer (lock ${lockFile})`);
    lastHolder = who;
  };
  for (;;) {
    try {
      return await withLock(lockFile, holding, { purpose: `bake layer ${layer}`, timeoutMs: 5_000, pollMs: 500, onWait });
    } catch (error) {
      if (ran || !(error instanceof LockTimeoutError)) throw error;
      if (context.signal?.aborted) throw new Error(`interrupted while waiting for another bake of layer ${layer}`, { cause: error });
    }
  }
}

async function buildLayer(planned: PlannedLayer, plan: BakePlan, context: BakeContext, work: string): Promise<LayerOutcome> {
  const layer = layerOf(context, planned.layer);
  const log = logFile(plan.profile, layer.name, planned.key);
  context.reporter.layerStart(layer.name, planned.key, log);
  // Under the layer lock, an existing work dir was left by a bake that was killed: nothing in it is worth keeping.
  if (existsSync(work)) context.reporter.message(`[${layer.name}] removing ${work}, left by a bake that was killed`);
  await rm(work, { recursive: true, force: true });
  await mkdir(work, { recursive: true });
  await rm(log, { force: true });
  try {
    context.reporter.step(layer.name, 'preparing the parent image');
    const parentImage = layer.parent ? await parentDisk(context, plan, layer.parent) : await context.rootImage();
    const templateDir = join(work, 'template');
    await mkdir(templateDir, { recursive: true });
    const files = templateFiles(context.graph, layer, context.builder, context.packer);
    for (const [name, content] of Object.entries(files)) await writeFile(join(templateDir, name), `${JSON.stringify(content, null, 2)}\n`);
    const variables: TemplateVariables = {
      parent_image: parentImage,
      parent_image_checksum: `sha256:${(await sha256File(parentImage)).sha256}`,
      output_dir: join(work, 'output'),
      box_output: join(work, 'box', `${BOX_PROVIDER[context.builder]}.box`),
      artifact_cache: context.artifactCache,
      ...(layer.builds.length ? { build_cache: context.buildCache } : {}),
      profile_dir: context.graph.dir,
      ssh_private_key_file: context.bootstrap.privateKey,
      serial_log: join(work, 'serial.log'),
      accelerator: context.accelerator,
      headless: !context.gui,
      memory: context.vm?.memory ?? 1024,
      cpus: context.vm?.cpus ?? 1,
      seed_dir: layer.parent ? '' : await writeCloudInitSeed(work, context.bootstrap.publicKey),
      bootstrap_public_key: context.bootstrap.publicKey,
      apt_mirror: context.aptMirror ?? '',
    };
    const varFile = join(work, 'vars.pkrvars.json');
    await writeFile(varFile, `${JSON.stringify(variables, null, 2)}\n`);

    if (context.packer.requiredPlugins) {
      context.reporter.step(layer.name, 'packer init (plugins of required_plugins)');
      await initPlugins(templateDir, log);
    }
    const packerRecord = packerRecordFile(layerLockDir(work));
    // The layer's checks (its last provisioner) print `boxcar-check: FAILED <name>: <why>`: the error names them.
    const failedCheckLines: string[] = [];
    const run = await runPackerBuild({
      templateDir,
      varFile,
      logFile: log,
      extraArgs: context.packerArgs,
      signal: context.signal,
      onStep: (step) => context.reporter.step(layer.name, step),
      onLine: (text) => {
        if (text.includes('boxcar-check: FAILED')) failedCheckLines.push(text);
        context.reporter.line(layer.name, text);
      },
      onSpawn: (pid) => recordPacker(packerRecord, pid),
    })
      .finally(() => forgetPacker(packerRecord))
      .catch((error: unknown) => {
        throw namingFailedChecks(error, failedCheckLines);
      });

    const phases: PhaseSeconds = { ...run.phases };
    const timedPhase = async (phase: BakePhase, step: string, action: () => Promise<void>) => {
      context.reporter.step(layer.name, step);
      const started = Date.now();
      await action();
      phases[phase] = (phases[phase] ?? 0) + (Date.now() - started) / 1000;
    };
    const output = join(work, 'output');
    const image = layerImageFile(context.builder, layer.name);
    if (!existsSync(join(output, image))) {
      const produced = existsSync(output) ? await readdir(output) : [];
      throw new Error(`packer finished but ${join(output, image)} is missing (output holds: ${produced.join(', ') || 'nothing'}); log: ${log}`);
    }
    if (planned.box && context.builder === 'qemu') {
      await timedPhase('disk conversion', 'compressing the disk', () => compressDisk(join(output, image), context.signal));
      await timedPhase('box packaging', 'packing the libvirt box', () => packLibvirtBox(join(output, image), variables.box_output));
    }
    context.reporter.step(layer.name, 'publishing to the box store');
    const publishStarted = Date.now();
    // File system errors (a full disk) do not say where they happened.
    const publishing = async <T>(what: string, action: () => Promise<T>): Promise<T> =>
      action().catch((error: Error) => {
        throw new Error(`publishing ${what} to the box store ${context.store.url} failed: ${error.message}`, { cause: error });
      });
    const builds = layer.builds.length ? { builds: await buildOutputsOf(layer, context) } : {};
    await publishing(`layer ${layer.name}`, () =>
      context.store.publishLayer(plan.profile, layer.name, planned.key, output, {
        inputs: planned.inputs,
        builder: context.builder,
        parent: planned.parent ?? null,
        packerSeconds: run.seconds,
        packerVersion: context.packer.version,
        ...builds,
      }),
    );
    let box: { name: string; version: string } | undefined;
    if (planned.box) {
      const boxName = planned.box.name;
      const published = await publishing(`box ${boxName}`, () =>
        context.store.publishBox({
          boxName,
          description: layer.box!.description,
          provider: BOX_PROVIDER[context.builder],
          boxFile: variables.box_output,
          key: planned.key,
          layer: layer.name,
          profile: plan.profile,
        }),
      );
      box = { name: boxName, version: published.version };
    }
    phases.publishing = (Date.now() - publishStarted) / 1000;
    await rm(work, { recursive: true, force: true });
    const outcome = { seconds: run.seconds, phases, ...(box ? { box } : {}) };
    context.reporter.layerDone(layer.name, outcome);
    return outcome;
  } catch (error) {
    await rm(work, { recursive: true, force: true });
    throw error;
  }
}

/** What of each build stage the layer installed: the stage's key and the sha256 of each file, for its manifest. */
async function buildOutputsOf(layer: Layer, context: BakeContext): Promise<Record<string, { key: string; files: Record<string, string> }>> {
  const uses: Record<string, { key: string; files: Record<string, string> }> = {};
  for (const use of layer.builds) {
    const record: BuildRecord | undefined = await readBuildRecord(context.buildCache, { name: use.build, key: use.key });
    if (!record) throw new Error(`build ${use.build} (key ${use.key.slice(0, 12)}) is not in ${buildOutputDir(context.buildCache, { name: use.build, key: use.key })}`);
    uses[use.build] = { key: use.key, files: Object.fromEntries(use.files.map((file) => [file, record.outputs[file]!.sha256])) };
  }
  return uses;
}

async function parentDisk(context: BakeContext, plan: BakePlan, parent: string): Promise<string> {
  const planned = plan.layers.find((layer) => layer.layer === parent)!;
  const dir = await context.store.layerFiles(plan.profile, parent, planned.key);
  return join(dir, layerImageFile(context.builder, parent));
}

/** NoCloud seed for cloud images: the bootstrap user that Packer logs in as. */
async function writeCloudInitSeed(work: string, publicKeyFile: string): Promise<string> {
  const seed = join(work, 'seed');
  await mkdir(seed, { recursive: true });
  const publicKey = (await readFile(publicKeyFile, 'utf8')).trim();
  await writeFile(
    join(seed, 'user-data'),
    [
      '#cloud-config',
      'users:',
      '  - name: vagrant',
      '    sudo: "ALL=(ALL) NOPASSWD:ALL"',
      '    shell: /bin/bash',
      '    ssh_authorized_keys:',
      `      - ${publicKey}`,
      'ssh_pwauth: false',
      '',
    ].join('\n'),
  );
  await writeFile(join(seed, 'meta-data'), 'instance-id: boxcar-bake\nlocal-hostname: boxcar-bake\n');
  return seed;
}
