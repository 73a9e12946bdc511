// One line of a users CSV (SPEC §6), checked once, field by field, with the
// rules of fields.ts. A line without error becomes a row of the file table
// (importFile.ts) in COPY text format; a line with errors adds every one of
// them to the list, its numbers all parsed so that each bad one is named.
//
// Checks run on character codes where the file itself holds the value (a field
// without quotes): a line of an export is checked and copied without a slice
// per field, its 10 number cells in one piece. Number cells that can be copied
// as written are, and compared with the stored numbers later (importPlan.ts):
// only the ones that differ are ever parsed.
import { fullFieldCount, isTrimmedSpace, portalFieldCount, unescapeFormula, type UsersCsvReader } from './csv.js';
import {
  digitsKey,
  digitsMessage,
  forfaitMinutesValue,
  identifiantRule,
  matriculeRule,
  maxForfaitMinutes,
  nameProblemAt,
  slotCount,
  type DigitsRule,
  type NumberParser,
} from './fields.js';
import type { ImportErrors } from './importErrors.js';
import { LineIndex } from './lineIndex.js';

const copySpecial = /[\\\t\n\r]/;
const copySpecialAll = /[\\\t\n\r]/g;
const copyEscapes: Record<string, string> = { '\\': '\\\\', '\t': '\\t', '\n': '\\n', '\r': '\\r' };

/** A value in COPY's text format. */
export function copyText(value: string): string {
  return copySpecial.test(value) ? value.replace(copySpecialAll, (ch) => copyEscapes[ch]!) : value;
}

/** A character String.prototype.trim may remove (or a control character it keeps: trim itself decides). */
function mayTrim(ch: number): boolean {
  return ch <= 32 || (ch >= 0xa0 && isTrimmedSpace(ch));
}

/**
 * Whether the number cell text[from, to) (not empty) can be copied as written:
 * nothing to trim, no formula prefix, printable ASCII without a backslash or a
 * comma (the cells are joined with commas).
 */
function copiableNumber(text: string, from: number, to: number): boolean {
  if (text.charCodeAt(from) <= 32 || text.charCodeAt(to - 1) <= 32 || text.charCodeAt(from) === 39 /* ' */) return false;
  for (let k = from; k < to; k++) {
    const ch = text.charCodeAt(k);
    if (ch < 32 || ch > 126 || ch === 92 /* \ */ || ch === 44 /* , */) return false;
  }
  return true;
}

function equalsAt(text: string, from: number, to: number, word: string): boolean {
  return to - from === word.length && text.startsWith(word, from);
}

/** The words an optional field takes (any case) and what each is in COPY. */
type Words = readonly (readonly [word: string, copy: string])[];
const statusWords: Words = [
  ['enabled', 'enabled'],
  ['disabled', 'disabled'],
];
const billingWords: Words = [
  ['1', 't'],
  ['true', 't'],
  ['0', 'f'],
  ['false', 'f'],
];

const allSlots = (1 << slotCount) - 1;

export class LineChecker {
  /** matricule → the first line it is on (lines with errors included: a duplicate names that line) */
  readonly matricules: LineIndex;
  private readonly identifiants: LineIndex;
  private readonly numbers: string[] = new Array<string>(slotCount);
  // the current record: field k is text.slice(bounds[2k], bounds[2k + 1]), or
  // values[k] for a record with quotes (whose values exist only as strings)
  private text = '';
  private bounds = new Int32Array(0);
  private values: string[] | undefined;
  // the field being checked, trimmed: t.slice(f, e)
  private t = '';
  private f = 0;
  private e = 0;

  constructor(
    private readonly reader: UsersCsvReader,
    private readonly parser: NumberParser,
    private readonly errors: ImportErrors,
  ) {
    // sized for a line every 50 characters (a name and a number or two): most
    // files fill them without growing them, a file of shorter lines grows them
    const expected = Math.ceil(reader.text.length / 50);
    this.matricules = new LineIndex(expected);
    this.identifiants = new LineIndex(expected);
  }

