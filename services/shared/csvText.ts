/**
 * The bytes of a CSV file as text, whatever a spreadsheet saved them as — the
 * one reading every CSV import goes through (users, CDRs, tariffs, devices):
 *
 * - UTF-8, with or without a BOM (SPEC §6);
 * - UTF-16 with its BOM (Excel's "Unicode text");
 * - a file that is not UTF-8: its encoding is detected (`chardet`) and, when it
 *   is a Latin-script single-byte one — what French Excel saves "CSV (separator:
 *   semicolon)" as — it is read as Windows-1252 (`iconv-lite`; a superset of
 *   ISO-8859-1's printable characters, with € and Œ) and the answer says so;
 * - anything else (another script, binary, a file mixing encodings, bytes that
 *   Windows-1252 does not define) is refused with the line it is on.
 *
 * The replacement character U+FFFD is never let through: a file that carries
 * one lost a character in an earlier conversion, and storing it would print
 * `Fran�ois` on every invoice.
 *
 * Streaming: `push` each chunk, then `end`. The encoding is decided at the first
 * byte that is not ASCII; a file that changes encoding later is refused.
 */
import chardet from 'chardet';
import iconv from 'iconv-lite';
import { ValidationError } from './errors.js';

export const csvEncodings = ['utf-8', 'windows-1252', 'utf-16le', 'utf-16be'] as const;
export type CsvEncoding = (typeof csvEncodings)[number];

/** What reading the file found out, for the import's answer. */
export interface CsvReading {
  encoding: CsvEncoding;
  /** Sentences for the answer: a conversion made, a BOM removed. */
  notes: string[];
}

/** chardet's names for Latin-script single-byte encodings: a file in one of them is read as Windows-1252. */
const LATIN_SINGLE_BYTE = /^(ISO-8859-(1|2|3|4|9|10|13|14|15|16)|windows-125[0278])$/;
/** Bytes Windows-1252 leaves undefined: a file holding one is not Windows-1252. */
const CP1252_UNDEFINED = new Set([0x81, 0x8d, 0x8f, 0x90, 0x9d]);
const REPLACEMENT = '\uFFFD';
/** Bytes the encoding is detected on (more if the chunk has more). */
const DETECTION_SAMPLE = 4096;

const SAVE_AS_UTF8 = 'save the file as "CSV UTF-8" (Excel: File › Save As › CSV UTF-8) and send it again';

type Decode = (bytes: Uint8Array, last: boolean) => string;

export class CsvDecoder {
  private decode: Decode | undefined;
  private chosen: CsvEncoding = 'utf-8';
  private readonly noteList: string[] = [];
  /** Bytes held back until the first 3 are known (a BOM). */
  private head: Uint8Array = new Uint8Array(0);
  /** 1 + line breaks decoded so far. */
  private line = 1;
  /** Text other than ASCII was decoded as UTF-8 already: the file cannot turn out to be another encoding. */
  private sawUtf8 = false;
  /** The bytes of an incomplete UTF-8 sequence at the end of the previous chunk. */
  private carry: Uint8Array = new Uint8Array(0);
  /** The line of the first byte that is not UTF-8, while bytes are held back to detect the encoding. */
  private detectAt: number | undefined;
  private readonly utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

  get reading(): CsvReading {
    return { encoding: this.chosen, notes: [...this.noteList] };
  }

  /** The text of the next chunk (may be empty while the first bytes are held back). */
  push(chunk: Uint8Array | string): string {
    if (typeof chunk === 'string') return this.checked(chunk);
    if (this.decode === undefined) {
      this.head = concat(this.head, chunk);
      if (this.head.length < 3) return '';
      return this.start(false);
    }
    return this.checked(this.decode(chunk, false));
  }

  /** The text of what is left. */
  end(): string {
    if (this.decode === undefined) return this.start(true);
    return this.checked(this.decode(new Uint8Array(0), true));
  }

  private start(last: boolean): string {
    const b = this.head;
    this.head = new Uint8Array(0);
    let body = b;
    if (b[0] === 0xef && b[1] === 0xbb && b[2] === 0xbf) {
      body = b.subarray(3);
      this.noteList.push('the UTF-8 byte order mark (BOM) at the start of the file was removed');
      this.decode = (bytes, end) => this.fromUtf8(bytes, end, false);
    } else if ((b[0] === 0xff && b[1] === 0xfe) || (b[0] === 0xfe && b[1] === 0xff)) {
      this.chosen = b[0] === 0xff ? 'utf-16le' : 'utf-16be';
      body = b.subarray(2);
      this.noteList.push(`the file was read as ${this.chosen.toUpperCase()} (its byte order mark says so) and converted to UTF-8`);
      const decoder = iconv.getDecoder(this.chosen, { stripBOM: false });
      this.decode = (bytes, end) => decoder.write(Buffer.from(bytes)) + (end ? (decoder.end() ?? '') : '');
    } else {
      this.decode = (bytes, end) => this.fromUtf8(bytes, end, true);
    }
    return this.checked(this.decode(body, last));
  }

