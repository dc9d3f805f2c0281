// layer.json: what a layer directory holds, so that readers (and http stores, which cannot list
// directories) know every file with its size and sha256.
import { JsonSyntaxError, parseJsonText } from '@boxcar/model';
import { BoxStoreError } from './errors.ts';
import { checkSegment } from './names.ts';

export interface LayerFile {
  /** Relative path inside the layer directory, "/"-separated. */
  path: string;
  size: number;
  sha256: string;
}

export interface LayerManifest {
  profile: string;
  layer: string;
  key: string;
  createdAt: string;
  /** What the publisher recorded about the layer (JSON). */
  meta: Record<string, unknown>;
  files: LayerFile[];
}

const SHA256 = /^[0-9a-f]{64}$/;
const FILE_SEGMENT = /^[A-Za-z0-9_][A-Za-z0-9._-]*$/;

export function isLayerFilePath(path: string): boolean {
  return path !== '' && path.split('/').every((segment) => FILE_SEGMENT.test(segment));
}

export function parseLayerManifest(text: string, source: string): LayerManifest {
  const fail = (problem: string): never => {
    throw new BoxStoreError('invalid-layer', `invalid layer manifest ${source}: ${problem}`, source);
  };
  let value: unknown;
  try {
    value = parseJsonText(text, source);
  } catch (error) {
    if (!(error instanceof JsonSyntaxError)) throw error;
    throw new BoxStoreError('invalid-layer', `invalid layer manifest ${error.message}`, source, { cause: error });
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return fail('must be a JSON object');
  const m = value as Record<string, unknown>;
  for (const field of ['profile', 'layer', 'key'] as const) {
    try {
      checkSegment(field, m[field]);
    } catch (error) {
      fail((error as Error).message);
    }
  }
  if (typeof m.createdAt !== 'string' || Number.isNaN(Date.parse(m.createdAt))) fail('createdAt must be an ISO date');
  if (typeof m.meta !== 'object' || m.meta === null || Array.isArray(m.meta)) fail('meta must be an object');
  if (!Array.isArray(m.files)) return fail('files must be an array');
  m.files.forEach((f: unknown, i) => {
    const file = (typeof f === 'object' && f !== null ? f : {}) as Record<string, unknown>;
    if (typeof file.path !== 'string' || !isLayerFilePath(file.path)) {
      fail(`files[${i}].path must be a relative path of plain segments (got ${JSON.stringify(file.path)})`);
    }
    if (typeof file.size !== 'number' || !Number.isSafeInteger(file.size) || file.size < 0) fail(`files[${i}].size must be a size in bytes`);
    if (typeof file.sha256 !== 'string' || !SHA256.test(file.sha256)) fail(`files[${i}].sha256 must be 64 lowercase hex digits`);
  });
  return value as LayerManifest;
}

/** Newest first by createdAt (ISO strings of one format sort as text). */
export function newestLayers<T extends { createdAt: string }>(layers: readonly T[]): T[] {
  return [...layers].sort((a, b) => b.createdAt.localeCompare(a.createdAt));
}
