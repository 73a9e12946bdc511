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
import type postgres from 'postgres';
import type { Db } from '../../db/connection.js';
import { ConflictError, NotFoundError, ValidationError } from '../shared/errors.js';
import { isUnique } from './import.js';
import { lockDirectoryRaw } from './raw.js';
import { uuidRe } from './directory.js';

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

interface SnapshotRow {
  id: string;
  created_at: Date;
  restored_at: Date | null;
}

/** The before-images of an import, from both tables, as rows. */
function beforeImages(tx: postgres.TransactionSql, tenantId: string, importId: string) {
  return tx`
    SELECT tenant_id, id, full_name, matricule, identifiant, general_state, account_status, forfait_minutes,
           forfait_period, used_seconds, total_call_seconds, billing_enabled, authorized_numbers, created_at
    FROM import_snapshot_users WHERE tenant_id = ${tenantId} AND import_id = ${importId}
    UNION ALL
    SELECT x.tenant_id, b.id, b.full_name, b.matricule, b.identifiant, b.general_state, b.account_status, b.forfait_minutes,
           b.forfait_period, b.used_seconds, b.total_call_seconds, b.billing_enabled, b.authorized_numbers::text[], b.created_at
    FROM import_snapshot_batches x
    CROSS JOIN LATERAL unnest(x.ids, x.full_names, x.matricules, x.identifiants, x.general_states, x.account_statuses,
                              x.forfait_minutes, x.forfait_periods, x.used_seconds, x.total_call_seconds, x.billing_enabled,
                              x.authorized_numbers, x.created_ats)
         AS b(id, full_name, matricule, identifiant, general_state, account_status, forfait_minutes, forfait_period,
              used_seconds, total_call_seconds, billing_enabled, authorized_numbers, created_at)
    WHERE x.tenant_id = ${tenantId} AND x.import_id = ${importId}`;
}

export async function restoreImport(sql: postgres.Sql, tenantId: string, importId: string, restoredBy: string | null): Promise<RestoreResult> {
  if (!uuidRe.test(importId)) throw new NotFoundError('import');
  try {
    return await sql.begin(async (tx) => {
      const tenant = await lockDirectoryRaw(tx, tenantId);
      const [snap] = await tx<SnapshotRow[]>`
        SELECT id, created_at, restored_at FROM import_snapshots
        WHERE tenant_id = ${tenantId} AND id = ${importId} FOR UPDATE`;
      if (!snap) throw new NotFoundError('import');
      if (snap.restored_at) throw new ConflictError('CONFLICT', `import ${importId} was already restored at ${snap.restored_at.toISOString()}`);
      const [later] = await tx<{ id: string }[]>`
        SELECT id FROM import_snapshots
        WHERE tenant_id = ${tenantId} AND restored_at IS NULL
          AND (created_at, id) > (SELECT created_at, id FROM import_snapshots WHERE tenant_id = ${tenantId} AND id = ${importId})
        ORDER BY created_at DESC LIMIT 1`;
      if (later) throw new ConflictError('CONFLICT', `import ${later.id} came after this one: restore it first (imports are undone newest first)`);

      await tx`SET CONSTRAINTS users_matricule_uq, users_identifiant_uq DEFERRED`;
      const removed = await tx`
        DELETE FROM users u USING import_snapshots s
        WHERE s.tenant_id = ${tenantId} AND s.id = ${importId}
          AND u.tenant_id = ${tenantId} AND u.id IN (SELECT jsonb_array_elements_text(s.snapshot -> 'created')::uuid)`;
      const restored = await tx`
        UPDATE users u SET full_name = b.full_name, matricule = b.matricule, identifiant = b.identifiant,
               general_state = b.general_state, account_status = b.account_status, forfait_minutes = b.forfait_minutes,
               billing_enabled = b.billing_enabled, authorized_numbers = b.authorized_numbers, updated_at = now()
        FROM (${beforeImages(tx, tenantId, importId)}) b
        WHERE u.tenant_id = ${tenantId} AND u.id = b.id`;
      const recreated = await tx`
        INSERT INTO users (tenant_id, id, full_name, matricule, identifiant, general_state, account_status, forfait_minutes,
                           forfait_period, used_seconds, total_call_seconds, billing_enabled, authorized_numbers, balance,
                           created_at, updated_at)
        SELECT b.tenant_id, b.id, b.full_name, b.matricule, b.identifiant, b.general_state, b.account_status, b.forfait_minutes,
               b.forfait_period, b.used_seconds, b.total_call_seconds, b.billing_enabled, b.authorized_numbers,
               coalesce((SELECT sum(l.amount) FROM ledger_entries l WHERE l.tenant_id = b.tenant_id AND l.user_id = b.id), 0),
               b.created_at, now()
        FROM (${beforeImages(tx, tenantId, importId)}) b
        WHERE NOT EXISTS (SELECT 1 FROM users x WHERE x.tenant_id = b.tenant_id AND x.id = b.id)`;
      const [counted] = await tx<{ n: string }[]>`SELECT count(*) AS n FROM users WHERE tenant_id = ${tenantId}`;
      const n = Number(counted?.n ?? 0);
      if (recreated.count > 0 && n > tenant.maxUsers) {
        throw new ConflictError('LICENCE_LIMIT', `product type ${tenant.productType} allows ${tenant.maxUsers} users; the restored directory would have ${n}`);
      }
      const [done] = await tx<{ restored_at: Date }[]>`
        UPDATE import_snapshots SET restored_at = now(),
               summary = summary || jsonb_build_object('restoredBy', ${restoredBy}::text)
        WHERE tenant_id = ${tenantId} AND id = ${importId} RETURNING restored_at`;
      return {
        importId,
        restoredAt: (done?.restored_at ?? new Date()).toISOString(),
        deleted: removed.count,
        restored: restored.count,
        recreated: recreated.count,
      };
    });
  } catch (err) {
    if (isUnique(err)) {
      const detail = (err as { detail?: string }).detail ?? '';
      throw new ConflictError('CONFLICT', `the directory changed since this import and cannot be put back: ${detail || 'a matricule or identifiant is now used by another user'}`);
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
