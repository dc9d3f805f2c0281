import { existsSync, readFileSync } from 'node:fs';
import { mkdir, readdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { fetchArtifact, requirePinned, resolveCacheDir, resolveMirror } from '@boxcar/artifacts';
import { defaultStoreUrl, openStore, type BoxStore } from '@boxcar/box-store';
import { sha256Hex } from '@boxcar/kit';
import { loadLayerGraph, type LoadedLayerGraph } from '@boxcar/layers';
import { loadProfile, type BaseSource, type BuilderName, type Profile } from '@boxcar/model';
import { detectPacker, type PackerFeatures } from '@boxcar/packer';
import { bakerBootstrapKey, DEBOOTSTRAP_SCRIPT, detectAccelerator, ensureDebootstrapImage } from '@boxcar/providers';
import { executeBake, type BakeReporter, type BakeResult } from './bake.ts';
import { baseImageCache, buildStageCache } from './paths.ts';
import { planBake, type BakePlan } from './plan.ts';

export interface BakeRequest {
  profile: string;
  builder?: BuilderName;
  storeUrl?: string;
  /** Base of the box URLs written into catalogs, when a web server serves the store (default: the store's own URL). */
  publicUrl?: string;
  only?: string[];
  force?: string[];
  jobs?: number;
  gui?: boolean;
  packerArgs?: string[];
  mirror?: string;
  /** apt mirror for layers that install from apt in the guest (xenial); default $BOXCAR_APT_MIRROR. */
  aptMirror?: string;
  signal?: AbortSignal;
  reporter: BakeReporter;
}

export interface BakeSession {
  graph: LoadedLayerGraph;
  profile: Profile;
  store: BoxStore;
  plan: BakePlan;
  run(): Promise<BakeResult>;
}

function rootSource(graph: LoadedLayerGraph, builder: BuilderName): BaseSource {
  const source = graph.layers[0]!.sources[builder];
  if (!source) throw new Error(`profile "${graph.profile}" has no base for builder "${builder}"; builders: ${graph.builders.join(', ')}`);
  return source;
}

/** What shapes the root image beyond layers.json, and so belongs in the root layer's key. */
function baseExtras(source: BaseSource, publicKey: string): unknown {
  return {
    bootstrapPublicKey: readFileSync(publicKey, 'utf8').trim(),
    ...(source.type === 'debootstrap' ? { imageScript: sha256Hex(readFileSync(DEBOOTSTRAP_SCRIPT)) } : {}),
  };
}

export async function openBake(request: BakeRequest): Promise<BakeSession> {
  const profile = loadProfile(request.profile);
  const graph = await loadLayerGraph(request.profile);
  const builder = request.builder ?? graph.builders[0]!;
  const store = await openStore(request.storeUrl ?? defaultStoreUrl(), {
    ...(request.publicUrl !== undefined && { publicUrl: request.publicUrl }),
    lock: {
      onWait: (holder) =>
        request.reporter.message(`waiting for the store lock${holder ? `, held by pid ${holder.pid} on ${holder.host} since ${holder.createdAt} for "${holder.purpose}"` : ''}`),
    },
  });
  // The baker's own key (never in the store, which every user of the boxes reads): only its public half goes into images.
  const keys = await bakerBootstrapKey();
  const source = rootSource(graph, builder);
  const extras = baseExtras(source, keys.publicKey);
  const buildCache = buildStageCache();
  const plan = await planBake(graph, profile, store, { builder, only: request.only, force: request.force, baseExtras: extras, buildCache });
  const artifactCache = resolveCacheDir();
  const mirror = resolveMirror(request.mirror);

  return {
    graph,
    profile,
    store,
    plan,
    async run() {
      if (!plan.layers.some((layer) => layer.status === 'build')) {
        return { built: [], cached: plan.layers.map((layer) => layer.layer), skipped: [], packerRuns: 0 };
      }
      // A bake killed while publishing leaves temp files and uncommitted versions behind.
      const leftovers = await store.sweepIncomplete();
      if (leftovers.length) request.reporter.message(`removed leftovers of an interrupted bake from the store: ${leftovers.join(', ')}`);
      const packer = await requirePacker();
      const accel = await detectAccelerator();
      request.reporter.message(`packer ${packer.version}, accelerator ${accel.accel} (${accel.reason})`);
      return executeBake(plan, {
        graph,
        profile,
        store,
        builder,
        packer,
        accelerator: accel.accel,
        bootstrap: keys,
        rootImage: () => rootImage(graph, source, keys.publicKey, artifactCache, mirror, request),
        artifactCache,
        buildCache,
        ...(mirror ? { mirror } : {}),
        aptMirror: request.aptMirror ?? process.env.BOXCAR_APT_MIRROR ?? '',
        jobs: request.jobs ?? 2,
        gui: request.gui,
        packerArgs: request.packerArgs,
        signal: request.signal,
        reporter: request.reporter,
      });
    },
  };
}

async function requirePacker(): Promise<PackerFeatures> {
  const packer = await detectPacker();
  if (!packer) throw new Error('packer is not installed: apt-get install packer (see `boxcar doctor`)');
  return packer;
}

async function rootImage(
  graph: LoadedLayerGraph,
  source: BaseSource,
  publicKey: string,
  artifactCache: string,
  mirror: string | undefined,
  request: BakeRequest,
): Promise<string> {
  if (source.type === 'debootstrap') {
    request.reporter.message(`base image: debootstrap ${source.suite} (built once, then cached under ${baseImageCache()})`);
    const image = await ensureDebootstrapImage({
      publicKeyFile: publicKey,
      suite: source.suite,
      mirror: source.mirror,
      include: source.include ?? [],
      imageCacheDir: baseImageCache(),
      onLine: (line: string) => request.reporter.line('base', line),
      signal: request.signal,
    });
    request.reporter.message(image.cached ? `base image: cached ${image.path}` : `base image: built ${image.path} in ${image.seconds.toFixed(0)} s, log: ${image.logFile}`);
    return image.path;
  }
  const entry = graph.lock.artifacts.find((candidate) => candidate.id === source.artifact)!;
  const path = await fetchArtifact(entry, { cacheDir: artifactCache, mirror, signal: request.signal });
  if (source.type === 'cloud-image') return path;
  return extractOvf(path, requirePinned(entry).sha256);
}

/** A VirtualBox .box is a tarball holding box.ovf and its disk: the virtualbox-ovf builder wants the OVF. */
async function extractOvf(boxFile: string, digest: string): Promise<string> {
  const dir = join(baseImageCache(), `vagrant-box-${digest.slice(0, 16)}`);
  if (!existsSync(dir)) {
    const temp = `${dir}.partial`;
    await rm(temp, { recursive: true, force: true });
    await mkdir(temp, { recursive: true });
    await execa('tar', ['-xf', boxFile, '-C', temp]);
    await rename(temp, dir);
  }
  const ovf = (await readdir(dir)).find((name) => name.endsWith('.ovf'));
  if (!ovf) throw new Error(`${boxFile} holds no .ovf: not a VirtualBox box`);
  return join(dir, ovf);
}