  /**
   * The reader's current record as a row of user_import_file (line, full name,
   * matricule, identifiant, numbers, forfait minutes, account status, billing
   * enabled: the table's column order), or undefined when it has errors.
   */
  row(): string | undefined {
    const r = this.reader;
    const { line, count } = r;
    this.text = r.text;
    this.bounds = r.bounds;
    this.values = r.quoted ? r.readFields() : undefined;
    if (count < portalFieldCount || count > fullFieldCount) {
      this.errors.add({
        line,
        field: 'fieldCount',
        value: String(count),
        message: `a line has ${portalFieldCount} fields (name, matricule, identifiant, 10 numbers) and up to 3 optional ones; this one has ${count}`,
      });
      return undefined;
    }
    const before = this.errors.total;
    const name = this.fullName(line);
    const matricule = this.digits(matriculeRule, this.matricules, 1, line);
    const identifiant = this.digits(identifiantRule, this.identifiants, 2, line);
    const optional = this.optionalFields(line, count);
    const numbers = this.numberCells(line, this.errors.total === before);
    if (this.errors.total !== before) return undefined;
    return `${line}\t${name}\t${matricule}\t${identifiant}\t${numbers}\t${optional}\n`;
  }

  /** Points t, f, e at field k as written. */
  private field(k: number): void {
    const values = this.values;
    if (values === undefined) {
      this.t = this.text;
      this.f = this.bounds[2 * k]!;
      this.e = this.bounds[2 * k + 1]!;
    } else {
      const value = values[k]!;
      this.t = value;
      this.f = 0;
      this.e = value.length;
    }
  }

  /** Points t, f, e at field k, trimmed as String.prototype.trim does. */
  private trimmed(k: number): void {
    this.field(k);
    let { t, f, e } = this;
    if (e > f && (mayTrim(t.charCodeAt(f)) || mayTrim(t.charCodeAt(e - 1)))) {
      t = t.slice(f, e).trim();
      f = 0;
      e = t.length;
    }
    this.t = t;
    this.f = f;
    this.e = e;
  }

  /** Field k as the file writes it (an error's value). */
  private written(k: number): string {
    return this.reader.readFields()[k]!;
  }

  private fullName(line: number): string {
    this.trimmed(0);
    let { t, f, e } = this;
    if (e - f > 1 && t.charCodeAt(f) === 39 /* ' */) {
      // the export's formula guard, removed again
      t = unescapeFormula(t.slice(f, e));
      f = 0;
      e = t.length;
    }
    const problem = nameProblemAt(t, f, e);
    if (problem !== undefined) {
      this.errors.add({ line, field: 'fullName', value: this.written(0), message: problem });
      return '';
    }
    const name = t.slice(f, e);
    // a name has no control characters: a backslash is all COPY may need escaped
    return name.includes('\\') ? copyText(name) : name;
  }

  /** A matricule or identifiant: the rule, then unique in the file. */
  private digits(rule: DigitsRule, index: LineIndex, k: number, line: number): string {
    // digits need no trimming: the field is trimmed only when it is not digits as written
    this.field(k);
    let key = digitsKey(rule, this.t, this.f, this.e);
    if (key < 0) {
      this.trimmed(k);
      key = digitsKey(rule, this.t, this.f, this.e);
    }
    const { t, f, e } = this;
    if (key < 0) {
      this.errors.add({ line, field: rule.field, value: this.written(k), message: digitsMessage(rule, t.slice(f, e)) });
      return '';
    }
    const value = t.slice(f, e);
    const first = index.get(key);
    if (first !== 0) {
      this.errors.add({ line, field: rule.field, value, message: `duplicate ${rule.field}: already on line ${first}` });
      return '';
    }
    index.add(key, line);
    return value;
  }

