import { describe, expect, it } from 'vitest';
import { Decimal } from 'decimal.js';
import { rerate } from '../../services/cdrs/rerate.js';
import { testIssuer } from '../support/issuer.js';
import { runInvoices } from '../../services/invoices/run.js';
import { TariffIndexCache } from '../../services/tariffs/tariffs.js';
import { call, testApp, testDb } from '../support/app.js';
import { cdrTenant, cdrUser, putTariff, TARIFF_CSV } from '../cdrs/helpers.js';
import { enabledSince, parseCsv, postCdrs } from '../invoices/helpers.js';
import { resellerKey } from '../support/factory.js';
import { cents, monthBalance } from './helpers.js';

/**
 * Issue 17, point 2. October is invoiced on 1 November; then a late October CDR
 * arrives and October's mobiles are re-rated up: November's invoice carries an
 * "October 2026 calls received after invoicing" line. Then they are re-rated
 * down: December's run issues a credit note correcting October's invoice.
 * After each step the documents of each month add up to its rated CDRs, and
 * October's invoice has not changed. Every instant is given (no clock).
 */
const app = testApp();
const { db, sql } = testDb();
const MOBILE = '336,France mobile,mobile,0.20,0.40,60,1,false,0.10,';

const run = (tenantId: string, period: string, now: string) => runInvoices(db, { tenantId }, period, { issuer: testIssuer, now: new Date(now) });
const rerateMonth = (tenantId: string, from: string, to: string, now: string) =>
  rerate({ db, sql, tariffs: new TariffIndexCache(db) }, tenantId, { from, to }, 'test', { now: new Date(now) });

