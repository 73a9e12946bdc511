// The plan of an import: the file table compared with the directory in one
// join on matricule, which returns only the lines that differ from their user,
// the new ones and (sync) the users the file does not have; unchanged lines,
// the bulk of a sync, never leave PostgreSQL. Each returned line is decided:
// created, updated (or unchanged after all, when only the way it writes a
// value differs), deleted, or an error.
//
// Number cells were staged as written where they could be: a cell equal to the
// stored E.164 number (what an export in international display writes) was
// validated when it was stored; the others are parsed as the rows of the join
// arrive, while PostgreSQL is still joining.
import { randomUUID } from 'node:crypto';
import { sql, type Expression, type InferResult } from 'kysely';
import type postgres from 'postgres';
import { rawSql, type Trx } from '../../db/connection.js';
import { ConflictError } from '../shared/errors.js';
import { matriculeRule, slotCount, type NumberParser } from './fields.js';
import type { ImportErrors } from './importErrors.js';
import { withFileTable } from './importFile.js';
import type { ImportMode } from './import.js';
import { RowColumns } from './importWrite.js';
import type { LineIndex } from './lineIndex.js';
import { countUsers, type DirectoryTenant } from './repo.js';

export interface ImportPlan {
  created: string[];
  updated: string[];
  deleted: string[];
  unchanged: string[];
}

/**
 * The comparison. Its rows are read straight from postgres.js as they arrive
 * (Kysely's stream() would fetch them by cursor, each batch waiting for the
 * previous one's parsing), so the aliases that are not one word are written
 * in snake_case: they are then the same in the SQL, in the inferred row type
 * and in the rows postgres.js gives.
 */
function comparison(trx: Trx, tenantId: string, mode: ImportMode) {
  const db = withFileTable(trx);
  const directory = db
    .selectFrom('users')
    .select(['id', 'matricule', 'identifiant', 'fullName', 'authorizedNumbers', 'forfaitMinutes', 'accountStatus', 'billingEnabled'])
    .where('tenantId', '=', tenantId)
    .as('u');
  return (
    db
      .selectFrom('userImportFile as s')
      // append and upsert keep only the lines of the file (a FULL JOIN that
      // PostgreSQL reduces to a LEFT JOIN); sync also gets the users it lacks
      .fullJoin(directory, 'u.matricule', 's.matricule')
      .select((eb) => {
        // an optional field the file leaves empty keeps the user's value
        const minutes = eb.fn.coalesce('s.forfaitMinutes', 'u.forfaitMinutes');
        const status = eb.fn.coalesce('s.accountStatus', 'u.accountStatus');
        const billing = eb.fn.coalesce('s.billingEnabled', 'u.billingEnabled');
        return [
          's.line',
          'u.id',
          'u.matricule as dir_matricule',
          's.fullName as full_name',
          's.matricule',
          's.identifiant',
          's.numbers',
          storedNumbers(eb.ref('u.authorizedNumbers')).as('stored'),
          minutes.as('forfait_minutes'),
          status.as('account_status'),
          billing.as('billing_enabled'),
          // every field but the numbers equals the user's
          eb
            .and([
              eb('s.fullName', '=', eb.ref('u.fullName')),
              eb('s.identifiant', '=', eb.ref('u.identifiant')),
              eb(minutes, '=', eb.ref('u.forfaitMinutes')),
              eb(status, '=', eb.ref('u.accountStatus')),
              eb(billing, '=', eb.ref('u.billingEnabled')),
            ])
            .$castTo<boolean | null>()
            .as('same'),
          // the file sets an optional field to another value than the user's
          eb('s.forfaitMinutes', '<>', eb.ref('u.forfaitMinutes')).$castTo<boolean | null>().as('minutes_differ'),
          eb('s.accountStatus', '<>', eb.ref('u.accountStatus')).$castTo<boolean | null>().as('status_differs'),
          eb('s.billingEnabled', '<>', eb.ref('u.billingEnabled')).$castTo<boolean | null>().as('billing_differs'),
        ];
      })
      .$if(mode !== 'sync', (q) => q.where('s.line', 'is not', null))
      // append needs the known matricules too: they are its errors
      .$if(mode !== 'append', (q) =>
        q.where((eb) =>
          eb.or([
            eb('s.line', 'is', null),
            eb('u.id', 'is', null),
            eb('s.fullName', '<>', eb.ref('u.fullName')),
            eb('s.identifiant', '<>', eb.ref('u.identifiant')),
            eb(storedNumbers(eb.ref('u.authorizedNumbers')), '<>', eb.ref('s.numbers')),
            eb(eb.fn.coalesce('s.forfaitMinutes', 'u.forfaitMinutes'), '<>', eb.ref('u.forfaitMinutes')),
            eb(eb.fn.coalesce('s.accountStatus', 'u.accountStatus'), '<>', eb.ref('u.accountStatus')),
            eb(eb.fn.coalesce('s.billingEnabled', 'u.billingEnabled'), '<>', eb.ref('u.billingEnabled')),
          ]),
        ),
      )
  );
}

