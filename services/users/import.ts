// CSV import of the directory (SPEC §6): validate the whole file against the
// directory, plan, snapshot what will change, then write set-based (a handful
// of statements, whatever the file size).
//
// The file is compared with the directory in PostgreSQL, not in JS: every line
// that passes the checks of its own (names, digits, duplicates in the file,
// optional fields) is streamed into a temporary table while the file is still
// being read, and one join on matricule returns only the lines that differ from
// their user (plus the new and, for sync, the removed users). Numbers are
// compared as the file writes them first: a cell equal to the stored E.164
// number (what an export in international display writes) was validated when
// it was stored, so only the numbers of differing lines are ever parsed. A
// line that differs only in how it writes a number (national form) is parsed,
// then found equal and counted unchanged.
//
// The directory is read and written under the tenant's directory lock, in one
// transaction: a file is checked against exactly the state it is applied to.
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { Writable } from 'node:stream';
import type postgres from 'postgres';
import { periodOf } from '../../engine/periods.js';
import { ConflictError, ValidationError, type FieldError } from '../shared/errors.js';
import { fullFieldCount, isTrimmedSpace, portalFieldCount, unescapeFormula, UsersCsvReader } from './csv.js';
import {
  digitsKey,
  forfaitMinutesValue,
  identifiantProblem,
  identifiantRule,
  matriculeProblem,
  matriculeRule,
  maxForfaitMinutes,
  maxNameLength,
  nameProblem,
  NumberParser,
  slotCount,
  type AccountStatus,
} from './fields.js';
import type { DirectoryTenant } from './repo.js';
import { lockDirectoryRaw, readDirectoryTenantRaw } from './raw.js';

export type ImportMode = 'append' | 'upsert' | 'sync';
export const importModes = ['append', 'upsert', 'sync'] as const;

export interface ImportProgress {
  phase: 'validate' | 'write';
  done: number;
  total: number;
}

export interface ImportOptions {
  mode: ImportMode;
  dryRun?: boolean;
  createdBy?: string | null;
  onProgress?: (p: ImportProgress) => void;
  /** Time spent in each step, in order (benchmarks). */
  onStep?: (step: ImportStep, ms: number) => void;
}

export type ImportStep = 'lock' | 'read' | 'compare' | 'plan' | 'snapshot' | 'write' | 'commit';

export interface ImportPlan {
  created: string[];
  updated: string[];
  deleted: string[];
  unchanged: string[];
}

export interface ImportResult {
  /** null for a dry run: nothing was recorded. */
  importId: string | null;
  dryRun: boolean;
  created: number;
  updated: number;
  deleted: number;
  unchanged: number;
  /** The matricules of each group (dry runs only: a plan to read before importing). */
  matricules?: ImportPlan;
}

/** Most errors a 400 lists; a file of garbage must not build a response of gigabytes. */
export const maxReportedErrors = 100_000;

/** One row as it will be in the directory. */
interface StagedUser {
  id: string;
  fullName: string;
  matricule: string;
  identifiant: string;
  numbers: (string | null)[];
  forfaitMinutes: number;
  accountStatus: AccountStatus;
  billingEnabled: boolean;
}

const fieldNames = ['fullName', 'matricule', 'identifiant'];
const fieldOrder = (field: string | undefined): number => {
  if (field === undefined || field === 'fieldCount' || field === 'file') return -1;
  const k = fieldNames.indexOf(field);
  if (k >= 0) return k;
  const m = /^authorizedNumber(\d+)$/.exec(field);
  if (m) return 2 + Number(m[1]);
  return 20 + ['forfaitMinutes', 'accountStatus', 'billingEnabled'].indexOf(field);
};

class ErrorList {
  readonly items: FieldError[] = [];
  total = 0;
  add(e: FieldError): void {
    this.total++;
    if (this.items.length < maxReportedErrors) this.items.push(e);
  }
  throwIfAny(): void {
    if (this.total === 0) return;
    this.items.sort((a, b) => (a.line ?? 0) - (b.line ?? 0) || fieldOrder(a.field) - fieldOrder(b.field));
    const more = this.total > this.items.length ? ` (the first ${this.items.length} are listed)` : '';
    throw new ValidationError(`the file has ${this.total} error${this.total > 1 ? 's' : ''}; nothing was imported${more}`, this.items);
  }
}

// ---- COPY text format -------------------------------------------------------

const copySpecial = /[\\\t\n\r]/;
const copySpecialAll = /[\\\t\n\r]/g;
const copyEscapes: Record<string, string> = { '\\': '\\\\', '\t': '\\t', '\n': '\\n', '\r': '\\r' };

function copyText(value: string): string {
  return copySpecial.test(value) ? value.replace(copySpecialAll, (ch) => copyEscapes[ch]!) : value;
}

// ---- reading the file -------------------------------------------------------

