// CSV import of the directory (SPEC §6): validate the whole file against the
// directory, plan, snapshot what will change, then write set-based (one COPY
// into a staging table and a handful of statements, whatever the file size).
//
// The directory is read and written under the tenant's directory lock, in one
// transaction: a file is checked against exactly the state it is applied to.
import { randomUUID } from 'node:crypto';
import type postgres from 'postgres';
import { periodAt } from '../jobs/renewForfaits.js';
import { ConflictError, ValidationError, type FieldError } from './errors.js';
import { fullFieldCount, parseUsersCsv, portalFieldCount, unescapeFormula, type CsvRecord } from './userCsv.js';
import {
  identifiantProblem,
  matriculeProblem,
  maxForfaitMinutes,
  nameProblem,
  NumberParser,
  slotCount,
  type AccountStatus,
  type DirectoryTenant,
} from './userFields.js';
import { lockDirectoryRaw, readDirectoryTenantRaw } from './userRaw.js';

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
}

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

interface FileRow {
  line: number;
  fullName: string;
  matricule: string;
  identifiant: string;
  numbers: (string | null)[];
  forfaitMinutes: number | undefined;
  accountStatus: AccountStatus | undefined;
  billingEnabled: boolean | undefined;
}

/** A user of the directory as the import compares it. */
interface Existing {
  id: string;
  matricule: string;
  identifiant: string;
  fullName: string;
  numbers: (string | null)[];
  forfaitMinutes: number;
  accountStatus: AccountStatus;
  billingEnabled: boolean;
}

// The directory is read as ONE text value (fields split by U+001F, users by
// U+001E; names never hold control characters): turning 100,000 result rows
// into JS objects costs more than the whole comparison.
const unitSep = '\u001f';
const recordSep = '\u001e';

function readDirectory(text: string): Existing[] {
  if (text === '') return [];
  const out: Existing[] = [];
  for (const rec of text.split(recordSep)) {
    const f = rec.split(unitSep);
    out.push({
      id: f[0]!,
      matricule: f[1]!,
      identifiant: f[2]!,
      fullName: f[3]!,
      numbers: splitNumbers(f[4]!),
      forfaitMinutes: Number(f[5]),
      accountStatus: f[6] === 'disabled' ? 'disabled' : 'enabled',
      billingEnabled: f[7] === '1',
    });
  }
  return out;
}

