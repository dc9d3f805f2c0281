/** Quotes a word for bash: the result is always one word, whatever it contains. */
export function shq(word: string): string {
  return `'${word.replaceAll("'", `'\\''`)}'`;
}
