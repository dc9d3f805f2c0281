// The Vagrant catalog (metadata.json) of one box: types, validation and pure edits.
import { JsonSyntaxError, parseJsonText } from '@boxcar/model';
import { BoxStoreError } from './errors.ts';
import { checkSegment, isBoxName, isProviderName } from './names.ts';
import { compareBoxVersions, isBoxVersion } from './version.ts';

export interface CatalogProvider {
  name: string;
  /** Absolute URL of the .box (file://, http:// or https://), as Vagrant downloads it. */
  url: string;
  checksum_type: 'sha256';
  checksum: string;
}

/** Vagrant ignores this object (checked with Vagrant 2.3.4); boxcar finds versions by content key through it. */
export interface BoxcarVersionInfo {
  key: string;
  layer: string;
  profile: string;
  createdAt: string;
  /** Size in bytes of each provider's .box. */
  sizes: Record<string, number>;
}

export interface CatalogVersion {
  version: string;
  status?: 'active';
  description?: string;
  providers: CatalogProvider[];
  boxcar: BoxcarVersionInfo;
}

export interface Catalog {
  name: string;
  description: string;
  versions: CatalogVersion[];
}

const SHA256 = /^[0-9a-f]{64}$/;

type Json = Record<string, unknown>;

class Checker {
  constructor(private readonly source: string) {}

  fail(path: string, problem: string, value?: unknown): never {
    const got = value === undefined ? '' : ` (got ${JSON.stringify(value)?.slice(0, 80)})`;
    throw new BoxStoreError('invalid-catalog', `invalid catalog ${this.source}: ${path} ${problem}${got}`, this.source);
  }

  object(path: string, value: unknown): Json {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) this.fail(path, 'must be an object', value);
    return value as Json;
  }

  array(path: string, value: unknown): unknown[] {
    if (!Array.isArray(value)) this.fail(path, 'must be an array', value);
    return value;
  }

  string(path: string, value: unknown): string {
    if (typeof value !== 'string') this.fail(path, 'must be a string', value);
    return value;
  }

  segment(path: string, value: unknown): string {
    try {
      return checkSegment(path, value);
    } catch (error) {
      return this.fail(path, (error as Error).message.replace(`${path} `, ''));
    }
  }
}

function isAbsoluteBoxUrl(text: string): boolean {
  try {
    return ['file:', 'http:', 'https:'].includes(new URL(text).protocol);
  } catch {
    return false;
  }
}

/** Checks a parsed metadata.json against the catalog schema; `source` (file or URL) is named in every error. */
export function validateCatalog(value: unknown, source: string): Catalog {
  // Annotated: TypeScript narrows after a `never` method call only through explicitly typed references.
  const c: Checker = new Checker(source);
  const root = c.object('catalog', value);
  if (!isBoxName(root.name)) c.fail('name', 'must be "<org>/<name>"', root.name);
  c.string('description', root.description);
  const seen = new Set<string>();
  c.array('versions', root.versions).forEach((entry, i) => {
    const at = `versions[${i}]`;
    const version = c.object(at, entry);
    if (!isBoxVersion(version.version)) c.fail(`${at}.version`, 'must be <major>.<yyyymmdd>.<n>', version.version);
    if (seen.has(version.version)) c.fail(`${at}.version`, 'appears twice', version.version);
    seen.add(version.version);
    if (version.status !== undefined && version.status !== 'active') c.fail(`${at}.status`, 'must be "active" when present', version.status);
    if (version.description !== undefined) c.string(`${at}.description`, version.description);
    const providers = c.array(`${at}.providers`, version.providers);
    if (providers.length === 0) c.fail(`${at}.providers`, 'must list at least one provider');
    const boxcar = c.object(`${at}.boxcar`, version.boxcar);
    c.segment(`${at}.boxcar.key`, boxcar.key);
    c.segment(`${at}.boxcar.layer`, boxcar.layer);
    c.segment(`${at}.boxcar.profile`, boxcar.profile);
    const createdAt = c.string(`${at}.boxcar.createdAt`, boxcar.createdAt);
    if (Number.isNaN(Date.parse(createdAt))) c.fail(`${at}.boxcar.createdAt`, 'must be an ISO date', createdAt);
    const sizes = c.object(`${at}.boxcar.sizes`, boxcar.sizes);
    const names = new Set<string>();
    providers.forEach((p, j) => {
      const pat = `${at}.providers[${j}]`;
      const provider = c.object(pat, p);
      if (!isProviderName(provider.name)) c.fail(`${pat}.name`, 'must be a Vagrant provider name such as "libvirt"', provider.name);
      if (names.has(provider.name)) c.fail(`${pat}.name`, 'appears twice in this version', provider.name);
      names.add(provider.name);
      if (!isAbsoluteBoxUrl(c.string(`${pat}.url`, provider.url))) c.fail(`${pat}.url`, 'must be an absolute file://, http:// or https:// URL', provider.url);
      if (provider.checksum_type !== 'sha256') c.fail(`${pat}.checksum_type`, 'must be "sha256"', provider.checksum_type);
      if (typeof provider.checksum !== 'string' || !SHA256.test(provider.checksum)) {
        c.fail(`${pat}.checksum`, 'must be 64 lowercase hex digits', provider.checksum);
      }
      const size = sizes[provider.name];
      if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) {
        c.fail(`${at}.boxcar.sizes.${provider.name}`, 'must be the size in bytes of that provider\'s box', size);
      }
    });
  });
  return root as unknown as Catalog;
}