/** Resolves when the stream can take more, or has failed (its error surfaces where the COPY is awaited). */
function drained(stream: Writable): Promise<void> {
  return new Promise<void>((resolve) => {
    const done = () => {
      stream.off('drain', done);
      stream.off('close', done);
      stream.off('error', done);
      resolve();
    };
    stream.on('drain', done);
    stream.on('close', done);
    stream.on('error', done);
  });
}

/**
 * Lines of the file by a key made of digits only (a 14-digit matricule or a
 * 7-digit identifiant, both exact as doubles): an open-addressing table on
 * typed arrays. A Map of 100,000 strings costs more than reading the file.
 */
class LineIndex {
  /** entries in insertion order */
  keys: Float64Array;
  lines: Int32Array;
  size = 0;
  private slots: Int32Array; // entry index + 1; 0 = free
  private mask: number;

  /** expected: about how many keys will be added (sized for it: no rehashing on the way) */
  constructor(expected = 1024) {
    const entries = Math.max(1024, expected);
    let slots = 4096;
    while (slots < entries * 2) slots *= 2;
    this.keys = new Float64Array(entries);
    this.lines = new Int32Array(entries);
    this.slots = new Int32Array(slots);
    this.mask = slots - 1;
  }

  private slot(key: number): number {
    const lo = key % 4294967296;
    const hi = (key - lo) / 4294967296;
    let h = Math.imul((lo | 0) ^ Math.imul(hi | 0, 0x9e3779b1), 0x85ebca6b);
    h ^= h >>> 15;
    let k = h & this.mask;
    for (;;) {
      const e = this.slots[k]!;
      if (e === 0 || this.keys[e - 1] === key) return k;
      k = (k + 1) & this.mask;
    }
  }

  /** The line of key, 0 when absent. */
  get(key: number): number {
    const e = this.slots[this.slot(key)]!;
    return e === 0 ? 0 : this.lines[e - 1]!;
  }

  /** Adds key (known to be absent). */
  add(key: number, line: number): void {
    if (this.size === this.keys.length) {
      const keys = new Float64Array(this.size * 2);
      keys.set(this.keys);
      this.keys = keys;
      const lines = new Int32Array(this.size * 2);
      lines.set(this.lines);
      this.lines = lines;
    }
    if ((this.size + 1) * 2 > this.slots.length) {
      this.slots = new Int32Array(this.slots.length * 2);
      this.mask = this.slots.length - 1;
      for (let e = 0; e < this.size; e++) this.slots[this.slot(this.keys[e]!)] = e + 1;
    }
    this.keys[this.size] = key;
    this.lines[this.size] = line;
    this.size++;
    this.slots[this.slot(key)] = this.size;
  }
}

/**
 * Whether text[from, to) is a value that needs neither trimming nor COPY
 * escaping nor a formula prefix removed, and has no control character: it can
 * be copied as it is. `ascii` also refuses anything outside printable ASCII and
 * a comma (number cells, joined with commas for the comparison).
 */
function verbatim(text: string, from: number, to: number, ascii: boolean): boolean {
  if (to === from) return true;
  const first = text.charCodeAt(from);
  const last = text.charCodeAt(to - 1);
  if (first <= 32 || last <= 32 || isTrimmedSpace(first) || isTrimmedSpace(last) || first === 39 /* ' */) return false;
  for (let k = from; k < to; k++) {
    const ch = text.charCodeAt(k);
    if (ch < 32 || ch === 92 /* \ */ || ch === 127) return false;
    if (ascii && (ch > 126 || ch === 44)) return false;
  }
  return true;
}

function equalsAt(text: string, from: number, to: number, word: string): boolean {
  return to - from === word.length && text.startsWith(word, from);
}

/**
 * Rows of the file table: the line, the 3 text fields, the 10 number cells
 * joined by commas as the file writes them (empty cells empty; cells that had
 * to be parsed already in E.164), and the 3 optional fields (NULL when absent).
 */
const fileTable = `CREATE TEMP TABLE user_import_file (
  line integer NOT NULL, full_name text NOT NULL, matricule text NOT NULL, identifiant text NOT NULL,
  numbers text NOT NULL, forfait_minutes integer, account_status text, billing_enabled boolean) ON COMMIT DROP`;

interface FileScan {
  /** matricule → first line it is on (lines with errors included: duplicates name that line). */
  matricules: LineIndex;
  /** lines written to user_import_file */
  staged: number;
}

/**
 * Reads the file once: every line checked on its own and against the others
 * (duplicates), and every line without error written to user_import_file
 * through the COPY stream as it goes (PostgreSQL stores it meanwhile). A line
 * with an error is not staged; its numbers are all parsed, so that the answer
 * lists every error of the file.
 *
 * Most lines (an export, edited or not) are checked on character codes and
 * copied as they are written, without taking their fields apart; the others
 * (quotes, spaces to trim, errors…) go through the general path below.
 */
