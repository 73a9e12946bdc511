import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { archiveDueMonths } from '../../services/archives/archive.js';
import { restoreMonth } from '../../services/archives/restore.js';
import { systemActor } from '../../services/audit/audit.js';
import { runInvoices } from '../../services/invoices/run.js';
import { call, testApp, testDb } from '../support/app.js';
import { testIssuer } from '../support/issuer.js';
import { cdr, cdrTenant, cdrUser } from '../cdrs/helpers.js';
import { parseCsv, statusEventsAt } from '../invoices/helpers.js';

/**
 * An invoice keeps its frozen details (issue 22, point 1 of the leftovers): the
 * details CSV of a month is the same file, byte for byte, after the month's CDRs
 * were archived and dropped; the archived month is closed to corrections (no
 * credit note for calls that only left the database); an invoice issued before
 * migration 0150 whose calls were archived is refused with a 409 naming the
 * archive files, and whole again once they are restored — never a file with
 * blank calls. Months of 2005, which no other test writes; the job runs for the
 * test's tenant only, with a clock.
 */
const operator = systemActor('test:archives restore');
const app = testApp();
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'forfait-archive-details-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function details(key: string, id: string, excel = false) {
  const res = await app.app.request(`/v1/invoices/${id}/details.csv${excel ? '?excel=1' : ''}`, { headers: { authorization: `Bearer ${key}` } });
  return { status: res.status, bytes: Buffer.from(await res.arrayBuffer()) };
}

