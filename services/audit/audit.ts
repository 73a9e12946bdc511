import { sql } from 'kysely';
import type { Db, Trx } from '../../db/connection.js';
import type { Principal } from '../access/access.js';
import { NotFoundError } from '../shared/errors.js';

/**
 * The audit trail (issue 20; seed 000's task history): every change made by a
 * person or a key — who, what, when, before and after — appended by the verb
 * that makes the change, in its transaction when it has one, so the API and
 * the portal (which goes through the API) write the same events. The table is
 * append-only (migration 0061 refuses UPDATE and DELETE).
 */
export interface Actor {
  kind: 'key' | 'person' | 'system';
  id: string;
  label: string | null;
}

export function actorOf(principal: Principal): Actor {
  if (principal.person) return { kind: 'person', id: principal.person.id, label: principal.person.email };
  return { kind: 'key', id: principal.keyId, label: null };
}

export const systemActor = (what: string): Actor => ({ kind: 'system', id: what, label: null });

export interface AuditEvent {
  /** The tenant the change is in; null with `resellerId` for the reseller's own (tenants, its people). */
  tenantId: string | null;
  resellerId?: string;
  action: string;
  targetType: string;
  targetId: string | null;
  before?: unknown;
  after?: unknown;
}

/** Appends one event. Secrets never belong in before/after: callers pass views. */
export async function recordAudit(db: Db | Trx, actor: Actor, e: AuditEvent): Promise<void> {
  // postgres.js serializes a jsonb parameter itself (JSON.stringify): the value goes as it is
  const json = (v: unknown) => (v === undefined || v === null ? null : sql<string>`${JSON.parse(JSON.stringify(v))}::jsonb`);
  const resellerId = e.resellerId
    ? sql<string>`${e.resellerId}::uuid`
    : sql<string>`(SELECT reseller_id FROM tenants WHERE id = ${e.tenantId}::uuid)`;
  await db
    .insertInto('auditEvents')
    .values({
      resellerId,
      tenantId: e.tenantId,
      actorKind: actor.kind,
      actorId: actor.id,
      actorLabel: actor.label,
      action: e.action,
      targetType: e.targetType,
      targetId: e.targetId,
      before: json(e.before),
      after: json(e.after),
    })
    .execute();
}

export interface AuditView {
  id: string;
  at: string;
  tenantId: string | null;
  actor: Actor;
  action: string;
  targetType: string;
  targetId: string | null;
  before: unknown;
  after: unknown;
}

export interface AuditFilters {
  limit: number;
  cursor?: string;
  action?: string;
  targetId?: string;
  /** A reseller reading one of its tenants' trails. */
  tenantId?: string;
}

/**
 * Newest first. A tenant principal reads its tenant's events; a reseller its
 * own and, with `tenantId`, one of its tenants' (another reseller's: 404).
 */
export async function listAudit(db: Db, principal: Principal, f: AuditFilters): Promise<{ items: AuditView[]; nextCursor: string | null }> {
  let q = db.selectFrom('auditEvents').selectAll().orderBy('id', 'desc').limit(f.limit + 1);
  if (principal.kind === 'tenant') {
    q = q.where('tenantId', '=', principal.tenantId);
  } else if (f.tenantId) {
    const owned = await db.selectFrom('tenants').select('id').where('id', '=', f.tenantId).where('resellerId', '=', principal.resellerId).executeTakeFirst();
    if (!owned) throw new NotFoundError('tenant');
    q = q.where('tenantId', '=', f.tenantId);
  } else {
    q = q.where('resellerId', '=', principal.resellerId);
  }
  if (f.cursor) q = q.where('id', '<', f.cursor);
  if (f.action) q = q.where('action', '=', f.action);
  if (f.targetId) q = q.where('targetId', '=', f.targetId);
  const rows = await q.execute();
  const items = rows.slice(0, f.limit).map(
    (r): AuditView => ({
      id: r.id,
      at: r.at.toISOString(),
      tenantId: r.tenantId,
      actor: { kind: r.actorKind, id: r.actorId, label: r.actorLabel },
      action: r.action,
      targetType: r.targetType,
      targetId: r.targetId,
      before: r.before ?? null,
      after: r.after ?? null,
    }),
  );
  return { items, nextCursor: rows.length > f.limit ? items[items.length - 1]!.id : null };
}
