import { describe, expect, it } from 'vitest';
import { parseYaml } from '../testing/parse.ts';
import { toYaml } from './yaml.ts';

describe('toYaml, read back by a YAML 1.1 parser', () => {
  const data = {
    plain: 'text',
    yaml11Traps: ['on', 'yes', 'no', 'off', '0644', '1.10', 'null', '~', '', ' padded ', 'a: b', '- dash', '#hash', "it's", 'say "hi"', 'line\nbreak', 'tab\tx', 'ünïcode'],
    numbers: [0, 443, -1, 1.5],
    booleans: [true, false],
    nothing: null,
    empty: { list: [], map: {} },
    nested: [{ a: [{ b: [1, [2, 3]] }], 'odd key': 'x', 'certificate-authority': '/p' }],
  };
  it('round-trips every value unchanged', async () => expect(await parseYaml([toYaml(data)])).toEqual([data]));
  it('leaves out undefined fields', async () => expect(await parseYaml([toYaml({ a: 1, b: undefined })])).toEqual([{ a: 1 }]));
  it('refuses values YAML cannot hold', () => expect(() => toYaml({ n: Number.NaN })).toThrow('cannot write NaN (number) as YAML'));
});
