import type { Problem } from './types.ts';

// A validator for the subset of JSON Schema (draft-07) that boxcar's schemas use: type (one or a
// list), properties, additionalProperties (false or a schema), required, propertyNames, enum, const,
// items, minItems, minimum, maximum, pattern, allOf, if/then, and $ref (within a schema file, or to
// another file of the same registry by file name). Each problem names its field path the way the
// rest of boxcar does (`nodes[1].memoryMb`, `artifacts[0].sha256`; '' is the document itself).
//
// Messages: a value of the wrong type says the expected type first ("must be an integer (number of
// MiB), got string "4096""); the other keywords say what is allowed and what was given. Two
// annotations, ignored by editors, shape them:
//   "x-unit": "MiB"       for numbers: "an integer (number of MiB)", "a whole number of MiB from 1 to 9"
//   "x-messages": { "type" | "enum" | "pattern" | "range" | "minItems" | "required": template }
//       a template may use {value} (the JSON given), {got} (its type and value), {allowed} (the
//       enum), {minimum}, {maximum}; without {value} or {got}, ", got ..." is appended (not to
//       "required", which is the whole message for a missing field).

export interface JsonSchema {
  $ref?: string;
  type?: JsonType | JsonType[];
  properties?: Record<string, JsonSchema>;
  additionalProperties?: boolean | JsonSchema;
  required?: string[];
  propertyNames?: JsonSchema;
  enum?: unknown[];
  const?: unknown;
  items?: JsonSchema;
  minItems?: number;
  minimum?: number;
  maximum?: number;
  pattern?: string;
  allOf?: JsonSchema[];
  if?: JsonSchema;
  then?: JsonSchema;
  definitions?: Record<string, JsonSchema>;
  'x-unit'?: string;
  'x-messages'?: Partial<Record<MessageKey, string>>;
  [annotation: string]: unknown;
}

export type JsonType = 'object' | 'array' | 'string' | 'number' | 'integer' | 'boolean' | 'null';
type MessageKey = 'type' | 'enum' | 'pattern' | 'range' | 'minItems' | 'required';

/** Schemas by file name (e.g. "profile.schema.json"), for $refs from one file to another. */
export type SchemaRegistry = Record<string, JsonSchema>;

const MISSING = 'nothing (field missing)';

/** Every problem of `value` against the schema registered as `file`. */
export function validateJson(value: unknown, registry: SchemaRegistry, file: string): Problem[] {
  const root = registry[file];
  if (!root) throw new Error(`no JSON schema named ${file}; known: ${Object.keys(registry).join(', ')}`);
  const problems: Problem[] = [];
  new Validator(registry, problems).check(value, root, file, '');
  return problems;
}

class Validator {
  constructor(
    private readonly registry: SchemaRegistry,
    private readonly problems: Problem[],
  ) {}

  /** `file` is the schema file that `schema` belongs to: where its local $refs point. */
  check(value: unknown, schema: JsonSchema, file: string, path: string): void {
    if (schema.$ref !== undefined) {
      const target = this.resolve(schema.$ref, file);
      this.check(value, target.schema, target.file, path);
      return;
    }
    const add = (message: string) => this.problems.push({ path, message });
    if (schema.type !== undefined && !matchesType(value, schema.type)) {
      add(typeMessage(schema, value));
      return;
    }
    const allowed = schema.enum ?? ('const' in schema ? [schema.const] : undefined);
    if (allowed !== undefined && !allowed.some((candidate) => sameJson(candidate, value))) {
      add(render(schema, 'enum', allowed.length === 1 ? `must be ${show(allowed[0])}` : 'must be one of {allowed}', value));
      return;
    }
    if (typeof value === 'string' && schema.pattern !== undefined && !patternOf(schema.pattern).test(value)) {
      add(render(schema, 'pattern', `must match ${schema.pattern}`, value));
    }
    if (typeof value === 'number' && outOfRange(value, schema)) add(render(schema, 'range', rangeText(schema), value));
    if (Array.isArray(value)) {
      if (schema.minItems !== undefined && value.length < schema.minItems) {
        add(render(schema, 'minItems', `must list at least ${schema.minItems} item${schema.minItems === 1 ? '' : 's'}`, value));
      }
      if (schema.items !== undefined) value.forEach((item, index) => this.check(item, schema.items!, file, `${path}[${index}]`));
    }
    if (isPlainObject(value)) this.checkObject(value, schema, file, path);
    for (const part of schema.allOf ?? []) this.check(value, part, file, path);
    if (schema.if !== undefined && schema.then !== undefined && this.passes(value, schema.if, file)) this.check(value, schema.then, file, path);
  }