async function scanFile(
  reader: UsersCsvReader,
  copy: Writable,
  parser: NumberParser,
  errors: ErrorList,
  onProgress?: (p: ImportProgress) => void,
): Promise<FileScan> {
  // sized for a line every 50 characters (a name and a number or two): most
  // files fill it without growing it, a file of shorter lines grows it
  const expected = Math.ceil(reader.text.length / 50);
  const matricules = new LineIndex(expected);
  const identifiants = new LineIndex(expected);
  const total = onProgress ? reader.lineCount() : 0;
  const numbers: string[] = new Array<string>(slotCount);
  const text = reader.text;
  const semicolons = reader.delimiter === ';';
  let chunk = '';
  let staged = 0;
  let records = 0;
  const flush = async () => {
    if (chunk === '') return;
    const ok = copy.write(chunk);
    chunk = '';
    if (!ok) await drained(copy);
  };
  while (reader.next()) {
    const line = reader.line;
    if (onProgress && records % 5000 === 0) onProgress({ phase: 'validate', done: records, total: Math.max(total, records) });
    records++;
    const count = reader.count;

    // ---- the usual line: copied as written ----
    if (!reader.quoted && count >= portalFieldCount && count <= fullFieldCount) {
      const b = reader.bounds;
      let ok = b[1]! - b[0]! <= maxNameLength && b[1]! > b[0]! && verbatim(text, b[0]!, b[1]!, false);
      const mKey = ok ? digitsKey(matriculeRule, text, b[2]!, b[3]!) : -1;
      const iKey = mKey >= 0 ? digitsKey(identifiantRule, text, b[4]!, b[5]!) : -1;
      ok = iKey >= 0 && matricules.get(mKey) === 0 && identifiants.get(iKey) === 0;
      for (let s = 3; ok && s < 13; s++) ok = verbatim(text, b[2 * s]!, b[2 * s + 1]!, true);
      let optional = '';
      if (ok && count > 13) {
        const from = b[26]!;
        const to = b[27]!;
        if (from === to) optional = '\t\\N';
        else {
          const minutes = forfaitMinutesValue(text, from, to);
          ok = minutes >= 0;
          optional = `\t${minutes}`;
        }
      } else optional = '\t\\N';
      if (ok && count > 14) {
        const from = b[28]!;
        const to = b[29]!;
        if (from === to) optional += '\t\\N';
        else if (equalsAt(text, from, to, 'enabled')) optional += '\tenabled';
        else if (equalsAt(text, from, to, 'disabled')) optional += '\tdisabled';
        else ok = false;
      } else optional += '\t\\N';
      if (ok && count > 15) {
        const from = b[30]!;
        const to = b[31]!;
        if (from === to) optional += '\t\\N';
        else if (equalsAt(text, from, to, '1') || equalsAt(text, from, to, 'true')) optional += '\tt';
        else if (equalsAt(text, from, to, '0') || equalsAt(text, from, to, 'false')) optional += '\tf';
        else ok = false;
      } else optional += '\t\\N';
      if (ok) {
        matricules.add(mKey, line);
        identifiants.add(iKey, line);
        const cells = text.slice(b[6]!, b[25]!);
        chunk += `${line}\t${text.slice(b[0]!, b[1]!)}\t${text.slice(b[2]!, b[3]!)}\t${text.slice(b[4]!, b[5]!)}\t${semicolons ? cells.replaceAll(';', ',') : cells}${optional}\n`;
        staged++;
        if (chunk.length > 1 << 18) await flush();
        continue;
      }
    }

    // ---- any other line: field by field ----
    const fields = reader.readFields();
    if (count < portalFieldCount || count > fullFieldCount) {
      errors.add({
        line,
        field: 'fieldCount',
        value: String(count),
        message: `a line has ${portalFieldCount} fields (name, matricule, identifiant, 10 numbers) and up to 3 optional ones; this one has ${count}`,
      });
      continue;
    }
    const before = errors.total;
    const fullName = unescapeFormula(fields[0]!.trim());
    const nameError = nameProblem(fullName);
    if (nameError) errors.add({ line, field: 'fullName', value: fields[0]!, message: nameError });
    const matricule = fields[1]!.trim();
    const mError = matriculeProblem(matricule);
    if (mError) errors.add({ line, field: 'matricule', value: fields[1]!, message: mError });
    else {
      const key = Number(matricule);
      const first = matricules.get(key);
      if (first !== 0) errors.add({ line, field: 'matricule', value: matricule, message: `duplicate matricule: already on line ${first}` });
      else matricules.add(key, line);
    }
    const identifiant = fields[2]!.trim();
    const iError = identifiantProblem(identifiant);
    if (iError) errors.add({ line, field: 'identifiant', value: fields[2]!, message: iError });
    else {
      const key = Number(identifiant);
      const first = identifiants.get(key);
      if (first !== 0) errors.add({ line, field: 'identifiant', value: identifiant, message: `duplicate identifiant: already on line ${first}` });
      else identifiants.add(key, line);
    }
    // optional fields: forfait minutes, account status, billing enabled
    let optional = '';
    const minutes = count > 13 ? fields[13]!.trim() : '';
    const minutesValue = forfaitMinutesValue(minutes);
    if (minutes === '') optional = '\\N';
    else if (minutesValue >= 0) optional = String(minutesValue);
    else errors.add({ line, field: 'forfaitMinutes', value: minutes, message: `forfait minutes must be a whole number from 0 to ${maxForfaitMinutes}` });
    const statusCell = count > 14 ? fields[14]!.trim() : '';
    const status = statusCell.toLowerCase();
    if (status === '') optional += '\t\\N';
    else if (status === 'enabled' || status === 'disabled') optional += `\t${status}`;
    else errors.add({ line, field: 'accountStatus', value: statusCell, message: 'account status must be enabled or disabled' });
    const billingCell = count > 15 ? fields[15]!.trim() : '';
    const billing = billingCell.toLowerCase();
    if (billing === '') optional += '\t\\N';
    else if (billing === '1' || billing === 'true') optional += '\tt';
    else if (billing === '0' || billing === 'false') optional += '\tf';
    else errors.add({ line, field: 'billingEnabled', value: billingCell, message: 'billing enabled must be 1 or 0' });
    // numbers: staged as written when they can be (checked against the stored
    // ones later); the others, and all of a line that has an error, parsed now
    const clean = errors.total === before;
    let asWritten = 0;
    for (let s = 0; s < slotCount; s++) {
      const raw = fields[3 + s]!;
      const cell = raw.trim();
      if (cell === '') numbers[s] = '';
      else if (clean && verbatim(raw, 0, raw.length, true)) {
        numbers[s] = raw;
        asWritten |= 1 << s;
      } else {
        const n = parser.parse(cell);
        if (n.ok) numbers[s] = n.e164;
        else errors.add({ line, field: `authorizedNumber${s + 1}`, value: raw, message: n.message });
      }
    }
    if (errors.total !== before) {
      // an unparsable number of a line that was clean until then: the numbers
      // taken as written before it are checked too
      for (let s = 0; s < slotCount; s++) {
        if ((asWritten & (1 << s)) === 0) continue;
        const raw = fields[3 + s]!;
        const n = parser.parse(raw);
        if (!n.ok) errors.add({ line, field: `authorizedNumber${s + 1}`, value: raw, message: n.message });
      }
      continue;
    }
    chunk += `${line}\t${copyText(fullName)}\t${matricule}\t${identifiant}\t${numbers.join(',')}\t${optional}\n`;
    staged++;
    if (chunk.length > 1 << 18) await flush();
  }
  await flush();
  if (reader.error) errors.add({ line: reader.error.line, field: 'file', message: reader.error.message });
  onProgress?.({ phase: 'validate', done: records, total: records });
  return { matricules, staged };
}

