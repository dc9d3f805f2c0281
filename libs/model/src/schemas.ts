import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { validateJson, type JsonSchema, type SchemaRegistry } from './json-schema.ts';
import type { Problem } from './types.ts';

// The JSON Schemas of boxcar's data files (libs/model/schemas/). Each data file names its schema
// with "$schema" (a path relative to the file), so that an editor completes and checks it; the
// loaders check the same schema, then the meaning of the values in code.

export const SCHEMAS_DIR = fileURLToPath(new URL('../schemas/', import.meta.url));

export const SCHEMA_FILES = {
  clusterConfig: 'cluster-config.schema.json',
  profile: 'profile.schema.json',
  layers: 'layers.schema.json',
  artifactsLock: 'artifacts-lock.schema.json',
} as const;

export type SchemaName = keyof typeof SCHEMA_FILES;

let registry: SchemaRegistry | undefined;

/** Every schema file, read once (they $ref each other by file name). */
export function schemaRegistry(): SchemaRegistry {
  registry ??= Object.fromEntries(
    Object.values(SCHEMA_FILES).map((file) => [file, JSON.parse(readFileSync(`${SCHEMAS_DIR}${file}`, 'utf8')) as JsonSchema]),
  );
  return registry;
}

/** The problems of a data file's content against its schema: shape only (types, fields, enums, patterns, ranges). */
export function checkShape(name: SchemaName, document: unknown): Problem[] {
  return validateJson(document, schemaRegistry(), SCHEMA_FILES[name]);
}

/** The document without its "$schema" key: an editor's hint, not data. */
export function withoutSchemaKey<T>(document: T): T {
  if (typeof document !== 'object' || document === null || Array.isArray(document) || !('$schema' in document)) return document;
  const { $schema: _schema, ...rest } = document as Record<string, unknown>;
  return rest as T;
}
