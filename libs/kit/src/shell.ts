/**
 * One word for sh, bash or zsh that reaches the command unchanged, whatever it contains. Every word is
 * quoted, even a plain one: what a shell treats specially differs between shells (zsh expands a
 * leading `=`), and generated commands that land in content keys and configuration hashes must not
 * change when a rule for bare words would.
 */
export function shellQuote(word: string): string {
  return `'${word.replaceAll("'", `'\\''`)}'`;
}

/** The same for a command printed for a person to read and paste: plain words stay bare. */
export function shellQuoteForPeople(word: string): string {
  return /^[\w@%+:,./-]+$/.test(word) ? word : shellQuote(word);
}
