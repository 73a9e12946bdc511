import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { DateTime } from 'luxon';
import { describe, expect, it } from 'vitest';
import { renderInvoicePdf } from '../../reports/renderPool.js';
import { testIssuer } from '../support/issuer.js';
import { getInvoice, invoiceUserCalls } from '../../services/invoices/read.js';
import { runDueInvoices, runInvoices } from '../../services/invoices/run.js';
import { call, testApp, testDb } from '../support/app.js';
import { keyWithRoles, resellerKey, uniqueName } from '../support/factory.js';
import { cdrTenant, cdrUser, TARIFF_CSV } from '../cdrs/helpers.js';
import { enabledSince, pdfText, postCdrs } from './helpers.js';

const app = testApp();
const { db, sql } = testDb();

/** A tenant with one user enabled since 5 October and two calls in October (Paris). */
async function octoberTenant(fields: Record<string, unknown> = {}, options: { reseller?: string } = {}) {
  let t: { id: string; adminKey: string; tenant: { name: string } };
  if (options.reseller) {
    const tariffId = uniqueName('tariff');
    const put = await call(app, 'PUT', `/v1/tariffs/${tariffId}`, { key: options.reseller, body: TARIFF_CSV, headers: { 'content-type': 'text/csv' } });
    if (put.status !== 200) throw new Error(put.text);
    const res = await call(app, 'POST', '/v1/tenants', { key: options.reseller, json: { name: uniqueName('tenant'), productType: 'essentiel', tariffId, country: 'FR', timezone: 'Europe/Paris', ...fields } });
    if (res.status !== 201) throw new Error(res.text);
    t = { id: res.json.tenant.id as string, adminKey: res.json.adminKey as string, tenant: res.json.tenant };
  } else {
    t = await cdrTenant(app, fields);
  }
  const u = await cdrUser(t.id, { balance: '20' });
  await enabledSince(t.id, '2026-10-05T00:00:00Z');
  await postCdrs(app, t.adminKey, [
    { callId: `oct-a-${u.identifiant}`, identifiant: u.identifiant, callee: '0612345678', startedAt: '2026-10-10T10:00:00+02:00', durationSeconds: 85, disposition: 'answered' }, // 0.6417
    { callId: `oct-b-${u.identifiant}`, identifiant: u.identifiant, callee: '0612345678', startedAt: '2026-10-20T10:00:00+02:00', durationSeconds: 120, disposition: 'answered' }, // 0.7000
  ]);
  return { ...t, user: u };
}

/** The numbering of a year: its sequence's last number, and the invoices that carry the year. */
async function sequenceSnapshot(year: number) {
  const [r] = await sql<{ last: number | null; n: number; distinct: number; max: string | null }[]>`
    SELECT (SELECT last_number FROM invoice_sequences WHERE year = ${year}) AS last,
           count(*)::int AS n, count(DISTINCT number)::int AS distinct, max(number) AS max
      FROM invoices WHERE number LIKE ${`${year}-%`}`;
  return r!;
}

