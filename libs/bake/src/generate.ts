import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { loadLayerGraph, type LoadedLayerGraph } from '@boxcar/layers';
import type { BuilderName } from '@boxcar/model';
import { templateFiles, validateTemplate, type PackerFeatures, type TemplateVariables } from '@boxcar/packer';
import { ensureKeyPair } from '@boxcar/providers';
import { buildDir } from './paths.ts';

export interface GeneratedTemplate {
  profile: string;
  layer: string;
  builder: BuilderName;
  dir: string;
  varFile: string;
}

/**
 * Writes every layer's template for every builder of the profile into build/packer/<profile>/, with a
 * variables file whose paths point at placeholders, so that `packer validate` (which checks that
 * uploaded files and keys exist) runs without the artifacts or a baked parent.
 */
export async function generateTemplates(profileName: string, features: Pick<PackerFeatures, 'requiredPlugins'>, root = buildDir()): Promise<GeneratedTemplate[]> {
  const graph = await loadLayerGraph(profileName);
  const base = join(root, 'packer', profileName);
  await rm(base, { recursive: true, force: true });
  const fixtures = await validationFixtures(graph, join(base, '.placeholders'));
  const generated: GeneratedTemplate[] = [];
  for (const builder of graph.builders) {
    for (const layer of graph.layers) {
      const dir = join(base, layer.name, builder);
      await mkdir(dir, { recursive: true });
      for (const [name, content] of Object.entries(templateFiles(graph, layer, builder, features))) {
        await writeFile(join(dir, name), `${JSON.stringify(content, null, 2)}\n`);
      }
      const varFile = join(dir, 'placeholders.pkrvars.json');
      const variables: TemplateVariables = {
        ...fixtures,
        output_dir: join(dir, 'output'),
        box_output: join(dir, 'output', 'placeholder.box'),
        serial_log: join(dir, 'serial.log'),
      };
      await writeFile(varFile, `${JSON.stringify(variables, null, 2)}\n`);
      generated.push({ profile: profileName, layer: layer.name, builder, dir, varFile });
    }
  }
  return generated;
}

async function validationFixtures(graph: LoadedLayerGraph, dir: string): Promise<Omit<TemplateVariables, 'output_dir' | 'box_output' | 'serial_log'>> {
  const artifactCache = join(dir, 'artifacts');
  for (const entry of graph.layers.flatMap((layer) => layer.artifacts)) {
    const file = join(artifactCache, 'sha256', entry.sha256 ?? 'pending', entry.filename);
    await mkdir(join(file, '..'), { recursive: true });
    await writeFile(file, '');
  }
  // Placeholders of build outputs too: packer validate checks that every file provisioner's source exists.
  const buildCache = join(dir, 'builds');
  for (const use of graph.layers.flatMap((layer) => layer.builds)) {
    for (const name of use.files) {
      const file = join(buildCache, `${use.build}-${use.key}`, name);
      await mkdir(join(file, '..'), { recursive: true });
      await writeFile(file, '');
    }
  }
  const seed = join(dir, 'seed');
  await mkdir(seed, { recursive: true });
  await writeFile(join(seed, 'user-data'), '#cloud-config\n');
  await writeFile(join(seed, 'meta-data'), 'instance-id: placeholder\n');
  const parent = join(dir, 'parent.img');
  await writeFile(parent, '');
  const keys = await ensureKeyPair(join(dir, 'bootstrap_ed25519'), 'boxcar-placeholder-key');
  return {
    parent_image: parent,
    parent_image_checksum: 'none',
    artifact_cache: artifactCache,
    build_cache: buildCache,
    profile_dir: graph.dir,
    ssh_private_key_file: keys.privateKey,
    accelerator: 'tcg',
    headless: true,
    memory: 1024,
    cpus: 1,
    seed_dir: seed,
    bootstrap_public_key: keys.publicKey,
    apt_mirror: 'http://apt-mirror.invalid/ubuntu',
  };
}

export interface ValidationResult extends GeneratedTemplate {
  ok: boolean;
  output: string;
}

export async function validateTemplates(templates: GeneratedTemplate[]): Promise<ValidationResult[]> {
  const results: ValidationResult[] = [];
  for (const template of templates) results.push({ ...template, ...(await validateTemplate(template.dir, template.varFile)) });
  return results;
}
