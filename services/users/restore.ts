// Restore of a users import, and the import history.
//
// An import's snapshot holds the before-image of every user it changed or
// removed (import_snapshot_batches: one row of column arrays per statement;
// import_snapshot_users, one row per user, for imports written before
// migration 0011) and the ids of the users it created
// (import_snapshots.snapshot.created). Restore undoes exactly that:
// created users are deleted, changed users get their previous directory fields
// back, removed users are re-created with their original ids. Restore never
// moves money: a re-created user's balance is the sum of its ledger (the
// entries outlived the deletion), and the balance of everyone else is left as
// it is. Usage counters (usedSeconds, totalCallSeconds) of users that still
// exist are kept: calls made since the import really happened.
//
// Imports are undone newest first: restoring one while a later import of the
// tenant is still in place is refused (409), so a restore always brings back a
// state the directory really had.
import { validate as isUuid } from 'uuid';
import { isUniqueViolation } from '../../db/errors.js';
import { sql } from 'kysely';
import { withTransaction, type Db } from '../../db/connection.js';
import { ConflictError, NotFoundError, ValidationError } from '../shared/errors.js';
import { countUsers, deferDirectoryUniqueness, lockDirectory } from './repo.js';
import { beforeImages, imageColumns } from './snapshot.js';
import { recordAudit, type Actor } from '../audit/audit.js';

export interface RestoreResult {
  importId: string;
  restoredAt: string;
  /** users the import had created, now deleted */
  deleted: number;
  /** users the import had changed, now back to their previous fields */
  restored: number;
  /** users the import had removed (or removed since), re-created with their ids */
  recreated: number;
}

export async function restoreImport(db: Db, tenantId: string, importId: string, restoredBy: string | null, actor?: Actor): Promise<RestoreResult> {
  if (!isUuid(importId)) throw new NotFoundError('import');
  try {
    return await withTransaction(db, async (trx) => {
      const tenant = await lockDirectory(trx, tenantId);
      const snap = await trx
        .selectFrom('importSnapshots')
        .select(['id', 'createdAt', 'restoredAt'])
        .where('tenantId', '=', tenantId)
        .where('id', '=', importId)
        .forUpdate()
        .executeTakeFirst();
      if (!snap) throw new NotFoundError('import');
      if (snap.restoredAt) throw new ConflictError('CONFLICT', `import ${importId} was already restored at ${snap.restoredAt.toISOString()}`);
      // compared in the database: created_at has microseconds, a JS Date only milliseconds
      const later = await trx
        .selectFrom('importSnapshots')
        .select('id')
        .where('tenantId', '=', tenantId)
        .where('restoredAt', 'is', null)
        .where((eb) =>
          eb(
            eb.refTuple('createdAt', 'id'),
            '>',
            eb.selectFrom('importSnapshots').select(['createdAt', 'id']).where('tenantId', '=', tenantId).where('id', '=', importId).$asTuple('createdAt', 'id'),
          ),
        )
        .orderBy('createdAt', 'desc')
        .limit(1)
        .executeTakeFirst();
      if (later) throw new ConflictError('CONFLICT', `import ${later.id} came after this one: restore it first (imports are undone newest first)`);

      await deferDirectoryUniqueness(trx);
      const removed = await trx
        .deleteFrom('users as u')
        .using('importSnapshots as s')
        .where('s.tenantId', '=', tenantId)
        .where('s.id', '=', importId)
        .where('u.tenantId', '=', tenantId)
        .where('u.id', 'in', sql<string>`(SELECT jsonb_array_elements_text(${sql.ref('s.snapshot')} -> 'created')::uuid)`)
        .executeTakeFirstOrThrow();
      const restored = await trx
        .updateTable('users as u')
        .from(beforeImages(trx, tenantId, importId).as('b'))
        .set((eb) => ({
          fullName: eb.ref('b.fullName'),
          matricule: eb.ref('b.matricule'),
          identifiant: eb.ref('b.identifiant'),
          generalState: eb.ref('b.generalState'),
          accountStatus: eb.ref('b.accountStatus'),
          forfaitMinutes: eb.ref('b.forfaitMinutes'),
          billingEnabled: eb.ref('b.billingEnabled'),
          authorizedNumbers: eb.ref('b.authorizedNumbers'),
          updatedAt: sql`now()`,
        }))
        .where('u.tenantId', '=', tenantId)
        .whereRef('u.id', '=', 'b.id')
        .executeTakeFirstOrThrow();
      // a re-created user's balance is its ledger's sum: the entries outlived the deletion
      const recreated = await trx
        .insertInto('users')
        .columns(['tenantId', ...imageColumns, 'balance', 'updatedAt'])
        .expression((eb) =>
          eb
            .selectFrom(beforeImages(trx, tenantId, importId).as('b'))
            .select(['b.tenantId', 'b.id', 'b.fullName', 'b.matricule', 'b.identifiant', 'b.generalState', 'b.accountStatus', 'b.forfaitMinutes'])
            .select(['b.forfaitPeriod', 'b.usedSeconds', 'b.totalCallSeconds', 'b.billingEnabled', 'b.authorizedNumbers', 'b.createdAt'])
            .select((eb) =>
              eb.fn
                .coalesce(
                  eb.selectFrom('ledgerEntries as l').select((eb) => eb.fn.sum<string>('l.amount').as('sum')).whereRef('l.tenantId', '=', 'b.tenantId').whereRef('l.userId', '=', 'b.id'),
                  sql.lit('0'),
                )
                .as('balance'),
            )
            .select(sql<Date>`now()`.as('updatedAt'))
            .where(({ not, exists, selectFrom }) =>
              not(exists(selectFrom('users as x').select('x.id').whereRef('x.tenantId', '=', 'b.tenantId').whereRef('x.id', '=', 'b.id'))),
            ),
        )
        .executeTakeFirstOrThrow();
      const recreatedCount = Number(recreated.numInsertedOrUpdatedRows ?? 0);
      const n = await countUsers(trx, tenantId);
      if (recreatedCount > 0 && n > tenant.maxUsers) {
        throw new ConflictError('LICENCE_LIMIT', `product type ${tenant.productType} allows ${tenant.maxUsers} users; the restored directory would have ${n}`);
      }
      const done = await trx
        .updateTable('importSnapshots')
        .set({ restoredAt: sql`now()`, summary: sql<string>`${sql.ref('summary')} || jsonb_build_object('restoredBy', ${restoredBy}::text)` })
        .where('tenantId', '=', tenantId)
        .where('id', '=', importId)
        .returning('restoredAt')
        .executeTakeFirst();
      const result = {
        importId,
        restoredAt: (done?.restoredAt ?? new Date()).toISOString(),
        deleted: Number(removed.numDeletedRows),
        restored: Number(restored.numUpdatedRows),
        recreated: recreatedCount,
      };
      if (actor) await recordAudit(trx, actor, { tenantId, action: 'users.restore', targetType: 'import', targetId: importId, after: result });
      return result;
    });
  } catch (err) {
    if (isUniqueViolation(err)) {
      throw new ConflictError('CONFLICT', `the directory changed since this import and cannot be put back: ${err.detail || 'a matricule or identifiant is now used by another user'}`);
    }
    throw err;
  }
}

