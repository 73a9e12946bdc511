// The snapshot of an import, what restore puts back (restore.ts): the import's
// row in import_snapshots (mode, counts, the ids it created) and the
// before-image of every user it changed or removed. The before-images are
// taken by the writing statements themselves (UPDATE … RETURNING old.…, DELETE
// … RETURNING …), so they hold exactly what was replaced, and are stored as one
// row of column arrays per statement (import_snapshot_batches; 10,000 rows of
// import_snapshot_users and their key entries cost ~35 ms, one row of arrays a
// few). Imports written before migration 0011 have one row per user in
// import_snapshot_users: restore reads both.
import { sql, type QueryCreator } from 'kysely';
import type { Trx } from '../../db/connection.js';
import type { Database, UserBeforeImage } from '../../db/schema.js';
import type { ImportMode } from './import.js';

/** The columns of a before-image, in the order of import_snapshot_batches' arrays. */
export const imageColumns = [
  'id',
  'fullName',
  'matricule',
  'identifiant',
  'generalState',
  'accountStatus',
  'forfaitMinutes',
  'forfaitPeriod',
  'usedSeconds',
  'totalCallSeconds',
  'billingEnabled',
  'authorizedNumbers',
  'createdAt',
] as const satisfies readonly (keyof UserBeforeImage)[];

const batchArrays = [
  'ids',
  'fullNames',
  'matricules',
  'identifiants',
  'generalStates',
  'accountStatuses',
  'forfaitMinutes',
  'forfaitPeriods',
  'usedSeconds',
  'totalCallSeconds',
  'billingEnabled',
  'authorizedNumbers',
  'createdAts',
] as const;

export interface ImportSummary {
  created: number;
  updated: number;
  deleted: number;
  unchanged: number;
  /** lines of the file without error */
  rows: number;
}

/** The import's row: restore deletes `created` and finds the before-images by its id. */
export async function recordImport(
  trx: Trx,
  r: { tenantId: string; importId: string; mode: ImportMode; summary: ImportSummary; created: string[]; createdBy: string | null },
): Promise<void> {
  // jsonb from text: a string parameter typed jsonb would be JSON-encoded once more by postgres.js
  await trx
    .insertInto('importSnapshots')
    .values({
      tenantId: r.tenantId,
      id: r.importId,
      mode: r.mode,
      summary: sql<string>`${JSON.stringify(r.summary)}::text::jsonb`,
      snapshot: sql<string>`${JSON.stringify({ version: 1, created: r.created })}::text::jsonb`,
      createdBy: r.createdBy,
    })
    .execute();
}

/** The before-image columns of the users a statement returns (`u.…` of a DELETE, `old.…` of an UPDATE). */
export function beforeImageOf(alias: 'u' | 'old') {
  const column = <C extends (typeof imageColumns)[number]>(c: C) => sql.ref<UserBeforeImage[C]>(`${alias}.${c}`).as(c);
  return [
    column('id'),
    column('fullName'),
    column('matricule'),
    column('identifiant'),
    column('generalState'),
    column('accountStatus'),
    column('forfaitMinutes'),
    column('forfaitPeriod'),
    column('usedSeconds'),
    column('totalCallSeconds'),
    column('billingEnabled'),
    column('authorizedNumbers'),
    column('createdAt'),
  ] as const;
}

/**
 * Stores the rows of `changed` (a common table expression: the before-images an
 * UPDATE or DELETE returned) as one row of arrays; nothing when it is empty.
 */
export function keepBeforeImages(db: QueryCreator<Database & { changed: UserBeforeImage }>, tenantId: string, importId: string) {
  return db
    .insertInto('importSnapshotBatches')
    .columns(['tenantId', 'importId', ...batchArrays])
    .expression((eb) =>
      eb
        .selectFrom('changed')
        .select((eb) => [
          eb.val(tenantId).as('tenantId'),
          eb.val(importId).as('importId'),
          ...imageColumns.map((c) =>
            (c === 'authorizedNumbers' ? eb.fn.agg<string[]>('array_agg', [sql`${sql.ref(c)}::text`]) : eb.fn.agg<unknown[]>('array_agg', [c])).as(c),
          ),
        ])
        .having((eb) => eb.fn.countAll(), '>', sql.lit(0)),
    );
}

/** The before-images of an import, from both tables, as rows. */
export function beforeImages(trx: Trx, tenantId: string, importId: string) {
  const perUser = trx
    .selectFrom('importSnapshotUsers')
    .select(['tenantId', ...imageColumns])
    .where('tenantId', '=', tenantId)
    .where('importId', '=', importId);
  // each user's numbers are the text of their array literal
  const unnested = sql<Omit<UserBeforeImage, 'authorizedNumbers'> & { authorizedNumbers: string }>`unnest(${sql.join(batchArrays.map((a) => sql.ref(`x.${a}`)))})`;
  const perBatch = trx
    .selectFrom('importSnapshotBatches as x')
    .crossJoinLateral(unnested.as<'b'>(sql`b(${sql.join(imageColumns.map((c) => sql.ref(c)))})`))
    .select(['x.tenantId', 'b.id', 'b.fullName', 'b.matricule', 'b.identifiant', 'b.generalState', 'b.accountStatus', 'b.forfaitMinutes'])
    .select(['b.forfaitPeriod', 'b.usedSeconds', 'b.totalCallSeconds', 'b.billingEnabled'])
    .select(sql<UserBeforeImage['authorizedNumbers']>`${sql.ref('b.authorizedNumbers')}::text[]`.as('authorizedNumbers'))
    .select('b.createdAt')
    .where('x.tenantId', '=', tenantId)
    .where('x.importId', '=', importId);
  return perUser.unionAll(perBatch);
}