// ---- comparing with the directory ---------------------------------------------

/** A line that is not an unchanged user, or (sync) a user the file does not have. */
interface Candidate {
  /** null: a user of the directory that is not in the file */
  line: number | null;
  /** null: a matricule the directory does not have */
  id: string | null;
  dir_matricule: string | null;
  full_name: string | null;
  matricule: string | null;
  identifiant: string | null;
  /** the 10 cells as staged, joined by commas (empty cells empty) */
  numbers: string | null;
  /** the stored numbers joined by ',' (empty slots as '') */
  stored: string | null;
  forfait_minutes: number | null;
  account_status: AccountStatus | null;
  billing_enabled: boolean | null;
  /** every field but the numbers equals the user's (optional fields absent keep the user's) */
  same: boolean | null;
  /** the file sets forfait minutes, account status, billing to another value than the user's (else false or null) */
  minutes_differ: boolean | null;
  status_differs: boolean | null;
  billing_differs: boolean | null;
}

/** Sorts matricules by their line (in place), when they are not in order already. */
function inFileOrder(matricules: string[], lines: number[]): void {
  let sorted = true;
  for (let k = 1; k < lines.length && sorted; k++) if (lines[k - 1]! > lines[k]!) sorted = false;
  if (sorted) return;
  const order = lines.map((_, k) => k).sort((a, b) => lines[a]! - lines[b]!);
  const copy = order.map((k) => matricules[k]!);
  for (let k = 0; k < copy.length; k++) matricules[k] = copy[k]!;
}

function splitNumbers(joined: string): (string | null)[] {
  const parts = joined.split(',');
  const out: (string | null)[] = new Array<string | null>(slotCount);
  for (let i = 0; i < slotCount; i++) {
    const p = parts[i];
    out[i] = p === undefined || p === '' ? null : p;
  }
  return out;
}

