// systemd unit files. A unit is data (sections of key/value pairs) so that tests read it back field by field.

export type UnitSection = [name: string, entries: [key: string, value: string][]];

export function renderUnit(sections: UnitSection[]): string {
  return `${sections.map(([name, entries]) => [`[${name}]`, ...entries.map(([key, value]) => `${key}=${value}`)].join('\n')).join('\n\n')}\n`;
}

/**
 * An ExecStart value: each flag on its own continuation line, positional arguments on the line before. systemd expands
 * `%` specifiers and `$` variables even inside quotes, so both are escaped; arguments that systemd would
 * split are double-quoted.
 */
export function execStart(argv: string[]): string {
  return argv.map((arg, i) => `${i > 0 && arg.startsWith('-') ? ' \\\n  ' : i > 0 ? ' ' : ''}${quoteArgument(arg)}`).join('');
}

function quoteArgument(arg: string): string {
  const escaped = arg.replaceAll('%', '%%').replaceAll('$', '$$$$');
  if (/^[A-Za-z0-9_@%+=:,./$-]+$/.test(escaped)) return escaped;
  return `"${escaped.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}
