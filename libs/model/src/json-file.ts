import { readFileSync } from 'node:fs';
import { locateJsonSyntaxError } from './json-syntax.ts';

export class JsonSyntaxError extends Error {
  constructor(
    readonly file: string,
    readonly line: number,
    readonly column: number,
    detail: string,
  ) {
    super(`${file}:${line}:${column}: invalid JSON: ${detail}`);
    this.name = 'JsonSyntaxError';
  }
}

/** JSON.parse with the error located by line and column (V8 gives an offset at best). */
export function parseJsonText(text: string, file: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    const located = locateJsonSyntaxError(text);
    if (!located) throw error;
    throw new JsonSyntaxError(file, located.line, located.column, located.reason);
  }
}

export function readJsonFile(file: string): unknown {
  return parseJsonText(readFileSync(file, 'utf8'), file);
}