describe('POST /v1/invoices/run', () => {
  it('invoices a month once: the second run creates nothing and names the invoice', async () => {
    const t = await octoberTenant();
    const first = await call(app, 'POST', '/v1/invoices/run', { key: t.adminKey, json: { period: '2026-10' } });
    expect(first.status, first.text).toBe(200);
    expect(first.json.created).toHaveLength(1);
    const invoice = (await call(app, 'GET', `/v1/invoices/${first.json.created[0]}`, { key: t.adminKey })).json;
    // essentiel 5.00 × 1 user; mobile 0.6417 + 0.7000 = 1.3417 → 1.34; VAT round2(6.34 × 0.20) = 1.27
    expect(invoice.lines.map((l: { amount: string }) => l.amount)).toEqual(['5.00', '1.34']);
    expect(invoice).toMatchObject({ totalExclVat: '6.34', vat: '1.27', total: '7.61', reference: t.id });
    const second = await call(app, 'POST', '/v1/invoices/run', { key: t.adminKey, json: { period: '2026-10' } });
    expect(second.json).toEqual({ created: [], creditNotes: [], skipped: [{ tenantId: t.id, period: '2026-10', reason: 'ALREADY_INVOICED', invoiceId: invoice.id }] });
    const list = await call(app, 'GET', '/v1/invoices', { key: t.adminKey });
    expect(list.json.items.map((i: { id: string }) => i.id)).toEqual([invoice.id]);
    expect((await call(app, 'GET', '/v1/invoices?period=2026-09', { key: t.adminKey })).json.items).toEqual([]);
  });

  it('racing runs issue each invoice once, with numbers in one unbroken sequence', async () => {
    const reseller = await resellerKey({ newReseller: true });
    const tenants = await Promise.all(Array.from({ length: 6 }, () => octoberTenant({}, { reseller: reseller.key })));
    const runs = await Promise.all([
      ...Array.from({ length: 3 }, () => call(app, 'POST', '/v1/invoices/run', { key: reseller.key, json: { period: '2026-10' } })),
      ...tenants.map((t) => call(app, 'POST', '/v1/invoices/run', { key: t.adminKey, json: { period: '2026-10' } })),
      ...tenants.map((t) => runInvoices(db, { tenantId: t.id }, '2026-10', { issuer: testIssuer }).then((json) => ({ status: 200, json }))),
    ]);
    for (const r of runs) expect(r.status).toBe(200);
    const created = runs.flatMap((r) => r.json.created as string[]);
    expect(created).toHaveLength(6);
    expect(new Set(created).size).toBe(6);
    const rows = await db.selectFrom('invoices').select(['tenantId', 'number', 'issuedAt']).where('tenantId', 'in', tenants.map((t) => t.id)).execute();
    expect(rows.map((r) => r.tenantId).sort()).toEqual(tenants.map((t) => t.id).sort());
    // numbered in the year of issue where the issuer is (the run's own clock: a run at
    // New Year's Eve may straddle two years), and within each year every number is
    // used once, from 1 to the sequence's last: no gap, no duplicate
    const years = new Set<number>();
    for (const r of rows) {
      const year = DateTime.fromJSDate(new Date(r.issuedAt), { zone: testIssuer.timezone }).year;
      expect(r.number.slice(0, 5)).toBe(`${year}-`);
      years.add(year);
    }
    for (const year of years) {
      const seq = await sequenceSnapshot(year);
      expect(seq.n).toBe(seq.last);
      expect(seq.distinct).toBe(seq.n);
      expect(seq.max).toBe(`${year}-${String(seq.last).padStart(6, '0')}`);
    }
  });

  it('a reseller runs only its own tenants; an issued invoice cannot be changed', async () => {
    const reseller = await resellerKey({ newReseller: true });
    const mine = await octoberTenant({}, { reseller: reseller.key });
    const other = await octoberTenant();
    const run = await call(app, 'POST', '/v1/invoices/run', { key: reseller.key, json: { period: '2026-10' } });
    expect(run.json.created).toHaveLength(1);
    expect(run.json.skipped).toEqual([]);
    const otherInvoices = await db.selectFrom('invoices').select('id').where('tenantId', '=', other.id).execute();
    expect(otherInvoices).toEqual([]);
    await expect(sql`UPDATE invoices SET total = 0 WHERE tenant_id = ${mine.id}`).rejects.toThrow(/immutable/);
    await expect(sql`DELETE FROM invoice_lines WHERE tenant_id = ${mine.id}`).rejects.toThrow(/immutable/);
    await expect(sql`UPDATE invoice_items SET amount = 0 WHERE tenant_id = ${mine.id}`).rejects.toThrow(/immutable/);
  });

  it('names the field of a bad period, and does not invoice a month that has not ended', async () => {
    const t = await octoberTenant();
    const bad = await call(app, 'POST', '/v1/invoices/run', { key: t.adminKey, json: { period: '2026-13' } });
    expect(bad.status).toBe(400);
    expect(bad.json.error.details[0].field).toBe('period');
    const missing = await call(app, 'POST', '/v1/invoices/run', { key: t.adminKey, json: {} });
    expect(missing.status).toBe(400);
    expect(missing.json.error.details[0].field).toBe('period');
    const future = await call(app, 'POST', '/v1/invoices/run', { key: t.adminKey, json: { period: '2099-01' } });
    expect(future.json).toEqual({ created: [], creditNotes: [], skipped: [{ tenantId: t.id, period: '2099-01', reason: 'PERIOD_NOT_ENDED' }] });
    const comptable = await keyWithRoles(app, t as never, ['technicien']);
    expect((await call(app, 'POST', '/v1/invoices/run', { key: comptable.key, json: { period: '2026-10' } })).status).toBe(403);
    expect((await call(app, 'GET', '/v1/invoices/not-a-uuid', { key: t.adminKey })).status).toBe(404);
  });
});

