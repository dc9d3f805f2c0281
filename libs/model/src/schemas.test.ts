import { cpSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadCluster, REPO_ROOT } from './config-file.ts';
import { readJsonFile } from './json-file.ts';
import { validateJson, type JsonSchema } from './json-schema.ts';
import { InputProblemsError } from './problems.ts';
import { DEFAULT_PROFILES_DIR, listProfiles, loadProfile, ProfileError } from './profile.ts';
import { ClusterConfigError, resolveCluster, resolveClusterOrThrow } from './resolve.ts';
import { checkShape, SCHEMA_FILES, schemaRegistry, SCHEMAS_DIR, type SchemaName } from './schemas.ts';
import type { ClusterConfig } from './types.ts';

const DATA_FILES: { file: string; schema: SchemaName }[] = listProfiles().flatMap((profile) =>
  (
    [
      ['profile.json', 'profile'],
      ['layers.json', 'layers'],
      ['artifacts.lock.json', 'artifactsLock'],
    ] as const
  ).map(([name, schema]) => ({ file: join(DEFAULT_PROFILES_DIR, profile, name), schema })),
);

/** A copy of the lab profile with its profile.json changed. */
function labProfileWith(change: (profile: Record<string, unknown>) => void): string {
  const profiles = mkdtempSync(join(tmpdir(), 'boxcar-profile-'));
  cpSync(join(DEFAULT_PROFILES_DIR, 'lab'), join(profiles, 'lab'), { recursive: true });
  const file = join(profiles, 'lab', 'profile.json');
  const profile = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  change(profile);
  writeFileSync(file, JSON.stringify(profile));
  return profiles;
}

describe('the JSON Schemas of the data files', () => {
  it('cover every profile', () => expect(DATA_FILES.length).toBeGreaterThanOrEqual(6));

  it.each(DATA_FILES)('$file matches $schema, and names its schema file with "$schema"', ({ file, schema }) => {
    const document = readJsonFile(file) as { $schema?: string };
    expect(checkShape(schema, document)).toEqual([]);
    expect(document.$schema).toBeDefined();
    expect(resolve(dirname(file), document.$schema!)).toBe(join(SCHEMAS_DIR, SCHEMA_FILES[schema]));
  });

  it("the README's example cluster.config.json matches the config schema, and resolves", () => {
    const readme = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8');
    const section = readme.slice(readme.indexOf('## Configuration reference'));
    const example = JSON.parse(/```json\n([^]*?)```/.exec(section)![1]!) as ClusterConfig;
    expect(checkShape('clusterConfig', example)).toEqual([]);
    expect(resolveCluster(example).problems).toEqual([]);
  });

  it('are draft-07 documents whose every $ref resolves', () => {
    const registry = schemaRegistry();
    expect(Object.keys(registry).sort()).toEqual(readdirSync(SCHEMAS_DIR).sort());
    const refs: string[] = [];
    const walk = (node: unknown): void => {
      if (Array.isArray(node)) node.forEach(walk);
      else if (typeof node === 'object' && node !== null) {
        for (const [key, value] of Object.entries(node)) (key === '$ref' ? refs.push(value as string) : walk(value));
      }
    };
    for (const [file, schema] of Object.entries(registry)) {
      expect(schema.$schema, file).toBe('http://json-schema.org/draft-07/schema#');
      walk(schema);
      // Validating anything walks every $ref it reaches; a dangling one throws.
      expect(() => validateJson({}, registry, file)).not.toThrow();
    }
    expect(refs.length).toBeGreaterThan(10);
  });
});

describe('shape problems come from the schema, with their field paths', () => {
  it('a memory size given as a string is a type error, reported once, the expected type first', () => {
    const { problems } = resolveCluster({ nodes: [{ name: 'cni-worker1', memoryMb: '4096' }] } as unknown as ClusterConfig);
    expect(problems).toEqual([{ path: 'nodes[0].memoryMb', message: 'must be an integer (number of MiB), got string "4096"' }]);
  });

  it('a port given as a string is a type error, not a range error', () => {
    const { problems } = resolveCluster({ network: { apiSecurePort: '443' } } as unknown as ClusterConfig);
    expect(problems).toEqual([{ path: 'network.apiSecurePort', message: 'must be an integer (a TCP port from 1 to 65535), got string "443"' }]);
  });

  it('an unknown key is reported with its path, at any depth', () => {
    const { problems } = resolveCluster({ nodes: [{ name: 'cni-worker1', colour: 'red' }], network: { calicoPool: { mtu: 1400 } } } as unknown as ClusterConfig);
    expect(problems).toEqual([
      { path: 'network.calicoPool.mtu', message: 'unknown field; allowed: cidr, ipip, natOutgoing' },
      { path: 'nodes[0].colour', message: 'unknown field; allowed: name, role, ip, memoryMb, cpus, mac' },
    ]);
  });

  it('a node without a name says what the name is for', () => {
    expect(resolveCluster({ nodes: [{ memoryMb: 4096 }] } as unknown as ClusterConfig).problems).toEqual([
      { path: 'nodes[0].name', message: 'is required: the node to change or add' },
    ]);
  });

  it('a config that is not an object is one problem about the document', () => {
    expect(resolveCluster([] as unknown as ClusterConfig).problems).toEqual([{ path: '', message: 'must be an object, got an array' }]);
  });

  it('"$schema" is allowed in cluster.config.json and changes nothing', () => {
    const dir = mkdtempSync(join(tmpdir(), 'boxcar-config-'));
    const file = join(dir, 'cluster.config.json');
    writeFileSync(file, JSON.stringify({ $schema: './libs/model/schemas/cluster-config.schema.json', profile: 'lab' }));
    const { cluster, problems } = loadCluster({ configFile: file });
    expect(problems).toEqual([]);
    expect(cluster).toEqual(resolveClusterOrThrow({ profile: 'lab' }));
  });
});

