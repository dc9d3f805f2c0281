import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { PROVIDERS, SCHEMAS_DIR } from '@boxcar/model';
import { nodeProvider, providerNames } from './registry.ts';

// A provider is its folder and its line in registry.ts; the model names the same providers in its type
// (PROVIDERS) and in the cluster config schema's enum. Held equal here, every way.
describe('the provider registry', () => {
  it("names the providers the model's type and the config schema's enum name, no more, no fewer", () => {
    const schema = JSON.parse(readFileSync(join(SCHEMAS_DIR, 'cluster-config.schema.json'), 'utf8')) as { properties: { provider: { enum: string[] } } };
    expect([...providerNames()].sort()).toEqual([...PROVIDERS].sort());
    expect([...schema.properties.provider.enum].sort()).toEqual([...PROVIDERS].sort());
  });

  it('gives each provider its own name and the programs it runs on the host', () => {
    for (const name of providerNames()) {
      expect(nodeProvider(name).name).toBe(name);
      expect(nodeProvider(name).prerequisites.length).toBeGreaterThan(0);
    }
  });
});
