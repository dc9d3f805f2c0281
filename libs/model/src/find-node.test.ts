import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkNodeName, NODE_NAME_PATTERN } from './find-node.ts';
import { SCHEMAS_DIR } from './schemas.ts';

describe('node names from the command line', () => {
  it("hold the same rule as the cluster config's nodes[].name (one pattern in two places, held equal here)", () => {
    const schema = JSON.parse(readFileSync(join(SCHEMAS_DIR, 'cluster-config.schema.json'), 'utf8'));
    const found: string[] = [];
    JSON.stringify(schema, (key, value) => {
      if (value && typeof value === 'object' && typeof value.description === 'string' && value.description.startsWith("The node's hostname")) found.push(value.pattern);
      return value;
    });
    expect(found).toEqual([NODE_NAME_PATTERN.source]);
  });

  it('accepts hostnames and refuses paths, dots, capitals and edges', () => {
    expect(checkNodeName('cni-worker10')).toBe('cni-worker10');
    for (const bad of ['../../x', 'a/b', '.', '', '-x', 'x-', 'Worker', 'a.b', 'x'.repeat(64)]) expect(() => checkNodeName(bad), bad).toThrow(/^node name .*: lowercase letters/);
  });
});
