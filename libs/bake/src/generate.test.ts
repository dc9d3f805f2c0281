import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { listProfiles } from '@boxcar/model';
import { detectPacker, validateTemplate } from '@boxcar/packer';
import { generateTemplates, validateTemplates } from './generate.ts';

// The real `packer validate` (CI installs packer: tools/install-prereqs.sh). Missing packer fails here.
const packer = await detectPacker();

describe('generated templates pass the real packer validate', () => {
  it('packer is installed', () => expect(packer, 'packer is not on PATH: run tools/install-prereqs.sh').toBeDefined());

  for (const profile of listProfiles()) {
    it(`every layer and builder of profile ${profile}`, async () => {
      const root = mkdtempSync(join(tmpdir(), 'boxcar-generate-'));
      const templates = await generateTemplates(profile, packer!, root);
      expect(templates.length).toBeGreaterThan(0);
      const results = await validateTemplates(templates);
      const invalid = results.filter((r) => !r.ok).map((r) => `${r.layer}/${r.builder}: ${r.output}`);
      expect(invalid).toEqual([]);
    });
  }

  it('a deliberately broken template fails it (so the check can fail)', async () => {
    const root = mkdtempSync(join(tmpdir(), 'boxcar-generate-'));
    const [first] = await generateTemplates('lab', packer!, root);
    const file = join(first!.dir, 'layer.pkr.json');
    const template = JSON.parse(readFileSync(file, 'utf8'));
    template.source.qemu[first!.layer].disk_image = 'sometimes';
    template.source.qemu[first!.layer].no_such_option = true;
    writeFileSync(file, JSON.stringify(template));
    const result = await validateTemplate(first!.dir, first!.varFile);
    expect(result.ok).toBe(false);
    expect(result.output).toMatch(/no_such_option|disk_image/);
  });
});
