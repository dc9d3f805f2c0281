// A YAML emitter for plain data (manifests, kubeconfigs). Strings are always double-quoted, JSON style, so
// that YAML 1.1 readers such as the 2016 kubelet never turn "on", "0644" or "1.10" into something else.

export function toYaml(value: unknown): string {
  return `${lines(value).join('\n')}\n`;
}

function lines(value: unknown): string[] {
  if (Array.isArray(value)) {
    if (value.length === 0) return ['[]'];
    return value.flatMap((item) => {
      const [first = '', ...rest] = lines(item);
      return [`- ${first}`, ...rest.map((line) => `  ${line}`)];
    });
  }
  if (isRecord(value)) {
    const entries = Object.entries(value).filter(([, v]) => v !== undefined);
    if (entries.length === 0) return ['{}'];
    return entries.flatMap(([key, v]) => {
      const inner = lines(v);
      return isNested(v) ? [`${yamlKey(key)}:`, ...inner.map((line) => `  ${line}`)] : [`${yamlKey(key)}: ${inner[0]}`];
    });
  }
  return [scalar(value)];
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isNested(value: unknown): boolean {
  return Array.isArray(value) ? value.length > 0 : isRecord(value) && Object.keys(value).length > 0;
}

function yamlKey(key: string): string {
  return /^[A-Za-z_][A-Za-z0-9_.-]*$/.test(key) ? key : JSON.stringify(key);
}

function scalar(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  if (typeof value === 'boolean') return String(value);
  if (value === null) return 'null';
  throw new Error(`cannot write ${String(value)} (${typeof value}) as YAML`);
}