describe('invoice details of an archived month', () => {
  it('the same file before and after the archive; the month closed to corrections; a pre-0150 invoice refused with the files to restore, then whole after the restore', async () => {
    const { db, sql } = testDb();
    const t = await cdrTenant(app, { reference: 'ARCH-05', productType: 'pro' });
    await sql`UPDATE tenants SET cdr_retention_months = 1, trial_ends_at = NULL WHERE id = ${t.id}`;
    const a = await cdrUser(t.id, { balance: '50' });
    const b = await cdrUser(t.id, { balance: '50' });
    await statusEventsAt(t.id, '2005-01-10T09:00:00+01:00');
    // February 2005 in Paris: its first hour is still January in UTC (two UTC months behind one invoice)
    const calls = [
      cdr('ad-edge', a.identifiant, '0612345678', 61, '2005-02-01T00:20:00+01:00'),
      cdr('ad-1', a.identifiant, '0142000000', 125, '2005-02-03T10:00:00+01:00'),
      cdr('ad-2', b.identifiant, '+442079460958', 40, '2005-02-14T18:30:00+01:00'),
      cdr('ad-3', b.identifiant, '0612345678', 300, '2005-02-27T23:59:00+01:00'),
      cdr('ad-missed', b.identifiant, '0612345678', 0, '2005-02-15T10:00:00+01:00'),
      cdr('ad-march', a.identifiant, '0612345678', 30, '2005-03-02T10:00:00+01:00'),
    ];
    const posted = await call(app, 'POST', '/v1/cdrs', { key: t.adminKey, json: calls });
    expect(posted.json).toMatchObject({ accepted: calls.length });

    const feb = await runInvoices(db, { tenantId: t.id }, '2005-02', { issuer: testIssuer, now: new Date('2005-03-01T03:00:00Z') });
    expect(feb.skipped).toEqual([]);
    const id = feb.created[0]!;
    const before = await details(t.adminKey, id);
    const beforeExcel = await details(t.adminKey, id, true);
    expect(before.status).toBe(200);
    const rows = await parseCsv(before.bytes.toString('utf8'));
    expect(rows.filter((r) => r.record === 'call').map((r) => r.call_id).sort()).toEqual(['ad-1', 'ad-2', 'ad-3', 'ad-edge']);
    expect(rows.find((r) => r.call_id === 'ad-1')).toMatchObject({ started_at: expect.stringContaining('2005-02-03'), callee: expect.stringMatching(/142000000/), class: 'fixed' });

    // May 2005, one month kept: January, February and March are archived and their partitions dropped
    const run = await archiveDueMonths(db, { dir, now: new Date('2005-05-20T12:00:00Z'), tenantIds: [t.id] });
    expect(run.archived.map((x) => x.month)).toEqual(['2005-01', '2005-02', '2005-03']);
    expect(await sql`SELECT 1 FROM cdrs WHERE tenant_id = ${t.id}`).toHaveLength(0);

    // the same bytes, plain and for Excel
    const after = await details(t.adminKey, id);
    expect(after.status).toBe(200);
    expect(after.bytes.equals(before.bytes)).toBe(true);
    expect((await details(t.adminKey, id, true)).bytes.equals(beforeExcel.bytes)).toBe(true);

    // the next invoice does not credit February's calls for having left the database
    const apr = await runInvoices(db, { tenantId: t.id }, '2005-04', { issuer: testIssuer, now: new Date('2005-05-21T03:00:00Z') });
    expect(apr.created).toHaveLength(1);
    expect(apr.creditNotes).toEqual([]);
    const docs = await sql`SELECT kind, period FROM invoices WHERE tenant_id = ${t.id} ORDER BY period`;
    expect(docs).toEqual([
      { kind: 'invoice', period: '2005-02' },
      { kind: 'invoice', period: '2005-04' },
    ]);
    const aprLines = (await call(app, 'GET', `/v1/invoices/${apr.created[0]}`, { key: t.adminKey })).json.lines as { kind: string }[];
    expect(aprLines.map((l) => l.kind)).toEqual(['licence']);

    // an invoice item is immutable, its frozen details with it
    await expect(sql`UPDATE invoice_items SET callee = '+33600000000' WHERE tenant_id = ${t.id} AND invoice_id = ${id} AND kind = 'call'`).rejects.toThrow(/immutable/);

    // an invoice issued before migration 0150 (no frozen details) whose calls were archived: 409 naming the files
    // (the rows are immutable: the test's own session skips the trigger to make one as it was)
    await sql.begin(async (tx) => {
      await tx`SET LOCAL session_replication_role = replica`;
      await tx`UPDATE invoice_items SET call_id = NULL, started_at = NULL, callee = NULL, destination = NULL, class = NULL, identifiant = NULL
                WHERE tenant_id = ${t.id} AND invoice_id = ${id} AND kind = 'call'`;
    });
    // an item without details may receive only its own CDR's (archived here: none)
    await expect(sql`UPDATE invoice_items SET call_id = 'forged' WHERE tenant_id = ${t.id} AND invoice_id = ${id} AND kind = 'call'`).rejects.toThrow(/immutable/);
    const refused = await call(app, 'GET', `/v1/invoices/${id}/details.csv`, { key: t.adminKey });
    expect(refused.status).toBe(409);
    expect(refused.json.error.code).toBe('CONFLICT');
    expect(refused.json.error.message).toContain(`${t.id}/2005-01.csv.gz`);
    expect(refused.json.error.message).toContain(`${t.id}/2005-02.csv.gz`);
    expect(refused.json.error.message).not.toContain('2005-03');
    expect(refused.json.error.details).toEqual([
      { field: 'archive', value: `${t.id}/2005-01.csv.gz`, message: 'restore month 2005-01: forfait archives restore --month 2005-01' },
      { field: 'archive', value: `${t.id}/2005-02.csv.gz`, message: 'restore month 2005-02: forfait archives restore --month 2005-02' },
    ]);

    // a corrupted archive is not restored (the error names the file) and the details stay refused
    const file = path.join(dir, t.id, '2005-02.csv.gz');
    await copyFile(file, `${file}.good`);
    const bytes = await readFile(file);
    bytes[bytes.length >> 1]! ^= 0xff;
    await writeFile(file, bytes);
    await expect(restoreMonth(db, dir, t.id, '2005-02', operator)).rejects.toThrow(/^archive .*2005-02\.csv\.gz: (unreadable|SHA-256)/);
    expect((await call(app, 'GET', `/v1/invoices/${id}/details.csv`, { key: t.adminKey })).status).toBe(409);
    // a missing one neither
    await rm(file);
    await expect(restoreMonth(db, dir, t.id, '2005-02', operator)).rejects.toThrow(/^archive .*2005-02\.csv\.gz: missing$/);
    expect((await call(app, 'GET', `/v1/invoices/${id}/details.csv`, { key: t.adminKey })).status).toBe(409);

    // the good files restored: the details are frozen from the CDRs put back, and the file is the same again
    await copyFile(`${file}.good`, file);
    await restoreMonth(db, dir, t.id, '2005-01', operator);
    await restoreMonth(db, dir, t.id, '2005-02', operator);
    const restored = await details(t.adminKey, id);
    expect(restored.status).toBe(200);
    expect(restored.bytes.equals(before.bytes)).toBe(true);
    // archived again (the rows are those archived: no new file), the details stay whole
    const again = await archiveDueMonths(db, { dir, now: new Date('2005-05-20T12:00:00Z'), tenantIds: [t.id] });
    expect(again.archived).toEqual([]);
    expect((await details(t.adminKey, id)).bytes.equals(before.bytes)).toBe(true);
  });

  it("another tenant's invoice is a 404, archived or not", async () => {
    const t = await cdrTenant(app, { productType: 'pro' });
    const other = await cdrTenant(app, { productType: 'pro' });
    const { db } = testDb();
    await cdrUser(t.id, { balance: '5' });
    await statusEventsAt(t.id, '2005-06-10T09:00:00+02:00');
    const run = await runInvoices(db, { tenantId: t.id }, '2005-07', { issuer: testIssuer, now: new Date('2005-08-01T03:00:00Z') });
    expect(run.skipped).toEqual([]);
    const id = run.created[0]!;
    expect((await call(app, 'GET', `/v1/invoices/${id}/details.csv`, { key: other.adminKey })).status).toBe(404);
    expect((await call(app, 'GET', `/v1/invoices/${id}/details.csv`, { key: t.adminKey })).status).toBe(200);
  });
});