/**
 * The lines that differ from their user, the new ones and (sync) the users
 * absent from the file; append also needs the known ones (they are errors).
 * Unchanged lines, the bulk of a sync, never leave PostgreSQL.
 */
async function compareWithDirectory(
  tx: postgres.TransactionSql,
  tenantId: string,
  mode: ImportMode,
  onRow: (c: Candidate) => void,
): Promise<Candidate[]> {
  const join = mode === 'sync' ? tx`FULL JOIN` : tx`LEFT JOIN`;
  const differs =
    mode === 'append'
      ? tx`true`
      : tx`s.line IS NULL OR u.id IS NULL OR s.full_name <> u.full_name OR s.identifiant <> u.identifiant
           OR array_to_string(u.authorized_numbers, ',', '') <> s.numbers
           OR coalesce(s.forfait_minutes, u.forfait_minutes) <> u.forfait_minutes
           OR coalesce(s.account_status, u.account_status) <> u.account_status
           OR coalesce(s.billing_enabled, u.billing_enabled) <> u.billing_enabled`;
  const rows: Candidate[] = [];
  await tx<Candidate[]>`
    SELECT s.line, u.id, u.matricule AS dir_matricule, s.full_name, s.matricule, s.identifiant,
           s.numbers,
           array_to_string(u.authorized_numbers, ',', '') AS stored,
           coalesce(s.forfait_minutes, u.forfait_minutes) AS forfait_minutes,
           coalesce(s.account_status, u.account_status) AS account_status,
           coalesce(s.billing_enabled, u.billing_enabled) AS billing_enabled,
           (s.full_name = u.full_name AND s.identifiant = u.identifiant
            AND coalesce(s.forfait_minutes, u.forfait_minutes) = u.forfait_minutes
            AND coalesce(s.account_status, u.account_status) = u.account_status
            AND coalesce(s.billing_enabled, u.billing_enabled) = u.billing_enabled) AS same,
           s.forfait_minutes <> u.forfait_minutes AS minutes_differ,
           s.account_status <> u.account_status AS status_differs,
           s.billing_enabled <> u.billing_enabled AS billing_differs
    FROM user_import_file s
    ${join} (SELECT id, matricule, identifiant, full_name, authorized_numbers, forfait_minutes, account_status, billing_enabled
             FROM users WHERE tenant_id = ${tenantId}) u ON u.matricule = s.matricule
    WHERE ${differs}`.forEach((c) => {
    rows.push(c);
    onRow(c);
  });
  return rows;
}

/**
 * append and upsert keep the users the file does not name: a line must not take
 * the identifiant of one of them. (A line with an error does not count as
 * naming its user.)
 */
async function identifiantsKept(tx: postgres.TransactionSql, tenantId: string, errorLines: number[]): Promise<Map<number, string>> {
  const rows = await tx<{ line: number; holder: string }[]>`
    SELECT s.line, u.matricule AS holder
    FROM user_import_file s JOIN users u ON u.tenant_id = ${tenantId} AND u.identifiant = s.identifiant
    WHERE u.matricule <> s.matricule
      AND NOT EXISTS (SELECT 1 FROM user_import_file k
                      WHERE k.matricule = u.matricule AND k.line NOT IN (SELECT unnest(${errorLines}::int[])))`;
  return new Map(rows.map((r) => [r.line, r.holder]));
}

// ---- writing ------------------------------------------------------------------

/**
 * The before-images of the rows a statement returns (`changed`: old.* of an
 * UPDATE, or a DELETE's rows), stored as one row of column arrays in
 * import_snapshot_batches (10,000 rows of import_snapshot_users and their key
 * entries cost ~35 ms; one row of arrays a few). Restore unnests them.
 */
function keepBeforeImages(tx: postgres.TransactionSql, tenantId: string, importId: string) {
  return tx`
    INSERT INTO import_snapshot_batches (tenant_id, import_id, ids, full_names, matricules, identifiants, general_states,
           account_statuses, forfait_minutes, forfait_periods, used_seconds, total_call_seconds, billing_enabled,
           authorized_numbers, created_ats)
    SELECT ${tenantId}, ${importId}, array_agg(id), array_agg(full_name), array_agg(matricule), array_agg(identifiant),
           array_agg(general_state), array_agg(account_status), array_agg(forfait_minutes), array_agg(forfait_period),
           array_agg(used_seconds), array_agg(total_call_seconds), array_agg(billing_enabled),
           array_agg(authorized_numbers::text), array_agg(created_at)
    FROM changed HAVING count(*) > 0`;
}

/** The columns of a before-image, as the UPDATE or DELETE returns them. */
const beforeImage = `id, full_name, matricule, identifiant, general_state, account_status, forfait_minutes, forfait_period,
  used_seconds, total_call_seconds, billing_enabled, authorized_numbers, created_at`;

