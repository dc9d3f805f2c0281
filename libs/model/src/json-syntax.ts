// Locates the first syntax error in a JSON text. JSON.parse reports a position only for some
// errors and only as an offset (its wording also varies between Node versions); people editing
// a lock file need a line and a column.

export interface JsonSyntaxLocation {
  line: number;
  column: number;
  reason: string;
}

class Failure {
  constructor(
    readonly offset: number,
    readonly reason: string,
  ) {}
}

export function locateJsonSyntaxError(text: string): JsonSyntaxLocation | undefined {
  try {
    const end = skipWhitespace(text, parseValue(text, skipWhitespace(text, 0)));
    if (end < text.length) throw new Failure(end, `unexpected ${describe(text, end)} after the end of the document`);
    return undefined;
  } catch (error) {
    if (!(error instanceof Failure)) throw error;
    return { ...lineAndColumn(text, error.offset), reason: error.reason };
  }
}

export function lineAndColumn(text: string, offset: number): { line: number; column: number } {
  const before = text.slice(0, offset);
  const lineStart = before.lastIndexOf('\n') + 1;
  return { line: before.split('\n').length, column: offset - lineStart + 1 };
}

function describe(text: string, at: number): string {
  return at >= text.length ? 'end of input' : `character ${JSON.stringify(text[at])}`;
}

function skipWhitespace(text: string, at: number): number {
  while (at < text.length && ' \t\n\r'.includes(text[at] as string)) at++;
  return at;
}

// Each parser takes the offset of the value's first character and returns the offset after it.
function parseValue(text: string, at: number): number {
  const c = text[at];
  if (c === '{') return parseObject(text, at);
  if (c === '[') return parseArray(text, at);
  if (c === '"') return parseString(text, at);
  if (c === '-' || (c !== undefined && c >= '0' && c <= '9')) return parseNumber(text, at);
  for (const literal of ['true', 'false', 'null']) {
    if (text.startsWith(literal, at)) return at + literal.length;
  }
  throw new Failure(at, `expected a value, found ${describe(text, at)}`);
}

function parseObject(text: string, at: number): number {
  at = skipWhitespace(text, at + 1);
  if (text[at] === '}') return at + 1;
  for (;;) {
    if (text[at] !== '"') throw new Failure(at, `expected a double-quoted property name, found ${describe(text, at)}`);
    at = skipWhitespace(text, parseString(text, at));
    if (text[at] !== ':') throw new Failure(at, `expected ':' after the property name, found ${describe(text, at)}`);
    at = skipWhitespace(text, parseValue(text, skipWhitespace(text, at + 1)));
    if (text[at] === '}') return at + 1;
    if (text[at] !== ',') throw new Failure(at, `expected ',' or '}' after a property value, found ${describe(text, at)}`);
    at = skipWhitespace(text, at + 1);
  }
}

function parseArray(text: string, at: number): number {
  at = skipWhitespace(text, at + 1);
  if (text[at] === ']') return at + 1;
  for (;;) {
    at = skipWhitespace(text, parseValue(text, at));
    if (text[at] === ']') return at + 1;
    if (text[at] !== ',') throw new Failure(at, `expected ',' or ']' after an array element, found ${describe(text, at)}`);
    at = skipWhitespace(text, at + 1);
  }
}

function parseString(text: string, at: number): number {
  for (let i = at + 1; i < text.length; i++) {
    const c = text[i] as string;
    if (c === '"') return i + 1;
    if (c < ' ') throw new Failure(i, 'control character inside a string (escape it, e.g. \\n)');
    if (c === '\\') {
      const escape = text[i + 1];
      if (escape === 'u') {
        if (!/^[0-9a-fA-F]{4}$/.test(text.slice(i + 2, i + 6))) throw new Failure(i, 'invalid \\u escape (needs 4 hex digits)');
        i += 5;
      } else if (escape !== undefined && '"\\/bfnrt'.includes(escape)) {
        i += 1;
      } else {
        throw new Failure(i, `invalid escape ${describe(text, i + 1)} in a string`);
      }
    }
  }
  throw new Failure(text.length, 'unterminated string');
}

function parseNumber(text: string, at: number): number {
  const match = /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/.exec(text.slice(at));
  if (match === null) throw new Failure(at, `invalid number starting with ${describe(text, at)}`);
  return at + match[0].length;
}
