// The writes of an import, set-based: one DELETE, one UPDATE and one INSERT
// whatever the file size, the first two keeping the before-images of what they
// replace (snapshot.ts). The rows to write are one unnest() of array
// parameters, one PostgreSQL array literal per column, built row by row while
// the comparison is still streaming (postgres.js serialising 10,000-element
// arrays when the statement is sent cost ~10 ms after it): no staging table.
import { sql } from 'kysely';
import type { Trx } from '../../db/connection.js';
import type { User } from '../../db/schema.js';
import { periodOf } from '../../engine/periods.js';
import type { ImportProgress } from './import.js';
import type { Planner } from './importPlan.js';
import type { DirectoryTenant } from './repo.js';
import { beforeImageOf, keepBeforeImages } from './snapshot.js';

/** A row as it will be in the directory; `numbers` the 10 slots joined by commas, empty ones empty. */
export type StagedRow = Pick<User, 'id' | 'fullName' | 'matricule' | 'identifiant' | 'forfaitMinutes' | 'accountStatus' | 'billingEnabled'> & { numbers: string };

/** Each column's PostgreSQL type, for its array parameter. */
const columnTypes: { readonly [C in keyof StagedRow]: string } = {
  id: 'uuid',
  fullName: 'text',
  matricule: 'text',
  identifiant: 'text',
  numbers: 'text',
  forfaitMinutes: 'int',
  accountStatus: 'text',
  billingEnabled: 'boolean',
};

const arrayQuote = /["\\]/g;

/** Rows to write, as one PostgreSQL array literal per column. */
export class RowColumns {
  size = 0;
  private readonly columns: { [C in keyof StagedRow]: string[] } = {
    id: [],
    fullName: [],
    matricule: [],
    identifiant: [],
    numbers: [],
    forfaitMinutes: [],
    accountStatus: [],
    billingEnabled: [],
  };

  add(u: Omit<StagedRow, 'numbers'> & { numbers: readonly (string | null)[] }): void {
    const c = this.columns;
    this.size++;
    c.id.push(u.id);
    c.fullName.push(`"${u.fullName.replace(arrayQuote, '\\$&')}"`);
    c.matricule.push(u.matricule); // digits
    c.identifiant.push(u.identifiant); // digits
    // "+33…,,+33…": string_to_array(…, ',', '') gives the 10 slots back, empty ones NULL
    c.numbers.push(`"${u.numbers.map((x) => x ?? '').join(',').replace(arrayQuote, '\\$&')}"`);
    c.forfaitMinutes.push(String(u.forfaitMinutes));
    c.accountStatus.push(u.accountStatus);
    c.billingEnabled.push(u.billingEnabled ? 't' : 'f');
  }

  /** The column's array literal, typed: `$n::uuid[]`. */
  array(column: keyof StagedRow) {
    return sql`${`{${this.columns[column].join(',')}}`}::${sql.raw(columnTypes[column])}[]`;
  }

  /** `unnest(…) AS p(…)` of the given columns: the rows, as table p. */
  rows<C extends keyof StagedRow>(columns: readonly C[]) {
    return sql<Pick<StagedRow, C>>`unnest(${sql.join(columns.map((c) => this.array(c)))})`.as<'p'>(sql`p(${sql.join(columns.map((c) => sql.ref(c)))})`);
  }
}

/** The 10 slots back from the joined text. */
const slotsOf = (joined: string) => sql<(string | null)[]>`string_to_array(${sql.ref(joined)}, ',', '')`;

/** Deletes the users a sync no longer has, keeping their before-images (DELETE … RETURNING). */
async function deleteUsers(trx: Trx, tenantId: string, importId: string, ids: string[]): Promise<void> {
  const changed = trx
    .deleteFrom('users as u')
    .using(sql<{ id: string }>`unnest(${`{${ids.join(',')}}`}::uuid[])`.as<'d'>(sql`d(id)`))
    .where('u.tenantId', '=', tenantId)
    .whereRef('u.id', '=', 'd.id')
    .returning(beforeImageOf('u'));
  await keepBeforeImages(trx.with('changed', () => changed), tenantId, importId).execute();
}

/**
 * Changes the known users to their file rows, keeping the before-image of each
 * in the same statement: the UPDATE returns the rows as they were (RETURNING
 * old.*, PostgreSQL 18), so the snapshot needs no scan of its own. Only the
 * optional columns some row changes are assigned (an unchanged account status
 * does not even reach the status-history trigger).
 */
async function updateUsers(
  trx: Trx,
  tenantId: string,
  importId: string,
  rows: RowColumns,
  changes: { minutes: boolean; status: boolean; billing: boolean },
): Promise<void> {
  const changed = trx
    .updateTable('users as u')
    .from(rows.rows(['id', 'fullName', 'identifiant', 'numbers', 'forfaitMinutes', 'accountStatus', 'billingEnabled']))
    .set((eb) => ({
      fullName: eb.ref('p.fullName'),
      identifiant: eb.ref('p.identifiant'),
      authorizedNumbers: slotsOf('p.numbers'),
      updatedAt: sql`now()`,
      ...(changes.minutes ? { forfaitMinutes: eb.ref('p.forfaitMinutes') } : {}),
      ...(changes.status ? { accountStatus: eb.ref('p.accountStatus') } : {}),
      ...(changes.billing ? { billingEnabled: eb.ref('p.billingEnabled') } : {}),
    }))
    .where('u.tenantId', '=', tenantId)
    // the hash of the join then holds the rows to change, not the tenant's users
    .where('u.id', '=', sql<string>`ANY(${rows.array('id')})`)
    .whereRef('u.id', '=', 'p.id')
    .returning(beforeImageOf('old'));
  await keepBeforeImages(trx.with('changed', () => changed), tenantId, importId).execute();
}

async function insertUsers(trx: Trx, tenantId: string, period: string, rows: RowColumns): Promise<void> {
  await trx
    .insertInto('users')
    .columns(['tenantId', 'id', 'fullName', 'matricule', 'identifiant', 'accountStatus', 'forfaitMinutes', 'forfaitPeriod', 'billingEnabled', 'authorizedNumbers', 'balance'])
    .expression((eb) =>
      eb
        .selectFrom(rows.rows(['id', 'fullName', 'matricule', 'identifiant', 'numbers', 'forfaitMinutes', 'accountStatus', 'billingEnabled']))
        .select((eb) => [
          eb.val(tenantId).as('tenantId'),
          'p.id',
          'p.fullName',
          'p.matricule',
          'p.identifiant',
          'p.accountStatus',
          'p.forfaitMinutes',
          eb.val(period).as('forfaitPeriod'),
          'p.billingEnabled',
          slotsOf('p.numbers').as('authorizedNumbers'),
          sql.lit(0).as('balance'),
        ]),
    )
    .execute();
}

/** Writes what the planner decided: removed users, then changed ones, then new ones. */
export async function writePlan(trx: Trx, tenant: DirectoryTenant, importId: string, planner: Planner, onProgress?: (p: ImportProgress) => void): Promise<void> {
  const { deletedIds, updates, creates } = planner;
  const total = deletedIds.length + updates.size + creates.size;
  if (total) onProgress?.({ phase: 'write', done: 0, total });
  if (deletedIds.length) await deleteUsers(trx, tenant.id, importId, deletedIds);
  if (updates.size) await updateUsers(trx, tenant.id, importId, updates, planner.changes);
  if (creates.size) await insertUsers(trx, tenant.id, periodOf(new Date(), tenant.timezone), creates);
  if (total) onProgress?.({ phase: 'write', done: total, total });
}