  private checkObject(object: Record<string, unknown>, schema: JsonSchema, file: string, path: string): void {
    const properties = schema.properties ?? {};
    const at = (key: string) => (path === '' ? key : `${path}.${key}`);
    for (const key of Object.keys(object)) {
      if (schema.propertyNames !== undefined) this.checkName(key, schema.propertyNames, file, at(key));
      if (Object.hasOwn(properties, key)) continue;
      if (schema.additionalProperties === false) {
        const listed = Object.keys(properties).filter((name) => !name.startsWith('$') && name !== '//');
        this.problems.push({ path: at(key), message: `unknown field; allowed: ${listed.join(', ')}` });
      } else if (typeof schema.additionalProperties === 'object') {
        this.check(object[key], schema.additionalProperties, file, at(key));
      }
    }
    for (const key of schema.required ?? []) {
      if (object[key] === undefined) this.problems.push({ path: at(key), message: this.missingMessage(properties[key], file) });
    }
    for (const [key, property] of Object.entries(properties)) {
      if (object[key] !== undefined) this.check(object[key], property, file, at(key));
    }
  }

  /** A property name against `propertyNames`: its problems are the key's own, at the key's path. */
  private checkName(key: string, schema: JsonSchema, file: string, path: string): void {
    const problems: Problem[] = [];
    new Validator(this.registry, problems).check(key, schema, file, path);
    this.problems.push(...problems.map((problem) => ({ path, message: `field name ${problem.message}` })));
  }

  private missingMessage(property: JsonSchema | undefined, file: string): string {
    let schema = property;
    while (schema?.$ref !== undefined) schema = this.resolve(schema.$ref, file).schema;
    if (schema === undefined) return 'is required';
    const custom = schema['x-messages']?.required;
    if (custom !== undefined) return custom.replace(/\{(value|got)\}/g, MISSING);
    if (schema.type !== undefined) return typeMessage(schema, undefined);
    const allowed = schema.enum ?? ('const' in schema ? [schema.const] : undefined);
    if (allowed !== undefined) return render(schema, 'enum', allowed.length === 1 ? `must be ${show(allowed[0])}` : 'must be one of {allowed}', undefined);
    return 'is required';
  }

  private passes(value: unknown, schema: JsonSchema, file: string): boolean {
    const problems: Problem[] = [];
    new Validator(this.registry, problems).check(value, schema, file, '');
    return problems.length === 0;
  }