  /** UTF-8; at the first byte that is not, the file's encoding is detected when `mayDetect` (no BOM). */
  private fromUtf8(chunk: Uint8Array, end: boolean, mayDetect: boolean): string {
    const bytes = this.carry.length > 0 ? concat(this.carry, chunk) : chunk;
    if (this.detectAt !== undefined) return this.detect(bytes, end, this.detectAt);
    const keep = end ? 0 : incompleteTail(bytes);
    const whole = bytes.subarray(0, bytes.length - keep);
    try {
      const text = this.utf8.decode(whole);
      this.carry = bytes.slice(bytes.length - keep);
      if (!this.sawUtf8 && hasNonAscii(whole)) this.sawUtf8 = true;
      return text;
    } catch {
      const before = new TextDecoder('utf-8').decode(whole).split(REPLACEMENT, 1)[0]!;
      const at = this.line + lineBreaks(before);
      if (!mayDetect) throw refusal(at, `line ${at} is not UTF-8, though the file starts with a UTF-8 byte order mark; ${SAVE_AS_UTF8}`);
      if (this.sawUtf8 || /[\u0080-\uffff]/.test(before)) throw refusal(at, `line ${at} is not UTF-8 while the lines before it are: the file mixes two encodings; ${SAVE_AS_UTF8}`);
      return this.detect(bytes, end, at);
    }
  }

  /** Detection wants a few KB to be sure: the bytes are held back until there are that many, or the file ends. */
  private detect(bytes: Uint8Array, end: boolean, at: number): string {
    if (!end && bytes.length < DETECTION_SAMPLE) {
      this.detectAt = at;
      this.carry = bytes;
      return '';
    }
    this.detectAt = undefined;
    return this.toWindows1252(bytes, at);
  }

  /** The rest of the file (from `bytes`, everything before was ASCII) as Windows-1252, when that is what it is. */
  private toWindows1252(bytes: Uint8Array, at: number): string {
    const detected = chardet.analyse(bytes)[0]?.name ?? 'unknown';
    const undefinedByte = bytes.findIndex((x) => CP1252_UNDEFINED.has(x));
    if (!LATIN_SINGLE_BYTE.test(detected) || undefinedByte !== -1) {
      throw refusal(at, `line ${at} is not UTF-8, and its encoding (${detected}, by detection) is not one this import can read for sure; ${SAVE_AS_UTF8}`);
    }
    this.chosen = 'windows-1252';
    this.noteList.push(
      `the file is not UTF-8: it was read as Windows-1252 (the "ANSI" encoding of CSV files saved by Excel in Western Europe; detected: ${detected}) and converted to UTF-8`,
    );
    const decoder = iconv.getDecoder('windows-1252');
    this.decode = (next, end) => {
      if (next.findIndex((x) => CP1252_UNDEFINED.has(x)) !== -1) {
        throw refusal(this.line, `near line ${this.line} the file holds bytes that Windows-1252 does not define; ${SAVE_AS_UTF8}`);
      }
      return decoder.write(Buffer.from(next)) + (end ? (decoder.end() ?? '') : '');
    };
    const text = decoder.write(Buffer.from(bytes));
    this.carry = new Uint8Array(0);
    return text;
  }

  /** Counts lines, and refuses U+FFFD. */
  private checked(text: string): string {
    const bad = text.indexOf(REPLACEMENT);
    if (bad !== -1) {
      const at = this.line + lineBreaks(text.slice(0, bad));
      throw refusal(
        at,
        `line ${at} holds the replacement character � (U+FFFD): a letter was already lost when this file was converted before; correct that line (or export the file again as CSV UTF-8)`,
      );
    }
    this.line += lineBreaks(text);
    return text;
  }
}

/** The whole text of a file's bytes, and how it was read. */
export function decodeCsv(bytes: Uint8Array): { text: string } & CsvReading {
  const decoder = new CsvDecoder();
  const text = decoder.push(bytes) + decoder.end();
  return { text, ...decoder.reading };
}

function refusal(line: number, message: string): ValidationError {
  return new ValidationError('the file cannot be read as text', [{ line, field: 'encoding', message }]);
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  if (a.length === 0) return b;
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

function hasNonAscii(bytes: Uint8Array): boolean {
  for (let i = 0; i < bytes.length; i++) if (bytes[i]! >= 0x80) return true;
  return false;
}

/** How many bytes at the end of `bytes` start a UTF-8 sequence the chunk does not complete (0–3). */
function incompleteTail(bytes: Uint8Array): number {
  for (let back = 1; back <= Math.min(3, bytes.length); back++) {
    const b = bytes[bytes.length - back]!;
    if (b < 0x80) return 0;
    if (b >= 0xc0) {
      const length = b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : 2;
      return length > back ? back : 0;
    }
  }
  return 0;
}

function lineBreaks(text: string): number {
  let n = 0;
  for (let k = text.indexOf('\n'); k !== -1; k = text.indexOf('\n', k + 1)) n++;
  return n;
}

// ---- header lines ------------------------------------------------------------

/** A cell of data in the CSV formats without a header: digits, a number, a date, a duration. */
const DATA_CELL = /^[+\d\s.:,/()'-]+$/;
/** A cell that reads like a column name. */
const NAME_CELL = /^\p{L}[\p{L}\p{N} _'./()-]*$/u;

/**
 * Whether a file's first record looks like a header line (column names) rather
 * than data: at least two cells read like names and none reads like data (a
 * number, an identifier, a date). For the formats whose first line is data
 * (users, Asterisk, FreeSWITCH): their lines all hold digits.
 */
export function looksLikeHeader(cells: readonly string[]): boolean {
  let names = 0;
  for (const raw of cells) {
    const cell = raw.trim();
    if (cell === '') continue;
    if (DATA_CELL.test(cell)) return false;
    if (NAME_CELL.test(cell)) names++;
  }
  return names >= 2;
}

/** The one error of a header line in a format that has none: which line, what it holds. */
export function headerLineMessage(cells: readonly string[], format: string): string {
  const shown = cells
    .slice(0, 3)
    .map((c) => `"${c.trim().slice(0, 40)}"`)
    .join(', ');
  return `the file must have no header line: line 1 (${shown}${cells.length > 3 ? ', …' : ''}) looks like column names, and a ${format} file starts with its first record; delete that line and import again`;
}
