import { describe, expect, it } from 'vitest';
import { parseCatalog } from './catalog.ts';

const FILE = '/store/boxes/boxcar/lab-worker/metadata.json';
const good = () => ({
  name: 'boxcar/lab-worker',
  description: 'worker',
  versions: [
    {
      version: '1.20261128.0',
      status: 'active',
      providers: [{ name: 'libvirt', url: 'file:///store/boxes/boxcar/lab-worker/1.20261128.0/libvirt.box', checksum_type: 'sha256', checksum: 'a'.repeat(64) }],
      boxcar: { key: 'k1', layer: 'worker', profile: 'lab', createdAt: '2026-11-28T12:00:00.000Z', sizes: { libvirt: 10 } },
    },
  ],
});

describe('parseCatalog', () => {
  it('accepts a valid catalog', () => {
    expect(parseCatalog(JSON.stringify(good()), FILE).versions[0]?.boxcar.key).toBe('k1');
  });

  it('names the file of a JSON syntax error', () => {
    expect(() => parseCatalog('{"name": "boxcar/x",\n  "versions": [}', FILE)).toThrow(
      /^invalid catalog \/store\/boxes\/boxcar\/lab-worker\/metadata.json:\d+:\d+: invalid JSON/,
    );
  });

  const broken: [string, (c: ReturnType<typeof good>) => void, RegExp][] = [
    ['a relative url', (c) => void (c.versions[0]!.providers[0]!.url = 'libvirt.box'), /versions\[0\]\.providers\[0\]\.url must be an absolute/],
    ['a short checksum', (c) => void (c.versions[0]!.providers[0]!.checksum = 'abc'), /versions\[0\]\.providers\[0\]\.checksum must be 64 lowercase hex digits \(got "abc"\)/],
    ['another checksum type', (c) => void (c.versions[0]!.providers[0]!.checksum_type = 'md5'), /checksum_type must be "sha256"/],
    ['a bad version', (c) => void (c.versions[0]!.version = 'v1'), /versions\[0\]\.version must be <major>\.<yyyymmdd>\.<n>/],
    ['a missing size', (c) => void (c.versions[0]!.boxcar.sizes = {} as { libvirt: number }), /versions\[0\]\.boxcar\.sizes\.libvirt must be the size/],
    ['a duplicate version', (c) => void c.versions.push(structuredClone(c.versions[0]!)), /versions\[1\]\.version appears twice/],
    ['a name without org', (c) => void (c.name = 'worker'), /name must be "<org>\/<name>"/],
  ];
  for (const [what, breakIt, message] of broken) {
    it(`rejects ${what}, naming the file and the field`, () => {
      const catalog = good();
      breakIt(catalog);
      expect(() => parseCatalog(JSON.stringify(catalog), FILE)).toThrow(`invalid catalog ${FILE}: `);
      expect(() => parseCatalog(JSON.stringify(catalog), FILE)).toThrow(message);
    });
  }
});
