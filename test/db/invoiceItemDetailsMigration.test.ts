import { describe, expect, it } from 'vitest';
import { migrateTo, migrateToLatest } from '../../db/migrate.js';
import { scratchDatabase } from '../support/scratchDb.js';

/**
 * Migration 0150 on a database whose invoices were issued before it: each call
 * item gets its CDR's details; an item whose CDR is gone (archived before the
 * migration) and a licence keep none; the rows stay immutable but for an item
 * without details receiving its own CDR's, once.
 */
const scratch = scratchDatabase('forfait_items');

describe('migration 0150 (invoice items keep their calls’ details)', () => {
  it('freezes the details of the calls still stored, leaves the archived ones empty, and keeps the rows immutable', async () => {
    const h = scratch.handle();
    await migrateTo(h.db, '2026_12_02_0080_cluster');
    const { sql } = h;
    const tenant = '00000000-0000-4000-8000-000000000001';
    const invoice = '00000000-0000-4000-8000-0000000000a1';
    const user = '00000000-0000-4000-8000-0000000000b1';
    await sql`SELECT cdrs_ensure_month(timestamptz '2026-10-03T10:00:00Z')`;
    const [kept] = await sql<{ id: string }[]>`
      INSERT INTO cdrs (tenant_id, call_id, user_id, identifiant, callee, direction, started_at, duration_seconds, disposition, destination, class, cost)
      VALUES (${tenant}, 'kept-1', ${user}, '2001', '+33612345678', 'out', '2026-10-03T10:00:00Z', 61, 'answered', 'France mobile', 'mobile', 0.12)
      RETURNING id::text`;
    // items as issue wrote them before 0150 (the foreign keys of a whole invoice are not the point here)
    await sql.begin(async (tx) => {
      await tx`SET LOCAL session_replication_role = replica`;
      await tx`
        INSERT INTO invoice_items (tenant_id, invoice_id, line_no, kind, user_id, cdr_id, charged_seconds, cost, amount)
        VALUES (${tenant}, ${invoice}, 1, 'licence', ${user}, NULL, 0, 4, 4),
               (${tenant}, ${invoice}, 3, 'call', ${user}, ${kept!.id}, 120, 0.12, 0.12),
               (${tenant}, ${invoice}, 3, 'call', ${user}, 999999, 60, 0.06, 0.06)`;
    });

    await migrateToLatest(h.db);
    const items = await sql`
      SELECT kind, cdr_id::text, call_id, started_at, callee, destination, class, identifiant FROM invoice_items ORDER BY line_no, cdr_id`;
    expect(items).toEqual([
      { kind: 'licence', cdr_id: null, call_id: null, started_at: null, callee: null, destination: null, class: null, identifiant: null },
      { kind: 'call', cdr_id: kept!.id, call_id: 'kept-1', started_at: new Date('2026-10-03T10:00:00Z'), callee: '+33612345678', destination: 'France mobile', class: 'mobile', identifiant: '2001' },
      { kind: 'call', cdr_id: '999999', call_id: null, started_at: null, callee: null, destination: null, class: null, identifiant: null },
    ]);
    // frozen details do not change; an amount neither; an item without details takes only its own CDR's; nothing is deleted
    await expect(sql`UPDATE invoice_items SET callee = '+33700000000' WHERE cdr_id = ${kept!.id}`).rejects.toThrow(/immutable/);
    await expect(sql`UPDATE invoice_items SET amount = 0 WHERE kind = 'licence'`).rejects.toThrow(/immutable/);
    await expect(sql`UPDATE invoice_items SET call_id = 'kept-1' WHERE cdr_id = 999999`).rejects.toThrow(/immutable/);
    await expect(sql`DELETE FROM invoice_items WHERE cdr_id = 999999`).rejects.toThrow(/immutable/);
    // its CDR back (a restore): it may receive its details, once
    await sql`
      INSERT INTO cdrs (tenant_id, id, call_id, user_id, callee, direction, started_at, duration_seconds, disposition, class, cost) OVERRIDING SYSTEM VALUE
      VALUES (${tenant}, 999999, 'back-1', ${user}, '+33142000000', 'out', '2026-10-04T10:00:00Z', 60, 'answered', 'fixed', 0.06)`;
    await sql`
      UPDATE invoice_items i SET call_id = c.call_id, started_at = c.started_at, callee = c.callee, destination = c.destination, class = c.class, identifiant = c.identifiant
        FROM cdrs c WHERE c.tenant_id = i.tenant_id AND c.id = i.cdr_id AND i.cdr_id = 999999`;
    expect(await sql`SELECT call_id, class FROM invoice_items WHERE cdr_id = 999999`).toEqual([{ call_id: 'back-1', class: 'fixed' }]);
    await expect(sql`UPDATE invoice_items SET call_id = 'again' WHERE cdr_id = 999999`).rejects.toThrow(/immutable/);
  });
});