/** One row as it will be in the directory: what the staging table receives. */
interface StagedUser {
  id: string;
  isNew: boolean;
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

function parseOptional(
  fields: string[],
  index: number,
  line: number,
  errors: ErrorList,
): { forfaitMinutes?: number; accountStatus?: AccountStatus; billingEnabled?: boolean } {
  const out: { forfaitMinutes?: number; accountStatus?: AccountStatus; billingEnabled?: boolean } = {};
  const cell = (k: number) => (fields[k] ?? '').trim();
  const minutes = cell(index);
  if (minutes !== '') {
    if (/^[0-9]{1,7}$/.test(minutes) && Number(minutes) <= maxForfaitMinutes) out.forfaitMinutes = Number(minutes);
    else errors.add({ line, field: 'forfaitMinutes', value: minutes, message: `forfait minutes must be a whole number from 0 to ${maxForfaitMinutes}` });
  }
  const status = cell(index + 1).toLowerCase();
  if (status !== '') {
    if (status === 'enabled' || status === 'disabled') out.accountStatus = status;
    else errors.add({ line, field: 'accountStatus', value: cell(index + 1), message: 'account status must be enabled or disabled' });
  }
  const billing = cell(index + 2).toLowerCase();
  if (billing !== '') {
    if (billing === '1' || billing === 'true') out.billingEnabled = true;
    else if (billing === '0' || billing === 'false') out.billingEnabled = false;
    else errors.add({ line, field: 'billingEnabled', value: cell(index + 2), message: 'billing enabled must be 1 or 0' });
  }
  return out;
}

/** Every line checked on its own and against the others; a row is kept only when it has no error. */
function validateRows(
  records: readonly CsvRecord[],
  byMatricule: ReadonlyMap<string, Existing>,
  parser: NumberParser,
  errors: ErrorList,
  onProgress?: (p: ImportProgress) => void,
): FileRow[] {
  const rows: FileRow[] = [];
  const matriculeLine = new Map<string, number>();
  const identifiantLine = new Map<string, number>();
  const total = records.length;
  for (let r = 0; r < total; r++) {
    const { line, fields } = records[r]!;
    if (onProgress && r % 5000 === 0) onProgress({ phase: 'validate', done: r, total });
    if (fields.length < portalFieldCount || fields.length > fullFieldCount) {
      errors.add({
        line,
        field: 'fieldCount',
        value: String(fields.length),
        message: `a line has ${portalFieldCount} fields (name, matricule, identifiant, 10 numbers) and up to 3 optional ones; this one has ${fields.length}`,
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
      const first = matriculeLine.get(matricule);
      if (first !== undefined) errors.add({ line, field: 'matricule', value: matricule, message: `duplicate matricule: already on line ${first}` });
      else matriculeLine.set(matricule, line);
    }
    const identifiant = fields[2]!.trim();
    const iError = identifiantProblem(identifiant);
    if (iError) errors.add({ line, field: 'identifiant', value: fields[2]!, message: iError });
    else {
      const first = identifiantLine.get(identifiant);
      if (first !== undefined) errors.add({ line, field: 'identifiant', value: identifiant, message: `duplicate identifiant: already on line ${first}` });
      else identifiantLine.set(identifiant, line);
    }
    // A number equal to the stored E.164 of that slot (an export in
    // international display) was validated when it was stored: no parsing.
    const stored = mError ? undefined : byMatricule.get(matricule)?.numbers;
    const numbers: (string | null)[] = new Array<string | null>(slotCount);
    for (let s = 0; s < slotCount; s++) {
      const cell = fields[3 + s]!.trim();
      if (cell === '') {
        numbers[s] = null;
        continue;
      }
      if (stored !== undefined && stored[s] === cell) {
        numbers[s] = cell;
        continue;
      }
      const n = parser.parse(cell);
      if (n.ok) numbers[s] = n.e164;
      else {
        numbers[s] = null;
        errors.add({ line, field: `authorizedNumber${s + 1}`, value: fields[3 + s]!, message: n.message });
      }
    }
    const optional = parseOptional(fields, portalFieldCount, line, errors);
    if (errors.total === before) {
      rows.push({
        line,
        fullName,
        matricule,
        identifiant,
        numbers,
        forfaitMinutes: optional.forfaitMinutes,
        accountStatus: optional.accountStatus,
        billingEnabled: optional.billingEnabled,
      });
    }
  }
  onProgress?.({ phase: 'validate', done: total, total });
  return rows;
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

function sameNumbers(a: readonly (string | null)[], b: readonly (string | null)[]): boolean {
  for (let i = 0; i < slotCount; i++) if ((a[i] ?? null) !== (b[i] ?? null)) return false;
  return true;
}

// ---- COPY text format -------------------------------------------------------

function copyText(value: string): string {
  return /[\\\t\n\r]/.test(value) ? value.replace(/[\\\t\n\r]/g, (ch) => ({ '\\': '\\\\', '\t': '\\t', '\n': '\\n', '\r': '\\r' })[ch]!) : value;
}

function copyArray(numbers: readonly (string | null)[]): string {
  // numbers are "+digits" or digits: no quoting needed inside the array literal
  let s = '{';
  for (let i = 0; i < slotCount; i++) s += (i ? ',' : '') + (numbers[i] ?? 'NULL');
  return s + '}';
}

async function copyStaging(tx: postgres.TransactionSql, staged: StagedUser[], onProgress?: (p: ImportProgress) => void): Promise<void> {
  await tx`CREATE TEMP TABLE user_import_rows (
             id uuid NOT NULL, is_new boolean NOT NULL, full_name text NOT NULL, matricule text NOT NULL,
             identifiant text NOT NULL, authorized_numbers text[] NOT NULL, forfait_minutes integer NOT NULL,
             account_status text NOT NULL, billing_enabled boolean NOT NULL) ON COMMIT DROP`;
  const writable = await tx`COPY user_import_rows FROM STDIN`.writable();
  const done = new Promise<void>((resolve, reject) => {
    writable.on('finish', resolve);
    writable.on('error', reject);
  });
  const chunkRows = 2000;
  for (let start = 0; start < staged.length; start += chunkRows) {
    let chunk = '';
    const end = Math.min(staged.length, start + chunkRows);
    for (let k = start; k < end; k++) {
      const u = staged[k]!;
      chunk += `${u.id}\t${u.isNew ? 't' : 'f'}\t${copyText(u.fullName)}\t${u.matricule}\t${u.identifiant}\t${copyArray(u.numbers)}\t${u.forfaitMinutes}\t${u.accountStatus}\t${u.billingEnabled ? 't' : 'f'}\n`;
    }
    if (!writable.write(chunk)) await new Promise<void>((resolve) => writable.once('drain', () => resolve()));
    onProgress?.({ phase: 'write', done: end, total: staged.length });
  }
  writable.end();
  await done;
}

// ---- the verb ---------------------------------------------------------------

/**
 * Imports a users CSV into the tenant's directory. Throws ValidationError (every
 * line error), ConflictError LICENCE_LIMIT, or writes everything.
 */
export async function importUsers(sql: postgres.Sql, tenantId: string, csv: string, options: ImportOptions): Promise<ImportResult> {
  const { mode, onProgress } = options;
  const dryRun = options.dryRun ?? false;
  try {
    return await sql.begin(async (tx) => {
      const tenant: DirectoryTenant = dryRun ? await readDirectoryTenantRaw(tx, tenantId) : await lockDirectoryRaw(tx, tenantId);
      // PostgreSQL reads the directory while this process parses the file
      const loading = tx<{ d: string }[]>`
        SELECT coalesce(string_agg(concat_ws(${unitSep}, id, matricule, identifiant, full_name,
                 array_to_string(authorized_numbers, ',', ''), forfait_minutes, account_status, billing_enabled::int),
               ${recordSep}), '') AS d
        FROM users WHERE tenant_id = ${tenantId}`.execute();
      const parsed = parseUsersCsv(csv);
      const existing = readDirectory((await loading)[0]?.d ?? '');
      const byMatricule = new Map<string, Existing>();
      for (const e of existing) byMatricule.set(e.matricule, e);

      const errors = new ErrorList();
      for (const e of parsed.errors) errors.add({ line: e.line, field: 'file', message: e.message });
      const rows = validateRows(parsed.records, byMatricule, new NumberParser(tenant.country), errors, onProgress);

      // against the directory: append refuses known matricules; an identifiant
      // must not stay with another user after the import
      const inFile = new Set<string>();
      for (const r of rows) inFile.add(r.matricule);
      const keptIdentifiants = new Map<string, string>();
      if (mode !== 'sync') for (const e of existing) if (!inFile.has(e.matricule)) keptIdentifiants.set(e.identifiant, e.matricule);

      const plan: ImportPlan = { created: [], updated: [], deleted: [], unchanged: [] };
      const staged: StagedUser[] = [];
      const period = periodAt(new Date(), tenant.timezone);
      const changedIds: string[] = [];
      const createdIds: string[] = [];
      for (const r of rows) {
        const holder = keptIdentifiants.get(r.identifiant);
        if (holder !== undefined) {
          errors.add({ line: r.line, field: 'identifiant', value: r.identifiant, message: `identifiant already belongs to the user with matricule ${holder}` });
          continue;
        }
        const e = byMatricule.get(r.matricule);
        if (!e) {
          const id = randomUUID();
          plan.created.push(r.matricule);
          createdIds.push(id);
          staged.push({
            id,
            isNew: true,
            fullName: r.fullName,
            matricule: r.matricule,
            identifiant: r.identifiant,
            numbers: r.numbers,
            forfaitMinutes: r.forfaitMinutes ?? tenant.defaultForfaitMinutes,
            accountStatus: r.accountStatus ?? 'enabled',
            billingEnabled: r.billingEnabled ?? true,
          });
          continue;
        }
        if (mode === 'append') {
          errors.add({ line: r.line, field: 'matricule', value: r.matricule, message: 'matricule already in the directory (append only adds new users; use upsert or sync)' });
          continue;
        }
        const next: StagedUser = {
          id: e.id,
          isNew: false,
          fullName: r.fullName,
          matricule: r.matricule,
          identifiant: r.identifiant,
          numbers: r.numbers,
          forfaitMinutes: r.forfaitMinutes ?? e.forfaitMinutes,
          accountStatus: r.accountStatus ?? e.accountStatus,
          billingEnabled: r.billingEnabled ?? e.billingEnabled,
        };
        const same =
          next.fullName === e.fullName &&
          next.identifiant === e.identifiant &&
          next.forfaitMinutes === e.forfaitMinutes &&
          next.accountStatus === e.accountStatus &&
          next.billingEnabled === e.billingEnabled &&
          sameNumbers(next.numbers, e.numbers);
        if (same) plan.unchanged.push(r.matricule);
        else {
          plan.updated.push(r.matricule);
          changedIds.push(e.id);
          staged.push(next);
        }
      }
      const deletedIds: string[] = [];
      if (mode === 'sync') {
        for (const e of existing) {
          if (!inFile.has(e.matricule)) {
            plan.deleted.push(e.matricule);
            deletedIds.push(e.id);
          }
        }
      }
      errors.throwIfAny();

      const finalCount = existing.length + plan.created.length - plan.deleted.length;
      if (finalCount > tenant.maxUsers && plan.created.length > 0) {
        throw new ConflictError(
          'LICENCE_LIMIT',
          `product type ${tenant.productType} allows ${tenant.maxUsers} users; after this import the directory would have ${finalCount}`,
        );
      }
      const counts = { created: plan.created.length, updated: plan.updated.length, deleted: plan.deleted.length, unchanged: plan.unchanged.length };
      if (dryRun) return { importId: null, dryRun: true, ...counts, matricules: plan };

      // the snapshot first: before-images of every row this import changes or
      // removes (import_snapshot_users), and the ids it creates (snapshot.created);
      // restore puts exactly these back
      const importId = randomUUID();
      await tx`SET CONSTRAINTS users_matricule_uq, users_identifiant_uq DEFERRED`;
      const touched = [...changedIds, ...deletedIds];
      await tx`
        INSERT INTO import_snapshots (tenant_id, id, mode, summary, snapshot, created_by)
        VALUES (${tenantId}, ${importId}, ${mode}, ${JSON.stringify({ ...counts, rows: rows.length })}::text::jsonb,
                ${JSON.stringify({ version: 1, created: createdIds })}::text::jsonb, ${options.createdBy ?? null})`;
      if (touched.length) {
        await tx`
          INSERT INTO import_snapshot_users (tenant_id, import_id, id, full_name, matricule, identifiant, general_state,
                 account_status, forfait_minutes, forfait_period, used_seconds, total_call_seconds, billing_enabled,
                 authorized_numbers, created_at)
          SELECT tenant_id, ${importId}, id, full_name, matricule, identifiant, general_state,
                 account_status, forfait_minutes, forfait_period, used_seconds, total_call_seconds, billing_enabled,
                 authorized_numbers, created_at
          FROM users WHERE tenant_id = ${tenantId} AND id = ANY(${touched}::uuid[])`;
      }
      if (deletedIds.length) await tx`DELETE FROM users WHERE tenant_id = ${tenantId} AND id = ANY(${deletedIds}::uuid[])`;
      if (staged.length) {
        await copyStaging(tx, staged, onProgress);
        if (plan.updated.length) {
          await tx`
            UPDATE users u SET full_name = s.full_name, identifiant = s.identifiant, authorized_numbers = s.authorized_numbers,
                   forfait_minutes = s.forfait_minutes, account_status = s.account_status, billing_enabled = s.billing_enabled,
                   updated_at = now()
            FROM user_import_rows s
            WHERE u.tenant_id = ${tenantId} AND u.id = s.id AND NOT s.is_new`;
        }
        if (plan.created.length) {
          await tx`
            INSERT INTO users (tenant_id, id, full_name, matricule, identifiant, account_status, forfait_minutes,
                               forfait_period, billing_enabled, authorized_numbers, balance)
            SELECT ${tenantId}, id, full_name, matricule, identifiant, account_status, forfait_minutes,
                   ${period}, billing_enabled, authorized_numbers, 0
            FROM user_import_rows WHERE is_new`;
        }
      }
      return { importId, dryRun: false, ...counts };
    });
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