describe('charges that arrive after their month was invoiced (issue 17)', () => {
  it('a late CDR and a rerate up become lines of the next invoice; a rerate down a credit note; each month adds up after each step', async () => {
    const t = await cdrTenant(app, { locale: 'fr', vatRate: '0.20' });
    const u = await cdrUser(t.id, { balance: '50' });
    await enabledSince(t.id, '2026-10-01T00:00:00Z');
    const call1 = { identifiant: u.identifiant, callee: '0612345678', direction: 'out', disposition: 'answered' };
    await postCdrs(app, t.adminKey, [
      { ...call1, callId: 'oct-1', startedAt: '2026-10-10T10:00:00+02:00', durationSeconds: 85 }, // 0.6417
      { ...call1, callId: 'oct-2', startedAt: '2026-10-20T10:00:00+02:00', durationSeconds: 120 }, // 0.7000
    ]);

    // 1 November: October is invoiced
    const oct = await run(t.id, '2026-10', '2026-11-01T03:00:00Z');
    expect(oct.created).toHaveLength(1);
    const octId = oct.created[0]!;
    const octBefore = (await call(app, 'GET', `/v1/invoices/${octId}`, { key: t.adminKey })).json;
    expect(octBefore).toMatchObject({ kind: 'invoice', period: '2026-10', corrects: null });
    expect(await monthBalance(t.id, '2026-10')).toEqual({ rated: '1.34', billed: '1.34', ratedExact: '1.3417', billedExact: '1.3417' });

    // November: a November call, a late October CDR (20 s: 0.6000), then October's mobiles cost more
    await postCdrs(app, t.adminKey, [
      { ...call1, callId: 'nov-1', startedAt: '2026-11-05T10:00:00+01:00', durationSeconds: 20 }, // 0.6000
      { ...call1, callId: 'oct-late', startedAt: '2026-10-31T23:30:00+01:00', durationSeconds: 20 },
    ]);
    await putTariff(app, TARIFF_CSV.replace(MOBILE, '336,France mobile,mobile,0.30,0.40,60,1,false,0.30,'), t.tariffId);
    const up = await rerateMonth(t.id, '2026-10', '2026-11', '2026-11-20T10:00:00Z');
    expect(up.adjusted).toBe(3); // 85 s: 0.8250, 120 s: 1.0000, 20 s (bills 60 s): 0.7000
    expect(await monthBalance(t.id, '2026-10')).toMatchObject({ rated: '2.53', billed: '1.34' });

    // 1 December: November's invoice carries October's difference as its own line
    const nov = await run(t.id, '2026-11', '2026-12-01T03:00:00Z');
    expect(nov.created).toHaveLength(1);
    expect(nov.creditNotes).toEqual([]);
    const novInvoice = (await call(app, 'GET', `/v1/invoices/${nov.created[0]}`, { key: t.adminKey })).json;
    // November mobiles 0.60, October's difference 2.53 − 1.34 = 1.19
    const late = novInvoice.lines.find((l: { period?: string }) => l.period === '2026-10');
    expect(late).toMatchObject({ kind: 'calls', quantity: '1', unitPrice: '1.19', amount: '1.19' });
    expect(late.label).toBe('Appels d’octobre 2026 reçus ou recalculés après facturation — vers mobiles, 3 appels');
    expect(novInvoice.lines.filter((l: { period?: string; kind: string }) => l.kind === 'calls' && l.period === undefined).map((l: { amount: string }) => l.amount)).toEqual(['0.60']);
    const excl = (novInvoice.lines as { amount: string }[]).reduce((s, l) => s.plus(l.amount), new Decimal(0));
    expect(novInvoice.totalExclVat).toBe(excl.toFixed(2));
    expect(novInvoice.vat).toBe(cents(excl.times('0.20')));
    expect(await monthBalance(t.id, '2026-10')).toEqual({ rated: '2.53', billed: '2.53', ratedExact: '2.5250', billedExact: '2.5250' });
    expect(await monthBalance(t.id, '2026-11')).toEqual({ rated: '0.60', billed: '0.60', ratedExact: '0.6000', billedExact: '0.6000' });

    // December: October's mobiles are re-rated down (0.10 a minute, no fee)
    await putTariff(app, TARIFF_CSV.replace(MOBILE, '336,France mobile,mobile,0.10,0,60,1,false,0.10,'), t.tariffId);
    await rerateMonth(t.id, '2026-10', '2026-11', '2026-12-10T10:00:00Z'); // 85 s: 0.1417, 120 s: 0.2000, 20 s: 0.1000
    expect(await monthBalance(t.id, '2026-10')).toMatchObject({ rated: '0.44', billed: '2.53' });

    // 1 January 2027: December's invoice, and a credit note of 2.53 − 0.44 = 2.09 (excl. VAT) correcting October's
    const dec = await run(t.id, '2026-12', '2027-01-01T03:00:00Z');
    expect(dec.creditNotes).toHaveLength(1);
    const note = (await call(app, 'GET', `/v1/invoices/${dec.creditNotes[0]}`, { key: t.adminKey })).json;
    expect(note).toMatchObject({ kind: 'credit_note', period: '2026-10', corrects: { id: octId, number: octBefore.number }, totalExclVat: '-2.09', vat: '-0.42', total: '-2.51' });
    expect(note.number).toMatch(/^AV-2027-\d{6}$/);
    expect(note.lines).toEqual([
      { kind: 'calls', label: 'Avoir sur les appels d’octobre 2026 vers mobiles — recalculés après facturation, 3 appels', quantity: '1', unitPrice: '-2.09', amount: '-2.09' },
    ]);
    expect(await monthBalance(t.id, '2026-10')).toEqual({ rated: '0.44', billed: '0.44', ratedExact: '0.4417', billedExact: '0.4417' });
    expect(await monthBalance(t.id, '2026-11')).toEqual({ rated: '0.60', billed: '0.60', ratedExact: '0.6000', billedExact: '0.6000' });

    // the credit note's details: the three re-rated CDRs with what each is credited (4 decimals), then its line
    const details = await parseCsv((await call(app, 'GET', `/v1/invoices/${note.id}/details.csv`, { key: t.adminKey })).text);
    const credited = details.filter((r) => r.record === 'call');
    expect(credited.map((r) => r.call_id).sort()).toEqual(['oct-1', 'oct-2', 'oct-late']);
    // 0.1417 − 0.8250, 0.2000 − 1.0000, 0.1000 − 0.7000: the exact difference of costs
    expect(credited.reduce((sum, r) => sum.plus(r.amount!), new Decimal(0)).toFixed(4)).toBe('-2.0833');
    expect(details.find((r) => r.record === 'line')?.amount).toBe('-2.09'); // round2(0.4417) − round2(2.5250): the month's rounded totals
    expect(details.find((r) => r.record === 'total')?.amount).toBe('-2.51');

    // nothing more to correct: running again changes nothing
    expect((await run(t.id, '2026-12', '2027-01-01T04:00:00Z')).creditNotes).toEqual([]);

    // October's invoice is as issued; the list has both kinds
    expect((await call(app, 'GET', `/v1/invoices/${octId}`, { key: t.adminKey })).json).toEqual(octBefore);
    const list = (await call(app, 'GET', '/v1/invoices?period=2026-10', { key: t.adminKey })).json.items as { kind: string; number: string }[];
    expect(list.map((i) => i.kind).sort()).toEqual(['credit_note', 'invoice']);

    // the credit note is another tenant's 404
    const other = await cdrTenant(app);
    expect((await call(app, 'GET', `/v1/invoices/${note.id}`, { key: other.adminKey })).status).toBe(404);
    expect((await call(app, 'GET', `/v1/invoices/${note.id}.pdf`, { key: other.adminKey })).status).toBe(404);

    // the accounting export: one row per document issued in the range, credit notes negative
    const exported = await call(app, 'GET', '/v1/invoices/export.csv?from=2026-11-01&to=2027-01-02', { key: t.adminKey });
    expect(exported.status, exported.text).toBe(200);
    const rows = await parseCsv(exported.text);
    expect(rows.map((r) => [r.kind, r.issued_on, r.period, r.corrects, r.total_excl_vat, r.vat, r.total])).toEqual([
      ['invoice', '2026-11-01', '2026-10', '', octBefore.totalExclVat, octBefore.vat, octBefore.total],
      ['invoice', '2026-12-01', '2026-11', '', novInvoice.totalExclVat, novInvoice.vat, novInvoice.total],
      ['invoice', '2027-01-01', '2026-12', '', expect.any(String), expect.any(String), expect.any(String)],
      ['credit_note', '2027-01-01', '2026-10', octBefore.number, '-2.09', '-0.42', '-2.51'],
    ]);
    expect(rows.every((r) => r.tenant_id === t.id && r.tenant_name === t.tenant.name)).toBe(true);
    // another tenant's key sees none of them; a reseller naming another reseller's tenant gets a 404
    const otherExport = await call(app, 'GET', '/v1/invoices/export.csv?from=2026-11-01&to=2027-01-02', { key: (await cdrTenant(app)).adminKey });
    expect(await parseCsv(otherExport.text)).toEqual([]);
    const stranger = await resellerKey({ newReseller: true });
    expect((await call(app, 'GET', `/v1/invoices/export.csv?from=2026-11-01&to=2027-01-02&tenantId=${t.id}`, { key: stranger.key })).status).toBe(404);
    expect((await call(app, 'GET', '/v1/invoices/export.csv?from=2026-13-01&to=2027-01-02', { key: t.adminKey })).json.error.details[0].field).toBe('from');

    // nothing issued can change: the triggers refuse it
    await expect(sql`UPDATE invoices SET total = 0 WHERE tenant_id = ${t.id} AND id = ${note.id}`).rejects.toThrow(/immutable/);
    await expect(sql`UPDATE invoice_lines SET amount = 0 WHERE tenant_id = ${t.id} AND invoice_id = ${nov.created[0]!}`).rejects.toThrow(/immutable/);
    await expect(sql`DELETE FROM invoice_items WHERE tenant_id = ${t.id} AND invoice_id = ${note.id}`).rejects.toThrow(/immutable/);
  });

  it('credit notes are numbered in their own unbroken sequence per year', async () => {
    const [r] = await sql<{ numbers: string[] | null; last: number | null }[]>`
      SELECT (SELECT array_agg(number ORDER BY number) FROM invoices WHERE kind = 'credit_note' AND number LIKE 'AV-2027-%') AS numbers,
             (SELECT last_number FROM credit_note_sequences WHERE year = 2027) AS last`;
    const numbers = r!.numbers ?? [];
    expect(numbers).toEqual(Array.from({ length: r!.last ?? 0 }, (_, i) => `AV-2027-${String(i + 1).padStart(6, '0')}`));
  });
});
