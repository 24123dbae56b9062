/**
 * The one CSV writer of the code base (`labeler export --format csv`, `labeler query
 * --format csv`): the same cells give the same bytes whichever command writes them.
 * Reading CSV (ground truth) is ground-truth.ts's `csvRows`.
 */

/** A cell: text, a number, or nothing (an empty field). */
export type CsvCell = string | number | undefined;

/** Leading characters that make a spreadsheet read a cell as a formula (OWASP, CSV injection). */
const FORMULA_START = /^[=+\-@\t\r]/;

/**
 * A text cell as a spreadsheet should show it: one that starts with `=`, `+`, `-`, `@`,
 * a tab or a carriage return (a key such as `=cmd|calc.png`) gets a leading single quote,
 * as OWASP recommends, so Excel, LibreOffice and Sheets read it as text, never run it.
 * Numbers are never touched (decision 0026).
 */
export function spreadsheetSafe(text: string): { text: string; neutralised: boolean } {
  return FORMULA_START.test(text) ? { text: `'${text}`, neutralised: true } : { text, neutralised: false };
}

/**
 * One RFC 4180 record: a field is quoted when it holds a quote, comma, CR or LF, or
 * starts or ends with a space (which some readers trim), or was neutralised as a
 * formula (`spreadsheetSafe`), quotes doubled inside; an absent value is an empty
 * field. Records end with CRLF, as the RFC has them.
 */
export function csvLine(fields: readonly CsvCell[]): string {
  return `${fields
    .map((field) => {
      if (field === undefined) return '';
      if (typeof field === 'number') return String(field);
      const { text, neutralised } = spreadsheetSafe(field);
      return neutralised || /[",\r\n]|^\s|\s$/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
    })
    .join(',')}\r\n`;
}
