// index.json at the store root: what a reader over http cannot find by listing directories.
import { BoxStoreError } from './errors.ts';
import { isBoxName, isSegment } from './names.ts';

export interface StoreIndex {
  boxes: string[];
  /** Published layers by "<profile>/<layer>". */
  layers: Record<string, { key: string; createdAt: string }[]>;
}

export function parseStoreIndex(text: string, source: string): StoreIndex {
  const fail = (problem: string): never => {
    throw new BoxStoreError('invalid-catalog', `invalid store index ${source}: ${problem}`, source);
  };
  let value: Partial<StoreIndex>;
  try {
    value = JSON.parse(text) as Partial<StoreIndex>;
  } catch (error) {
    return fail((error as Error).message);
  }
  if (!Array.isArray(value.boxes) || !value.boxes.every(isBoxName)) fail('boxes must be a list of "<org>/<name>"');
  const layers = value.layers ?? {};
  if (typeof layers !== 'object' || Array.isArray(layers)) fail('layers must be an object');
  for (const [group, entries] of Object.entries(layers)) {
    const parts = group.split('/');
    const valid = parts.length === 2 && parts.every(isSegment) && Array.isArray(entries) &&
      entries.every((e) => isSegment(e?.key) && typeof e?.createdAt === 'string');
    if (!valid) fail(`layers["${group}"] must be a list of {key, createdAt} under "<profile>/<layer>"`);
  }
  return { boxes: value.boxes as string[], layers };
}