/** Parses metadata.json text; JSON syntax errors and schema errors both name `source`. */
export function parseCatalog(text: string, source: string): Catalog {
  let value: unknown;
  try {
    value = parseJsonText(text, source);
  } catch (error) {
    if (!(error instanceof JsonSyntaxError)) throw error;
    throw new BoxStoreError('invalid-catalog', `invalid catalog ${error.message}`, source, { cause: error });
  }
  return validateCatalog(value, source);
}

export function serializeCatalog(catalog: Catalog): string {
  return `${JSON.stringify(catalog, null, 2)}\n`;
}

export function emptyCatalog(name: string, description: string): Catalog {
  return { name, description, versions: [] };
}

function sorted(versions: CatalogVersion[]): CatalogVersion[] {
  return [...versions].sort((a, b) => compareBoxVersions(a.version, b.version));
}

export function findVersion(catalog: Catalog, version: string): CatalogVersion | undefined {
  return catalog.versions.find((v) => v.version === version);
}

export function findVersionByKey(catalog: Catalog, key: string): CatalogVersion | undefined {
  return catalog.versions.find((v) => v.boxcar.key === key);
}

/** Adds one provider's box to a version, creating the version (ascending order kept) when it is new. */
export function withProvider(
  catalog: Catalog,
  entry: Omit<CatalogVersion, 'providers' | 'boxcar'> & { boxcar: Omit<BoxcarVersionInfo, 'sizes'> },
  provider: CatalogProvider,
  size: number,
): Catalog {
  const existing = findVersion(catalog, entry.version);
  if (existing?.providers.some((p) => p.name === provider.name)) {
    throw new BoxStoreError('conflict', `box ${catalog.name} ${entry.version} already has a ${provider.name} box`);
  }
  const base: CatalogVersion = existing ?? { ...entry, providers: [], boxcar: { ...entry.boxcar, sizes: {} } };
  const updated: CatalogVersion = {
    ...base,
    providers: [...base.providers, provider],
    boxcar: { ...base.boxcar, sizes: { ...base.boxcar.sizes, [provider.name]: size } },
  };
  return { ...catalog, versions: sorted([...catalog.versions.filter((v) => v !== existing), updated]) };
}

export function withoutVersions(catalog: Catalog, versions: ReadonlySet<string>): Catalog {
  return { ...catalog, versions: catalog.versions.filter((v) => !versions.has(v.version)) };
}

/** Versions newest first, so that callers can take the first N. */
export function newestFirst(catalog: Catalog): CatalogVersion[] {
  return sorted(catalog.versions).reverse();
}