describe('internal and trial tenants', () => {
  it('an internal tenant gets an invoice with every amount zero-rated, marked not billed', async () => {
    const t = await octoberTenant({ internal: true, locale: 'en', reference: 'DEMO-LAB' });
    const run = await call(app, 'POST', '/v1/invoices/run', { key: t.adminKey, json: { period: '2026-10' } });
    const invoice = (await call(app, 'GET', `/v1/invoices/${run.json.created[0]}`, { key: t.adminKey })).json;
    expect(invoice).toMatchObject({ status: 'not_billed', reference: 'DEMO-LAB', totalExclVat: '0.00', vat: '0.00', total: '0.00' });
    expect(invoice.lines.map((l: { kind: string; quantity: string; amount: string; unitPrice: string }) => [l.kind, l.quantity, l.unitPrice, l.amount])).toEqual([
      ['licence', '1', '0.00', '0.00'],
      ['calls', '1', '0.00', '0.00'], // one lot; 85 s + 120 s charged in the label
    ]);
    expect(invoice.lines[1].label).toBe('Calls to mobiles — 2 calls, 3 min 25 s charged');
    const record = await getInvoice(db, t.id, invoice.id);
    const pdf = await renderInvoicePdf({ invoice: record, tenant: { name: t.tenant.name, timezone: 'Europe/Paris' }, issuer: testIssuer, userCalls: await invoiceUserCalls(db, record, 1000), compress: false });
    const text = pdfText(pdf);
    expect(text).toContain('INVOICE');
    expect(text).toContain('NOT BILLED');
    expect(text).toMatch(/Total incl\. VAT\s+€0\.00/);
    if (process.env.INVOICE_PDF_DIR) {
      await mkdir(process.env.INVOICE_PDF_DIR, { recursive: true });
      await writeFile(path.join(process.env.INVOICE_PDF_DIR, 'internal-en.pdf'), pdf);
    }
    const rows = (await call(app, 'GET', `/v1/invoices/${invoice.id}/details.csv`, { key: t.adminKey })).text;
    expect(rows).toContain(',call,'); // the calls are listed, with their cost and a zero amount
    expect(rows).toMatch(/,0\.6417,0\.0000\n/);
  });

  it('a tenant in trial is skipped for a month that ends before trialEndsAt, and billed from trialEndsAt after', async () => {
    const t = await octoberTenant({ trialEndsAt: '2026-11-15T00:00:00+01:00' });
    const run = await call(app, 'POST', '/v1/invoices/run', { key: t.adminKey, json: { period: '2026-10' } });
    expect(run.json).toEqual({ created: [], creditNotes: [], skipped: [{ tenantId: t.id, period: '2026-10', reason: 'TRIAL' }] });

    const mid = await octoberTenant({ trialEndsAt: '2026-10-15T00:00:00+02:00' });
    const billed = await call(app, 'POST', '/v1/invoices/run', { key: mid.adminKey, json: { period: '2026-10' } });
    expect(billed.json.created).toHaveLength(1);
    const invoice = (await call(app, 'GET', `/v1/invoices/${billed.json.created[0]}`, { key: mid.adminKey })).json;
    // only the call of 20 October (0.7000) is after the trial
    expect(invoice.lines.map((l: { kind: string; amount: string }) => [l.kind, l.amount])).toEqual([['licence', '5.00'], ['calls', '0.70']]);
  });

  it('a month with nothing to invoice creates no invoice', async () => {
    const t = await cdrTenant(app);
    const run = await call(app, 'POST', '/v1/invoices/run', { key: t.adminKey, json: { period: '2026-10' } });
    expect(run.json).toEqual({ created: [], creditNotes: [], skipped: [{ tenantId: t.id, period: '2026-10', reason: 'NOTHING_TO_INVOICE' }] });
  });
});

describe('the monthly job', () => {
  it('invoices the previous month once the month has ended in the tenant’s zone (plus the grace), once', async () => {
    const reseller = await resellerKey({ newReseller: true });
    const paris = await octoberTenant({}, { reseller: reseller.key });
    const newYork = await octoberTenant({ timezone: 'America/New_York' }, { reseller: reseller.key });
    const scope = { resellerId: (await db.selectFrom('tenants').select('resellerId').where('id', '=', paris.id).executeTakeFirstOrThrow()).resellerId };
    const at = (iso: string) => runDueInvoices(db, { issuer: testIssuer, graceHours: 2, now: new Date(iso), scope });
    // 1 November 01:00 in Paris: Paris' October ended an hour ago, within the grace; New York is still in October
    // (New York's previous month, September, has nothing to invoice)
    const nySeptember = { tenantId: newYork.id, period: '2026-09', reason: 'NOTHING_TO_INVOICE' };
    expect(await at('2026-11-01T00:00:00Z')).toEqual({ created: [], creditNotes: [], skipped: [nySeptember] });
    // 03:00 in Paris (22:00 on 31 October in New York)
    const paris3 = await at('2026-11-01T02:00:00Z');
    expect(paris3.created).toHaveLength(1);
    expect(paris3.skipped).toEqual([nySeptember]);
    // 1 November 03:00 in New York: its October too; Paris' is not issued twice
    const ny = await at('2026-11-01T07:00:00Z');
    expect(ny.created).toHaveLength(1);
    expect(ny.skipped).toEqual([{ tenantId: paris.id, period: '2026-10', reason: 'ALREADY_INVOICED', invoiceId: paris3.created[0] }]);
    const periods = await db.selectFrom('invoices').select(['tenantId', 'period']).where('tenantId', 'in', [paris.id, newYork.id]).orderBy('tenantId').execute();
    expect(periods.map((p) => p.period)).toEqual(['2026-10', '2026-10']);
  });
});