const arrayQuote = /["\\]/g;

/**
 * The rows to write as PostgreSQL array literals, one per column, built row by
 * row while the comparison is still streaming (postgres.js serialising
 * 10,000-element arrays when the statement is sent cost ~10 ms after it). One
 * unnest() of them is the rows to write: no staging table.
 */
class RowColumns {
  size = 0;
  private readonly ids: string[] = [];
  private readonly names: string[] = [];
  private readonly matricules: string[] = [];
  private readonly identifiants: string[] = [];
  private readonly numbers: string[] = [];
  private readonly minutes: string[] = [];
  private readonly statuses: string[] = [];
  private readonly billing: string[] = [];

  add(u: StagedUser): void {
    this.size++;
    this.ids.push(u.id);
    this.names.push(`"${u.fullName.replace(arrayQuote, '\\$&')}"`);
    this.matricules.push(u.matricule); // digits
    this.identifiants.push(u.identifiant); // digits
    // "+33…,,+33…": string_to_array(…, ',', '') gives the 10 slots back, empty ones NULL
    this.numbers.push(`"${u.numbers.map((x) => x ?? '').join(',').replace(arrayQuote, '\\$&')}"`);
    this.minutes.push(String(u.forfaitMinutes));
    this.statuses.push(u.accountStatus);
    this.billing.push(u.billingEnabled ? 't' : 'f');
  }

  literals() {
    const l = (xs: string[]) => `{${xs.join(',')}}`;
    return {
      ids: l(this.ids),
      names: l(this.names),
      matricules: l(this.matricules),
      identifiants: l(this.identifiants),
      numbers: l(this.numbers),
      minutes: l(this.minutes),
      statuses: l(this.statuses),
      billing: l(this.billing),
    };
  }
}

/**
 * Changes the known users to their file rows, and keeps the before-image of
 * each (import_snapshot_batches) in the same statement: the UPDATE returns the rows
 * as they were (RETURNING old.*, PostgreSQL 18), so the snapshot needs no scan
 * of its own and holds exactly what the UPDATE replaced. Only the columns some
 * row changes are assigned (an unchanged account status does not even reach
 * the status-history trigger).
 */
async function updateUsers(
  tx: postgres.TransactionSql,
  tenantId: string,
  importId: string,
  rows: RowColumns,
  changes: { minutes: boolean; status: boolean; billing: boolean },
): Promise<void> {
  const c = rows.literals();
  const set = [tx`full_name = p.full_name, identifiant = p.identifiant, authorized_numbers = string_to_array(p.numbers, ',', ''), updated_at = now()`];
  if (changes.minutes) set.push(tx`forfait_minutes = p.forfait_minutes`);
  if (changes.status) set.push(tx`account_status = p.account_status`);
  if (changes.billing) set.push(tx`billing_enabled = p.billing_enabled`);
  const assignments = set.reduce((a, b) => tx`${a}, ${b}`);
  await tx`
    WITH changed AS (
      UPDATE users u SET ${assignments}
      FROM unnest(${c.ids}::uuid[], ${c.names}::text[], ${c.identifiants}::text[], ${c.numbers}::text[],
                  ${c.minutes}::int[], ${c.statuses}::text[], ${c.billing}::boolean[])
           AS p(id, full_name, identifiant, numbers, forfait_minutes, account_status, billing_enabled)
      WHERE u.tenant_id = ${tenantId} AND u.id = ANY(${c.ids}::uuid[]) AND u.id = p.id
      RETURNING ${tx.unsafe(beforeImage.replace(/(\w+)/g, 'old.$1'))})
    ${keepBeforeImages(tx, tenantId, importId)}`;
}

/** Deletes the users the file no longer has, keeping their before-images (DELETE … RETURNING). */
async function deleteUsers(tx: postgres.TransactionSql, tenantId: string, importId: string, ids: string[]): Promise<void> {
  await tx`
    WITH changed AS (
      DELETE FROM users u USING unnest(${ids}::uuid[]) AS d(id)
      WHERE u.tenant_id = ${tenantId} AND u.id = d.id
      RETURNING ${tx.unsafe(beforeImage.replace(/(\w+)/g, 'u.$1'))})
    ${keepBeforeImages(tx, tenantId, importId)}`;
}

async function insertUsers(tx: postgres.TransactionSql, tenantId: string, period: string, rows: RowColumns): Promise<void> {
  const c = rows.literals();
  await tx`
    INSERT INTO users (tenant_id, id, full_name, matricule, identifiant, account_status, forfait_minutes,
                       forfait_period, billing_enabled, authorized_numbers, balance)
    SELECT ${tenantId}, p.id, p.full_name, p.matricule, p.identifiant, p.account_status, p.forfait_minutes,
           ${period}, p.billing_enabled, string_to_array(p.numbers, ',', ''), 0
    FROM unnest(${c.ids}::uuid[], ${c.names}::text[], ${c.matricules}::text[], ${c.identifiants}::text[], ${c.numbers}::text[],
                ${c.minutes}::int[], ${c.statuses}::text[], ${c.billing}::boolean[])
         AS p(id, full_name, matricule, identifiant, numbers, forfait_minutes, account_status, billing_enabled)`;
}

// ---- the verb ---------------------------------------------------------------

/**
 * Imports a users CSV into the tenant's directory. Throws ValidationError (every
 * line error), ConflictError LICENCE_LIMIT, or writes everything.
 */
export async function importUsers(sql: postgres.Sql, tenantId: string, csv: string, options: ImportOptions): Promise<ImportResult> {
  let stepStart = performance.now();
  const mark = (step: ImportStep) => {
    if (!options.onStep) return;
    const now = performance.now();
    options.onStep(step, now - stepStart);
    stepStart = now;
  };
  const { mode, onProgress } = options;
  const dryRun = options.dryRun ?? false;
  try {
    return await sql.begin(async (tx) => {
      const tenant: DirectoryTenant = dryRun ? await readDirectoryTenantRaw(tx, tenantId) : await lockDirectoryRaw(tx, tenantId);
      // the join of the file with the directory hashes 100,000 rows: in memory
      mark('lock');
      await tx`SET LOCAL work_mem = '64MB'`;
      await tx.unsafe(fileTable);
      const copy = await tx`COPY user_import_file FROM STDIN`.writable();
      const copied = new Promise<void>((resolve, reject) => {
        copy.on('finish', resolve);
        copy.on('error', reject);
      });
      copied.catch(() => undefined); // awaited below; a failed scan must not leave it unhandled
      const parser = new NumberParser(tenant.country);
      const errors = new ErrorList();
      let scan: FileScan;
      try {
        scan = await scanFile(new UsersCsvReader(csv), copy, parser, errors, onProgress);
      } finally {
        copy.end();
      }
      await copied;
      mark('read');
      // the numbers of the differing lines that are not the stored ones, parsed
      // as the rows of the comparison arrive (while PostgreSQL is still joining)
      const numbersOf = new Map<number, (string | null)[]>();
      const errorLines: number[] = [];
      const checkNumbers = (c: Candidate) => {
        if (c.line === null) return;
        const stored = c.stored === null ? undefined : splitNumbers(c.stored);
        const raw = splitNumbers(c.numbers!);
        const numbers: (string | null)[] = new Array<string | null>(slotCount);
        let bad = false;
        for (let s = 0; s < slotCount; s++) {
          const cell = raw[s] ?? null;
          if (cell === null || (stored !== undefined && stored[s] === cell)) {
            numbers[s] = cell;
            continue;
          }
          const n = parser.parse(cell);
          if (n.ok) numbers[s] = n.e164;
          else {
            numbers[s] = null;
            bad = true;
            errors.add({ line: c.line, field: `authorizedNumber${s + 1}`, value: cell, message: n.message });
          }
        }
        if (bad) errorLines.push(c.line);
        else numbersOf.set(c.line, numbers);
      };
      // What each differing line becomes: created, updated (or unchanged after
      // all), deleted, or an error. sync decides every line as its row arrives;
      // append and upsert first need the identifiants held by users the file
      // does not name (a query after the comparison).
      const plan: ImportPlan = { created: [], updated: [], deleted: [], unchanged: [] };
      const createdLines: number[] = [];
      const updatedLines: number[] = [];
      const period = periodOf(new Date(), tenant.timezone);
      const createdIds: string[] = [];
      const deletedIds: string[] = [];
      const updates = new RowColumns();
      const creates = new RowColumns();
      const changedLines = new Set<number>();
      const optionalChanges = { minutes: false, status: false, billing: false };
      const classify = (c: Candidate, holder: string | undefined) => {
        if (c.line === null) {
          plan.deleted.push(c.dir_matricule!);
          deletedIds.push(c.id!);
          return;
        }
        const numbers = numbersOf.get(c.line);
        if (numbers === undefined) return; // a number error
        if (holder !== undefined) {
          errors.add({ line: c.line, field: 'identifiant', value: c.identifiant!, message: `identifiant already belongs to the user with matricule ${holder}` });
          return;
        }
        if (c.id === null) {
          const id = randomUUID();
          plan.created.push(c.matricule!);
          createdLines.push(c.line);
          createdIds.push(id);
          changedLines.add(c.line);
          creates.add({
            id,
            fullName: c.full_name!,
            matricule: c.matricule!,
            identifiant: c.identifiant!,
            numbers,
            forfaitMinutes: c.forfait_minutes ?? tenant.defaultForfaitMinutes,
            accountStatus: c.account_status ?? 'enabled',
            billingEnabled: c.billing_enabled ?? true,
          });
          return;
        }
        if (mode === 'append') {
          errors.add({ line: c.line, field: 'matricule', value: c.matricule!, message: 'matricule already in the directory (append only adds new users; use upsert or sync)' });
          return;
        }
        const stored = splitNumbers(c.stored!);
        let sameNumbers = true;
        for (let s = 0; s < slotCount; s++) if (numbers[s] !== stored[s]) sameNumbers = false;
        if (c.same && sameNumbers) return; // written differently, same values: unchanged
        plan.updated.push(c.matricule!);
        updatedLines.push(c.line);
        if (c.minutes_differ) optionalChanges.minutes = true;
        if (c.status_differs) optionalChanges.status = true;
        if (c.billing_differs) optionalChanges.billing = true;
        changedLines.add(c.line);
        updates.add({
          id: c.id,
          fullName: c.full_name!,
          matricule: c.matricule!,
          identifiant: c.identifiant!,
          numbers,
          forfaitMinutes: c.forfait_minutes!,
          accountStatus: c.account_status!,
          billingEnabled: c.billing_enabled!,
        });
      };
      const candidates = await compareWithDirectory(tx, tenantId, mode, (c) => {
        checkNumbers(c);
        if (mode === 'sync') classify(c, undefined);
      });
      mark('compare');
      if (mode !== 'sync') {
        const kept = scan.staged === 0 ? new Map<number, string>() : await identifiantsKept(tx, tenantId, errorLines);
        // file order (the plan lists matricules in it); removed users last
        candidates.sort((a, b) => (a.line ?? Infinity) - (b.line ?? Infinity));
        for (const c of candidates) classify(c, c.line === null ? undefined : kept.get(c.line));
      } else {
        // the rows came in the join's order: the plan lists matricules in file order
        inFileOrder(plan.created, createdLines);
        inFileOrder(plan.updated, updatedLines);
      }
      errors.throwIfAny();
      mark('plan');

      const unchangedCount = scan.staged - plan.created.length - plan.updated.length;
      if (plan.created.length > 0) {
        // sync: every staged line is a created or a known user, and the others are deleted
        const existing =
          mode === 'sync'
            ? scan.staged - plan.created.length + plan.deleted.length
            : Number((await tx<{ n: string }[]>`SELECT count(*) AS n FROM users WHERE tenant_id = ${tenantId}`)[0]?.n ?? 0);
        const finalCount = existing + plan.created.length - plan.deleted.length;
        if (finalCount > tenant.maxUsers) {
          throw new ConflictError(
            'LICENCE_LIMIT',
            `product type ${tenant.productType} allows ${tenant.maxUsers} users; after this import the directory would have ${finalCount}`,
          );
        }
      }
      const counts = { created: plan.created.length, updated: plan.updated.length, deleted: plan.deleted.length, unchanged: unchangedCount };
      if (dryRun) {
        // no errors: every matricule of the map is a staged line
        const { keys, lines, size } = scan.matricules;
        for (let e = 0; e < size; e++) if (!changedLines.has(lines[e]!)) plan.unchanged.push(String(keys[e]).padStart(14, '0'));
        plan.deleted.sort();
        return { importId: null, dryRun: true, ...counts, matricules: plan };
      }

      // the snapshot: before-images of every row this import changes or removes
      // (import_snapshot_batches, returned by the UPDATE and DELETE themselves),
      // and the ids it creates (snapshot.created); restore puts exactly these back
      const importId = randomUUID();
      await tx`SET CONSTRAINTS users_matricule_uq, users_identifiant_uq DEFERRED`;
      await tx`
        INSERT INTO import_snapshots (tenant_id, id, mode, summary, snapshot, created_by)
        VALUES (${tenantId}, ${importId}, ${mode}, ${JSON.stringify({ ...counts, rows: scan.staged })}::text::jsonb,
                ${JSON.stringify({ version: 1, created: createdIds })}::text::jsonb, ${options.createdBy ?? null})`;
      mark('snapshot');
      const total = deletedIds.length + updates.size + creates.size;
      if (total) onProgress?.({ phase: 'write', done: 0, total });
      if (deletedIds.length) await deleteUsers(tx, tenantId, importId, deletedIds);
      if (updates.size) await updateUsers(tx, tenantId, importId, updates, optionalChanges);
      if (creates.size) await insertUsers(tx, tenantId, period, creates);
      if (total) onProgress?.({ phase: 'write', done: total, total });
      mark('write');
      return { importId, dryRun: false, ...counts };
    }).finally(() => mark('commit'));
  } catch (err) {
    // deferred uniqueness is checked at commit: only a writer that bypassed the
    // directory lock can get here, and nothing was written
    if (isUnique(err)) throw new ConflictError('CONFLICT', 'the directory changed during the import; nothing was imported, try again');
    throw err;
  }
}

export function isUnique(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as { code?: unknown }).code === '23505';
}
