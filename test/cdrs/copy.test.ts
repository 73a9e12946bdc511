import { describe, expect, it } from 'vitest';
import { rawSql, withTransaction } from '../../db/connection.js';
import { copyIn, CopyBuffer, copyValue, instantText, units4Text } from '../../db/copy.js';
import { call, testApp, testDb } from '../support/app.js';
import { account, brokenLedgerChains, cdr, cdrCount, cdrTenant, cdrUser } from './helpers.js';

/**
 * The write path of a batch: COPY straight into `cdrs`, the unique call id key
 * as the only duplicate check until one is met. These tests pin what that
 * relies on: a COPY that meets a stored call id fails (wherever the row is in
 * the stream, and without hanging), and a batch that meets a call id another
 * transaction is writing waits for it, then is redone without it or with it.
 */
const app = testApp();

function lines(rows: string[]): Buffer[] {
  const out = new CopyBuffer();
  const chunks: Buffer[] = [];
  for (const r of rows) {
    const full = out.add(r);
    if (full) chunks.push(full);
  }
  const last = out.take();
  if (last) chunks.push(last);
  return chunks;
}

describe('COPY values', () => {
  it('escapes text, writes instants in UTC and amounts with 4 decimals', () => {
    expect(copyValue(null)).toBe('\\N');
    expect(copyValue('a\tb\\c\nd\re')).toBe('a\\tb\\\\c\\nd\\re');
    expect(copyValue('Paris; siège')).toBe('Paris; siège');
    expect(instantText(Date.parse('2026-11-03T09:15:00.250Z'))).toBe('2026-11-03T09:15:00.250Z');
    expect(instantText(Date.parse('2026-11-03T23:59:59Z'))).toBe('2026-11-03T23:59:59Z');
    expect(instantText(Date.parse('1969-12-31T23:00:00Z'))).toBe('1969-12-31T23:00:00Z');
    expect([0, 1, -1, 6417, 12_345_678, -50_000].map(units4Text)).toEqual(['0.0000', '0.0001', '-0.0001', '0.6417', '1234.5678', '-5.0000']);
  });
});

describe('copyIn', () => {
  const { db, sql } = testDb();

  async function copyCallIds(tenantId: string, callIds: string[]): Promise<void> {
    await withTransaction(db, async (trx) =>
      copyIn(
        await rawSql(trx),
        'COPY cdrs (tenant_id, call_id, callee, direction, started_at, duration_seconds, disposition) FROM STDIN',
        lines(callIds.map((id) => `${tenantId}\t${copyValue(id)}\t+33142000000\tout\t2026-11-03T09:00:00Z\t0\tno_answer\n`)),
      ),
    );
  }

  it('stores every row, and fails on a stored call id at the start, in the middle or in the last group of rows', async () => {
    const t = await cdrTenant(app);
    // straight into cdrs, not through a batch: November's partition made as the batch writer would
    await sql`SELECT cdrs_ensure_month('2026-11-03T09:00:00Z')`;
    const ids = Array.from({ length: 20_000 }, (_, i) => `copy-${String(i).padStart(6, '0')}`);
    await copyCallIds(t.id, ids);
    expect(await cdrCount(t.id)).toBe(20_000);
    for (const at of [0, 10_000, 19_999]) {
      const again = Array.from({ length: 20_000 }, (_, i) => (i === at ? ids[at]! : `copy-${at}-${i}`));
      // a rejection, not a hang, wherever the duplicate is (the last group is inserted after the stream ends)
      // the unique key of November's partition (migration 0050)
      await expect(copyCallIds(t.id, again)).rejects.toMatchObject({ code: '23505', constraint_name: 'cdrs_y2026m11_call_id_uq' });
    }
    expect(await cdrCount(t.id)).toBe(20_000);
    // the connection is usable afterwards
    const [one] = await sql<{ n: number }[]>`SELECT 1 AS n`;
    expect(one!.n).toBe(1);
  });
});

describe('a call id written by another transaction at the same time', () => {
  const { sql } = testDb();

  for (const outcome of ['commit', 'rollback'] as const) {
    it(`waits for it; after its ${outcome} the batch is ${outcome === 'commit' ? 'redone without it' : 'written with it'}`, async () => {
      const t = await cdrTenant(app);
      const other = await cdrUser(t.id, { balance: '10' });
      const u = await cdrUser(t.id, { balance: '10' });
      // another writer (no user in common with the batch) holds call id "race-1", uncommitted
      await sql`SELECT cdrs_ensure_month('2026-11-03T09:00:00Z')`;
      const writer = await sql.reserve();
      try {
        await writer`BEGIN`;
        await writer`INSERT INTO cdrs (tenant_id, call_id, user_id, identifiant, callee, direction, started_at, duration_seconds, disposition)
                      VALUES (${t.id}, 'race-1', ${other.id}, ${other.identifiant}, '+33142000000', 'out', '2026-11-03T08:00:00Z', 0, 'no_answer')`;
        const batch = call(app, 'POST', '/v1/cdrs', {
          key: t.adminKey,
          json: [cdr('race-0', u.identifiant, '0612345678', 20), cdr('race-1', u.identifiant, '0612345678', 20), cdr('race-2', u.identifiant, '0612345678', 85)],
        });
        // the batch's COPY waits on the uncommitted key
        let waiting = false;
        for (let i = 0; i < 100 && !waiting; i++) {
          await new Promise((r) => setTimeout(r, 50));
          const [w] = await sql<{ n: string }[]>`
            SELECT count(*)::text AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE 'COPY cdrs%'`;
          waiting = w!.n !== '0';
        }
        expect(waiting).toBe(true);
        await writer.unsafe(outcome === 'commit' ? 'COMMIT' : 'ROLLBACK');
        const res = await batch;
        expect(res.status, res.text).toBe(200);
        expect(res.json).toMatchObject(outcome === 'commit' ? { accepted: 2, duplicates: 1 } : { accepted: 3, duplicates: 0 });
      } finally {
        writer.release();
      }
      expect(await cdrCount(t.id)).toBe(3);
      const a = await account(t.id, u.id);
      // 20 s → 0.6000, 85 s → 0.6417 (SPEC §4 examples); race-1 is charged only when this batch stored it
      expect(a.balance).toBe(outcome === 'commit' ? '8.7583' : '8.1583');
      expect(a.ledgerSum).toBe(a.balance);
      expect(await brokenLedgerChains(t.id)).toBe(0);
    });
  }
});