  /** Fields 14 to 16 as COPY values, \N when absent or empty (the user's value, or the default, stays). */
  private optionalFields(line: number, count: number): string {
    let minutes = '\\N';
    if (count > 13) {
      this.field(13);
      let value = forfaitMinutesValue(this.t, this.f, this.e);
      if (value < 0) {
        this.trimmed(13);
        value = forfaitMinutesValue(this.t, this.f, this.e);
      }
      const { t, f, e } = this;
      if (e > f) {
        if (value >= 0) minutes = String(value);
        else this.errors.add({ line, field: 'forfaitMinutes', value: t.slice(f, e), message: `forfait minutes must be a whole number from 0 to ${maxForfaitMinutes}` });
      }
    }
    const status = count > 14 ? this.word(14, statusWords, line, 'accountStatus', 'account status must be enabled or disabled') : '\\N';
    const billing = count > 15 ? this.word(15, billingWords, line, 'billingEnabled', 'billing enabled must be 1 or 0') : '\\N';
    return `${minutes}\t${status}\t${billing}`;
  }

  private word(k: number, words: Words, line: number, field: string, message: string): string {
    // the words have no spaces: the field is trimmed only when it is not one as written
    this.field(k);
    for (let w = 0; w < words.length; w++) if (equalsAt(this.t, this.f, this.e, words[w]![0])) return words[w]![1];
    this.trimmed(k);
    const { t, f, e } = this;
    if (e === f) return '\\N';
    const cell = t.slice(f, e);
    const lower = cell.toLowerCase();
    for (let w = 0; w < words.length; w++) if (words[w]![0] === lower) return words[w]![1];
    this.errors.add({ line, field, value: cell, message });
    return '';
  }

  /**
   * The 10 number cells joined by commas: as written when the line is clean so
   * far and the cell can be copied so, otherwise parsed to E.164 now.
   */
  private numberCells(line: number, clean: boolean): string {
    const numbers = this.numbers;
    const before = this.errors.total;
    let asWritten = 0; // cells taken as the file writes them (empty ones included)
    const { text, bounds, values } = this;
    for (let s = 0; s < slotCount; s++) {
      const k = 3 + s;
      const t = values === undefined ? text : values[k]!;
      const f = values === undefined ? bounds[2 * k]! : 0;
      const e = values === undefined ? bounds[2 * k + 1]! : t.length;
      if (f === e || (clean && copiableNumber(t, f, e))) {
        asWritten |= 1 << s;
        continue;
      }
      this.trimmed(3 + s);
      numbers[s] = '';
      if (this.e === this.f) continue;
      const n = this.parser.parse(this.t.slice(this.f, this.e));
      if (n.ok) numbers[s] = n.e164;
      else this.errors.add({ line, field: `authorizedNumber${s + 1}`, value: this.written(3 + s), message: n.message });
    }
    if (this.errors.total !== before) {
      // a bad number on a line that was clean until then: the cells taken as
      // written are checked too, so that every bad one is named
      for (let s = 0; s < slotCount; s++) {
        this.field(3 + s);
        if ((asWritten & (1 << s)) === 0 || this.f === this.e) continue;
        const cell = this.t.slice(this.f, this.e);
        const n = this.parser.parse(cell);
        if (!n.ok) this.errors.add({ line, field: `authorizedNumber${s + 1}`, value: cell, message: n.message });
      }
      return '';
    }
    if (asWritten === allSlots && this.values === undefined) {
      // the 10 cells with the 9 separators between them, as the file writes them
      const cells = this.text.slice(this.bounds[6]!, this.bounds[25]!);
      return this.reader.delimiter === ';' ? cells.replaceAll(';', ',') : cells;
    }
    for (let s = 0; s < slotCount; s++) {
      if ((asWritten & (1 << s)) === 0) continue;
      this.field(3 + s);
      numbers[s] = this.t.slice(this.f, this.e);
    }
    return numbers.join(',');
  }
}