  private resolve(ref: string, file: string): { schema: JsonSchema; file: string } {
    const [target = '', pointer = ''] = ref.split('#');
    const targetFile = target === '' ? file : target.replace(/^\.\//, '');
    let schema: unknown = this.registry[targetFile];
    if (schema === undefined) throw new Error(`${file}: $ref ${ref}: no schema named ${targetFile}`);
    for (const segment of pointer.split('/').filter(Boolean)) {
      schema = (schema as Record<string, unknown>)[decodeURIComponent(segment).replace(/~1/g, '/').replace(/~0/g, '~')];
      if (schema === undefined) throw new Error(`${file}: $ref ${ref} points at nothing`);
    }
    return { schema: schema as JsonSchema, file: targetFile };
  }
}

const patterns = new Map<string, RegExp>();

/** JSON Schema patterns are ECMA-262 regular expressions, unanchored unless they say ^ and $. */
function patternOf(source: string): RegExp {
  let pattern = patterns.get(source);
  if (pattern === undefined) patterns.set(source, (pattern = new RegExp(source, 'u')));
  return pattern;
}

function matchesType(value: unknown, type: JsonType | JsonType[]): boolean {
  return (Array.isArray(type) ? type : [type]).some((one) => {
    switch (one) {
      case 'object':
        return isPlainObject(value);
      case 'array':
        return Array.isArray(value);
      case 'integer':
        return Number.isInteger(value);
      case 'number':
        return typeof value === 'number' && Number.isFinite(value);
      case 'null':
        return value === null;
      default:
        return typeof value === one;
    }
  });
}

function typePhrase(type: JsonType, unit: string | undefined): string {
  switch (type) {
    case 'integer':
      return `an integer${unit ? ` (number of ${unit})` : ''}`;
    case 'number':
      return `a number${unit ? ` (${unit})` : ''}`;
    case 'boolean':
      return 'true or false';
    case 'object':
      return 'an object';
    case 'array':
      return 'an array';
    case 'null':
      return 'null';
    default:
      return 'a string';
  }
}

function typeMessage(schema: JsonSchema, value: unknown): string {
  const types = Array.isArray(schema.type) ? schema.type : [schema.type!];
  // 1.5 for an integer is of the right JSON type, only not whole: its value says enough.
  const got = typeof value === 'number' && types.includes('integer') ? 'value' : 'got';
  return render(schema, 'type', `must be ${types.map((type) => typePhrase(type, schema['x-unit'])).join(' or ')}`, value, got);
}

function outOfRange(value: number, schema: JsonSchema): boolean {
  return (schema.minimum !== undefined && value < schema.minimum) || (schema.maximum !== undefined && value > schema.maximum);
}

function rangeText(schema: JsonSchema): string {
  const unit = schema['x-unit'];
  const whole = schema.type === 'integer' || (Array.isArray(schema.type) && schema.type.includes('integer'));
  const { minimum, maximum } = schema;
  if (minimum !== undefined && maximum !== undefined) return `must be ${whole ? 'a whole number' : 'a number'}${unit ? ` of ${unit}` : ''} from {minimum} to {maximum}`;
  return minimum !== undefined ? `must be at least {minimum}${unit ? ` ${unit}` : ''}` : `must be at most {maximum}${unit ? ` ${unit}` : ''}`;
}

/** The schema's own template for `key` if it has one, else `fallback`, filled in. */
function render(schema: JsonSchema, key: MessageKey, fallback: string, value: unknown, got: 'got' | 'value' = 'value'): string {
  return fill(schema['x-messages']?.[key] ?? fallback, schema, value, got);
}

function fill(template: string, schema: JsonSchema, value: unknown, got: 'got' | 'value'): string {
  const text = /\{(value|got)\}/.test(template) ? template : `${template}, got {${got}}`;
  return text.replace(/\{(value|got|allowed|minimum|maximum)\}/g, (_, name: string) => {
    if (name === 'value') return show(value);
    if (name === 'got') return describeGot(value);
    if (name === 'allowed') return (schema.enum ?? [schema.const]).map((item) => (typeof item === 'string' ? item : JSON.stringify(item))).join(', ');
    return String(schema[name as 'minimum' | 'maximum']);
  });
}

/** The value as JSON, shortened; "nothing (field missing)" for a missing one. */
export function show(value: unknown): string {
  if (value === undefined) return MISSING;
  const text = JSON.stringify(value);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

/** The value with its JSON type: `string "4096"`, `number 600`, `an object`, `an array`. */
function describeGot(value: unknown): string {
  if (value === undefined) return MISSING;
  if (value === null || typeof value === 'boolean') return String(value);
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') return 'an object';
  return `${typeof value} ${show(value)}`;
}

function sameJson(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