describe('profiles', () => {
  it('load without their "$schema" key', () => {
    const profile = loadProfile('lab');
    expect(profile.name).toBe('lab');
    expect(profile).not.toHaveProperty('$schema');
  });

  it('of the wrong shape are refused with every problem at its path', () => {
    const profiles = labProfileWith((profile) => {
      profile.flavour = 'x';
      (profile.roleMinimums as { worker: { memoryMb: unknown } }).worker.memoryMb = '384';
      delete (profile.features as Record<string, unknown>).vpp;
    });
    const error = (() => {
      try {
        loadProfile('lab', profiles);
      } catch (caught) {
        return caught;
      }
    })();
    expect(error).toBeInstanceOf(ProfileError);
    expect(error).toBeInstanceOf(InputProblemsError);
    expect((error as ProfileError).problems).toEqual([
      { path: 'flavour', message: expect.stringMatching(/^unknown field; allowed: name, description, os, /) },
      { path: 'features.vpp', message: 'must be true or false, got nothing (field missing)' },
      { path: 'roleMinimums.worker.memoryMb', message: 'must be an integer (number of MiB), got string "384"' },
    ]);
    expect((error as Error).message).toMatch(new RegExp(`^${join(profiles, 'lab', 'profile.json')} has 3 problem\\(s\\):\\n  - flavour: unknown field`));
  });

  it('that contradict themselves are refused', () => {
    const profiles = labProfileWith((profile) => {
      profile.defaultProvider = 'virtualbox';
      (profile.versions as Record<string, { default: string }>).debian!.default = '11';
    });
    expect(() => loadProfile('lab', profiles)).toThrow(/defaultProvider: "virtualbox" is not one of providers: qemu, libvirt\n {2}- versions\.debian\.default: "11" is not one of supported: 12/);
  });
});

describe('InputProblemsError', () => {
  it('is the base of the cluster configuration error, with one message format', () => {
    const error = new ClusterConfigError([{ path: 'workers', message: 'must be a whole number from 1 to 64, got 0' }, { path: '', message: 'whole document' }], 'c.json');
    expect(error).toBeInstanceOf(InputProblemsError);
    expect(error.name).toBe('ClusterConfigError');
    expect(error.source).toBe('c.json');
    expect(error.message).toBe('c.json has 2 problem(s):\n  - workers: must be a whole number from 1 to 64, got 0\n  - whole document');
  });
});

describe('validateJson', () => {
  const registry: Record<string, JsonSchema> = {
    'a.json': {
      type: 'object',
      additionalProperties: false,
      required: ['kind', 'version'],
      properties: {
        kind: { type: 'string', enum: ['disk', 'nic'] },
        version: { const: 2, 'x-messages': { enum: 'must be 2 (this format)' } },
        size: { $ref: 'b.json#/definitions/size' },
        labels: { type: 'object', propertyNames: { pattern: '^[a-z]+$' }, additionalProperties: { type: 'string' } },
        path: { type: 'string' },
        list: { type: 'array', minItems: 1, items: { type: ['string', 'null'] } },
      },
      allOf: [{ if: { required: ['kind'], properties: { kind: { const: 'disk' } } }, then: { required: ['path'] } }],
    },
    'b.json': { definitions: { size: { type: 'integer', minimum: 1, maximum: 8, 'x-unit': 'GiB' } } },
  };
  const problemsOf = (value: unknown) => validateJson(value, registry, 'a.json');

  it('accepts what matches', () => expect(problemsOf({ kind: 'nic', version: 2, size: 4, labels: { a: 'b' }, list: ['x', null] })).toEqual([]));

  it('says the expected type first, with the unit', () => {
    expect(problemsOf({ kind: 'nic', version: 2, size: '4' })).toEqual([{ path: 'size', message: 'must be an integer (number of GiB), got string "4"' }]);
    expect(problemsOf({ kind: 'nic', version: 2, size: 2.5 })).toEqual([{ path: 'size', message: 'must be an integer (number of GiB), got 2.5' }]);
    expect(problemsOf({ kind: 'nic', version: 2, list: [3] })).toEqual([{ path: 'list[0]', message: 'must be a string or null, got number 3' }]);
  });

  it('says what is allowed: ranges, enums, constants, list lengths, field names', () => {
    expect(problemsOf({ kind: 'nic', version: 2, size: 9 })).toEqual([{ path: 'size', message: 'must be a whole number of GiB from 1 to 8, got 9' }]);
    expect(problemsOf({ kind: 'tape', version: 3 })).toEqual([
      { path: 'kind', message: 'must be one of disk, nic, got "tape"' },
      { path: 'version', message: 'must be 2 (this format), got 3' },
    ]);
    expect(problemsOf({ kind: 'nic', version: 2, list: [] })).toEqual([{ path: 'list', message: 'must list at least 1 item, got []' }]);
    expect(problemsOf({ kind: 'nic', version: 2, labels: { A: 'b' } })).toEqual([{ path: 'labels.A', message: 'field name must match ^[a-z]+$, got "A"' }]);
  });

  it('reports missing fields, also those required by if/then', () => {
    expect(problemsOf({})).toEqual([
      { path: 'kind', message: 'must be a string, got nothing (field missing)' },
      { path: 'version', message: 'must be 2 (this format), got nothing (field missing)' },
    ]);
    expect(problemsOf({ kind: 'disk', version: 2 })).toEqual([{ path: 'path', message: 'is required' }]);
  });
});
