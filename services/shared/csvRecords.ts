/**
 * CSV records with the physical line each starts on, read by fast-csv's public
 * API (RFC 4180; the tariff CSV of SPEC §6). What is exact is reading one
 * record at a time — a physical line, or several when a quoted field spans line
 * breaks: that gives every record (and every error) its line, and lets reading
 * go on after a malformed record, so a file's errors are all reported at once.
 *
 * A stream per line costs ~10–20 µs, so lines are first read by groups: when a
 * group of n lines gives n rows, no error and no cell with a line break, each
 * line was one record, and the group stands. Any other group is read again line
 * by line.
 */
import { parseString } from 'fast-csv';
import type { CsvLineError, CsvRow } from '../../engine/index.js';

/** A quoted field left open for this many lines is reported instead of swallowing the file. */
const MAX_LINES_PER_ROW = 50;
/** fast-csv's words for a quoted field still open at the end of its input: the record goes on at the next line. */
const OPEN_QUOTE = /missing closing/;

/** Lines read together when they are one record each. */
const GROUP_LINES = 1000;

/** The rows of `text` by fast-csv, or the error it stopped on. */
function parseRecord(text: string, delimiter: string): Promise<{ rows: string[][]; error?: Error }> {
  return new Promise((resolve) => {
    const rows: string[][] = [];
    parseString<string[], string[]>(text, { delimiter, ignoreEmpty: false })
      .on('data', (row: string[]) => rows.push(row))
      .on('error', (error: Error) => resolve({ rows, error }))
      .on('end', () => resolve({ rows }));
  });
}

function firstLine(s: string): string {
  const nl = s.search(/\r?\n/);
  return (nl === -1 ? s : s.slice(0, nl)).slice(0, 200);
}

/**
 * The records of `body` (no BOM), each with the 1-based physical line it starts
 * on, and in their place the records that cannot be read: malformed quoting, a
 * quoted field never closed. Blank lines are records with no cell.
 */
export async function readCsvRecords(body: string, delimiter: string): Promise<(CsvRow | CsvLineError)[]> {
  const out: (CsvRow | CsvLineError)[] = [];
  let pending = '';
  let pendingStart = 0;
  let lineNo = 0;
  let pos = 0;
  /** Up to there, a group did not stand: line by line. */
  let slowUntil = 0;
  while (pos < body.length) {
    if (pending === '' && pos >= slowUntil) {
      let end = pos;
      let lines = 0;
      while (lines < GROUP_LINES && end < body.length) {
        const nl = body.indexOf('\n', end);
        end = nl === -1 ? body.length : nl + 1;
        lines++;
      }
      const { rows, error } = await parseRecord(body.slice(pos, end), delimiter);
      if (error === undefined && rows.length === lines && rows.every((r) => r.every((c) => !c.includes('\n')))) {
        for (const cells of rows) out.push({ line: ++lineNo, cells });
        pos = end;
        continue;
      }
      slowUntil = end;
    }
    const nl = body.indexOf('\n', pos);
    const end = nl === -1 ? body.length : nl + 1;
    lineNo++;
    if (pending === '') pendingStart = lineNo;
    const text = pending + body.slice(pos, end);
    pos = end;
    const { rows, error } = await parseRecord(text, delimiter);
    pending = '';
    if (error === undefined) {
      for (const cells of rows) out.push({ line: pendingStart, cells });
    } else if (OPEN_QUOTE.test(error.message) && pos < body.length) {
      if (lineNo - pendingStart >= MAX_LINES_PER_ROW) {
        out.push({ line: pendingStart, field: 'row', value: firstLine(text), message: 'unterminated quoted field' });
      } else pending = text;
    } else {
      out.push({ line: pendingStart, field: 'row', value: firstLine(text), message: `malformed CSV quoting: ${error.message}` });
    }
  }
  return out;
}
