/**
 * Words for sh: what the powerbox runs in a guest, and the commands ferry
 * tells its user to run.
 */

/** shellQuote writes `word` as one single-quoted word for sh. */
export function shellQuote(word: string): string {
  return `'${word.replaceAll("'", "'\\''")}'`;
}

/** shellWord writes `word` as one word for sh: as it is where nothing in it needs quoting, else quoted. */
export function shellWord(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : shellQuote(word);
}