export interface ImportView {
  id: string;
  mode: 'append' | 'upsert' | 'sync';
  created: number;
  updated: number;
  deleted: number;
  unchanged: number;
  createdBy: string | null;
  createdAt: string;
  restoredAt: string | null;
}

/** The tenant's imports, newest first. Cursor: "<createdAt ISO>|<id>" of the last one seen. */
export async function listImports(db: Db, tenantId: string, limit: number, cursor?: string) {
  let q = db
    .selectFrom('importSnapshots')
    .select(['id', 'mode', 'summary', 'createdBy', 'createdAt', 'restoredAt'])
    .where('tenantId', '=', tenantId)
    .orderBy('createdAt', 'desc')
    .orderBy('id', 'desc')
    .limit(limit + 1);
  if (cursor !== undefined) {
    const m = /^(\d{4}-\d{2}-\d{2}T[0-9:.]+Z)\|([0-9a-f-]{36})$/.exec(cursor);
    if (!m) throw new ValidationError('invalid cursor', [{ field: 'cursor', value: cursor, message: 'not a cursor of this list' }]);
    const at = new Date(m[1]!);
    q = q.where((eb) => eb.or([eb('createdAt', '<', at), eb.and([eb('createdAt', '=', at), eb('id', '<', m[2]!)])]));
  }
  const rows = await q.execute();
  const items: ImportView[] = rows.slice(0, limit).map((r) => {
    const s = (r.summary ?? {}) as Partial<Record<'created' | 'updated' | 'deleted' | 'unchanged', number>>;
    return {
      id: r.id,
      mode: r.mode,
      created: s.created ?? 0,
      updated: s.updated ?? 0,
      deleted: s.deleted ?? 0,
      unchanged: s.unchanged ?? 0,
      createdBy: r.createdBy,
      createdAt: r.createdAt.toISOString(),
      restoredAt: r.restoredAt ? r.restoredAt.toISOString() : null,
    };
  });
  const last = items[items.length - 1];
  return { items, nextCursor: rows.length > limit && last ? `${last.createdAt}|${last.id}` : null };
}
