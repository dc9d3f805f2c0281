// Packer's -machine-readable output: `timestamp,target,type,data...` per line. Commas inside data
// are written as %!(PACKER_COMMA) and newlines as a literal \n. On Packer 1.6 `ui` lines carry no
// target (the build name is inside the text); `artifact` and `error` lines do.

export interface PackerEvent {
  timestamp: number;
  target: string;
  type: string;
  data: string[];
}

export function unescapeField(field: string): string {
  return field.replaceAll('%!(PACKER_COMMA)', ',').replaceAll('\\n', '\n').replaceAll('\\r', '\r');
}

export function parseMachineReadableLine(line: string): PackerEvent | undefined {
  const fields = line.replace(/\r$/, '').split(',');
  if (fields.length < 3 || !/^\d+$/.test(fields[0]!)) return undefined;
  return { timestamp: Number(fields[0]), target: fields[1]!, type: fields[2]!, data: fields.slice(3).map(unescapeField) };
}

/** What a person wants to see of an event: the ui text, or the error. */
export function eventText(event: PackerEvent): string | undefined {
  if (event.type === 'ui') return event.data.slice(1).join(',').trim() || undefined;
  if (event.type === 'error') return `error: ${event.data.join(',').trim()}`;
  return undefined;
}

/**
 * A step is a `==> build.type.source: ...` line: Packer prints one when it starts each stage
 * (waiting for SSH, each provisioner, shutdown, each post-processor).
 */
export function stepOf(text: string): string | undefined {
  const match = /^==> [^:]+: (.*)$/m.exec(text);
  return match?.[1]?.trim();
}