/** The stored numbers as the file table writes them: joined by commas, empty slots empty. */
function storedNumbers(numbers: Expression<(string | null)[] | null>) {
  return sql<string | null>`array_to_string(${numbers}, ',', '')`;
}

/** A line that is not an unchanged user, or (sync) a user the file does not have. */
type Candidate = InferResult<ReturnType<typeof comparison>>[number];

async function compareWithDirectory(trx: Trx, tenantId: string, mode: ImportMode, onRow: (c: Candidate) => void): Promise<Candidate[]> {
  // the join hashes the tenant's users: in memory
  await sql`SET LOCAL work_mem = '64MB'`.execute(trx);
  const query = comparison(trx, tenantId, mode).compile();
  const rows: Candidate[] = [];
  await (await rawSql(trx)).unsafe<Candidate[]>(query.sql, [...query.parameters] as postgres.ParameterOrJSON<never>[]).forEach((c) => {
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
async function identifiantsKept(trx: Trx, tenantId: string, errorLines: number[]): Promise<Map<number, string>> {
  const rows = await withFileTable(trx)
    .selectFrom('userImportFile as s')
    .innerJoin('users as u', (join) => join.on('u.tenantId', '=', tenantId).onRef('u.identifiant', '=', 's.identifiant'))
    .select(['s.line', 'u.matricule as holder'])
    .whereRef('u.matricule', '<>', 's.matricule')
    .where(({ not, exists, selectFrom }) =>
      not(
        exists(
          selectFrom('userImportFile as k')
            .select('k.line')
            .whereRef('k.matricule', '=', 'u.matricule')
            .where('k.line', 'not in', sql<number>`(SELECT unnest(${`{${errorLines.join(',')}}`}::int[]))`),
        ),
      ),
    )
    .execute();
  return new Map(rows.map((r) => [r.line, r.holder]));
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

/** Sorts matricules by their line (in place), when they are not in order already. */
function inFileOrder(matricules: string[], lines: number[]): void {
  let sorted = true;
  for (let k = 1; k < lines.length && sorted; k++) if (lines[k - 1]! > lines[k]!) sorted = false;
  if (sorted) return;
  const order = lines.map((_, k) => k).sort((a, b) => lines[a]! - lines[b]!);
  const copy = order.map((k) => matricules[k]!);
  for (let k = 0; k < copy.length; k++) matricules[k] = copy[k]!;
}

/** What each differing line becomes, and the rows to write. */
export class Planner {
  readonly plan: ImportPlan = { created: [], updated: [], deleted: [], unchanged: [] };
  readonly createdIds: string[] = [];
  readonly deletedIds: string[] = [];
  readonly creates = new RowColumns();
  readonly updates = new RowColumns();
  /** the optional columns some update changes (only those are assigned) */
  readonly changes = { minutes: false, status: false, billing: false };
  /** lines created or updated (a dry run lists the others as unchanged) */
  private readonly changedLines = new Set<number>();
  private readonly createdLines: number[] = [];
  private readonly updatedLines: number[] = [];
  /** the numbers of each differing line without a bad one */
  private readonly numbersOf = new Map<number, (string | null)[]>();
  /** lines with a bad number */
  private readonly errorLines: number[] = [];

  constructor(
    private readonly tenant: DirectoryTenant,
    private readonly mode: ImportMode,
    private readonly parser: NumberParser,
    private readonly errors: ImportErrors,
  ) {}

  /** Parses the numbers of a differing line that are not the stored ones. */
  private checkNumbers(c: Candidate): void {
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
      const n = this.parser.parse(cell);
      if (n.ok) numbers[s] = n.e164;
      else {
        numbers[s] = null;
        bad = true;
        this.errors.add({ line: c.line, field: `authorizedNumber${s + 1}`, value: cell, message: n.message });
      }
    }
    if (bad) this.errorLines.push(c.line);
    else this.numbersOf.set(c.line, numbers);
  }

  /** Decides a line (holder: the matricule of a kept user that has its identifiant). */
  private decide(c: Candidate, holder: string | undefined): void {
    if (c.line === null) {
      this.plan.deleted.push(c.dir_matricule!);
      this.deletedIds.push(c.id!);
      return;
    }
    const numbers = this.numbersOf.get(c.line);
    if (numbers === undefined) return; // a number error
    if (holder !== undefined) {
      this.errors.add({ line: c.line, field: 'identifiant', value: c.identifiant!, message: `identifiant already belongs to the user with matricule ${holder}` });
      return;
    }
    if (c.id === null) {
      const id = randomUUID();
      this.plan.created.push(c.matricule!);
      this.createdLines.push(c.line);
      this.createdIds.push(id);
      this.changedLines.add(c.line);
      this.creates.add({
        id,
        fullName: c.full_name!,
        matricule: c.matricule!,
        identifiant: c.identifiant!,
        numbers,
        forfaitMinutes: c.forfait_minutes ?? this.tenant.defaultForfaitMinutes,
        accountStatus: c.account_status ?? 'enabled',
        billingEnabled: c.billing_enabled ?? true,
      });
      return;
    }
    if (this.mode === 'append') {
      this.errors.add({ line: c.line, field: 'matricule', value: c.matricule!, message: 'matricule already in the directory (append only adds new users; use upsert or sync)' });
      return;
    }
    const stored = splitNumbers(c.stored!);
    let sameNumbers = true;
    for (let s = 0; s < slotCount; s++) if (numbers[s] !== stored[s]) sameNumbers = false;
    if (c.same && sameNumbers) return; // written differently, same values: unchanged
    this.plan.updated.push(c.matricule!);
    this.updatedLines.push(c.line);
    if (c.minutes_differ) this.changes.minutes = true;
    if (c.status_differs) this.changes.status = true;
    if (c.billing_differs) this.changes.billing = true;
    this.changedLines.add(c.line);
    this.updates.add({
      id: c.id,
      fullName: c.full_name!,
      matricule: c.matricule!,
      identifiant: c.identifiant!,
      numbers,
      forfaitMinutes: c.forfait_minutes!,
      accountStatus: c.account_status!,
      billingEnabled: c.billing_enabled!,
    });
  }

  /**
   * Compares the staged file with the directory and decides every line. sync
   * decides each line as its row arrives; append and upsert first need the
   * identifiants held by users the file does not name (a query after the
   * comparison). Throws the line errors, if any.
   */
  async run(trx: Trx, staged: number, compared: () => void): Promise<void> {
    const { mode } = this;
    const candidates = await compareWithDirectory(trx, this.tenant.id, mode, (c) => {
      this.checkNumbers(c);
      if (mode === 'sync') this.decide(c, undefined);
    });
    compared();
    if (mode !== 'sync') {
      const kept = staged === 0 ? new Map<number, string>() : await identifiantsKept(trx, this.tenant.id, this.errorLines);
      // file order (the plan lists matricules in it); removed users last
      candidates.sort((a, b) => (a.line ?? Infinity) - (b.line ?? Infinity));
      for (const c of candidates) this.decide(c, c.line === null ? undefined : kept.get(c.line));
    } else {
      // the rows came in the join's order: the plan lists matricules in file order
      inFileOrder(this.plan.created, this.createdLines);
      inFileOrder(this.plan.updated, this.updatedLines);
    }
    this.errors.throwIfAny();
  }

  /** The plan with the unchanged matricules too (a dry run's answer; no errors: every matricule of the file is a staged line). */
  listed(matricules: LineIndex): ImportPlan {
    const { keys, lines, size } = matricules;
    for (let e = 0; e < size; e++) if (!this.changedLines.has(lines[e]!)) this.plan.unchanged.push(String(keys[e]).padStart(matriculeRule.digits, '0'));
    this.plan.deleted.sort();
    return this.plan;
  }

  /** LICENCE_LIMIT when the directory would have more users than the product type allows. */
  async checkLicence(trx: Trx, staged: number): Promise<void> {
    const { plan, tenant } = this;
    if (plan.created.length === 0) return;
    // sync: every staged line is a created or a known user, and the others are deleted
    const existing = this.mode === 'sync' ? staged - plan.created.length + plan.deleted.length : await countUsers(trx, tenant.id);
    const finalCount = existing + plan.created.length - plan.deleted.length;
    if (finalCount > tenant.maxUsers) {
      throw new ConflictError('LICENCE_LIMIT', `product type ${tenant.productType} allows ${tenant.maxUsers} users; after this import the directory would have ${finalCount}`);
    }
  }
}
