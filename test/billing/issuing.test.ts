import { Decimal } from 'decimal.js';
import { describe, expect, it } from 'vitest';
import { renderInvoicePdf } from '../../reports/renderPool.js';
import { draftInvoice, loadInvoiceTenants } from '../../services/invoices/issue.js';
import { defaultIssuer } from '../../services/invoices/issuer.js';
import { runDueInvoices, runInvoices } from '../../services/invoices/run.js';
import { call, testApp, testDb } from '../support/app.js';
import { testIssuer } from '../support/issuer.js';
import { cdrTenant, cdrUser } from '../cdrs/helpers.js';
import { enabledSince, pdfText, postCdrs } from '../invoices/helpers.js';

/** Issue 17, point 3: issuing safely. Every instant is given. */
const placeholderApp = testApp({ issuer: defaultIssuer });
const app = testApp();
const { db } = testDb();

async function octoberTenant(fields: Record<string, unknown> = {}) {
  const t = await cdrTenant(app, { locale: 'fr', ...fields });
  const u = await cdrUser(t.id, { balance: '20' });
  await enabledSince(t.id, '2026-10-05T00:00:00Z');
  await postCdrs(app, t.adminKey, [
    { callId: `a-${u.identifiant}`, identifiant: u.identifiant, callee: '0612345678', startedAt: '2026-10-10T10:00:00+02:00', durationSeconds: 85, disposition: 'answered' },
    { callId: `b-${u.identifiant}`, identifiant: u.identifiant, callee: '0142000000', startedAt: '2026-10-11T10:00:00+02:00', durationSeconds: 61, disposition: 'answered' },
  ]);
  return t;
}

const invoicesOf = (tenantId: string) => db.selectFrom('invoices').select('id').where('tenantId', '=', tenantId).execute();
/** The sequence of a year no other test issues in (2031): a draft must not create or move it. */
const sequence2031 = () => db.selectFrom('invoiceSequences').select('lastNumber').where('year', '=', 2031).executeTakeFirst();

describe('issuing safely (issue 17)', () => {
  it('refuses a real invoice while the issuer settings are the placeholders, and writes nothing', async () => {
    const t = await octoberTenant();
    const res = await call(placeholderApp, 'POST', '/v1/invoices/run', { key: t.adminKey, json: { period: '2026-10' } });
    expect(res.status).toBe(409);
    expect(res.json.error.code).toBe('ISSUER_NOT_CONFIGURED');
    expect(res.json.error.details.map((d: { field: string }) => d.field)).toEqual(['FORFAIT_ISSUER_NAME', 'FORFAIT_ISSUER_ADDRESS', 'FORFAIT_ISSUER_VAT_ID', 'FORFAIT_ISSUER_REGISTRATION', 'FORFAIT_ISSUER_EMAIL']);
    expect(await invoicesOf(t.id)).toEqual([]);
    // the monthly job does not stop: the billed tenant waits, named
    const due = await runDueInvoices(db, { issuer: defaultIssuer, graceHours: 2, now: new Date('2026-11-01T05:00:00Z'), scope: { tenantId: t.id } });
    expect(due).toMatchObject({ created: [], skipped: [{ tenantId: t.id, period: '2026-10', reason: 'ISSUER_NOT_CONFIGURED' }] });
    expect(await invoicesOf(t.id)).toEqual([]);
  });

  it('an internal tenant is invoiced with the placeholders; a draft of a billed one is SPECIMEN and stores nothing', async () => {
    const internal = await octoberTenant({ internal: true });
    const r = await runInvoices(db, { tenantId: internal.id }, '2026-10', { issuer: defaultIssuer, now: new Date('2026-11-01T05:00:00Z') });
    expect(r.created).toHaveLength(1);

    const t = await octoberTenant();
    const res = await call(placeholderApp, 'POST', '/v1/invoices/run', { key: t.adminKey, json: { period: '2026-10', draft: true } });
    expect(res.status, res.text).toBe(200);
    expect(res.json.created).toEqual([]);
    expect(res.json.drafts).toHaveLength(1);
    expect(res.json.drafts[0]).toMatchObject({ kind: 'invoice', number: 'SPECIMEN', period: '2026-10', tenantId: t.id });
    expect(await invoicesOf(t.id)).toEqual([]);
    const drafted = await runInvoices(db, { tenantId: t.id }, '2026-10', { issuer: defaultIssuer, now: new Date('2031-01-01T05:00:00Z'), draft: true });
    expect(drafted.drafts).toHaveLength(1);
    expect(await sequence2031()).toBeUndefined();
    expect(await invoicesOf(t.id)).toEqual([]);
  });

  it('prints the client’s postal address and SPECIMEN on a preview; every line recomputes to the cent', async () => {
    const t = await octoberTenant();
    const address = ['Acme Télécom SARL', '5 quai du Port', '13002 Marseille'];
    const patched = await call(app, 'PATCH', `/v1/tenants/${t.id}`, { key: t.resellerKey, json: { billingAddress: address } });
    expect(patched.status, patched.text).toBe(200);
    expect(patched.json.billingAddress).toEqual(address);

    const [tenant] = await loadInvoiceTenants(db, { tenantId: t.id });
    const { documents } = await draftInvoice(db, tenant!, '2026-10', { issuer: testIssuer, now: new Date('2026-10-20T10:00:00Z') }); // a preview before the month ends
    const draft = documents[0]!;
    for (const l of draft.record.lines) expect(new Decimal(l.quantity).times(l.unitPrice).toDecimalPlaces(2, Decimal.ROUND_HALF_UP).toFixed(2)).toBe(l.amount);
    const text = pdfText(await renderInvoicePdf({ invoice: draft.record, tenant: { name: t.tenant.name, timezone: 'Europe/Paris', billingAddress: address }, issuer: testIssuer, userCalls: draft.userCalls, compress: false }));
    expect(text).toContain('SPECIMEN');
    for (const line of address) expect(text).toContain(line);
    expect(text).toContain(testIssuer.vatId);

    const preview = await call(app, 'GET', '/v1/invoices/preview.pdf?period=2026-10', { key: t.adminKey });
    expect(preview.status).toBe(200);
    expect(preview.headers.get('content-type')).toBe('application/pdf');
    expect(await invoicesOf(t.id)).toEqual([]);
    expect((await call(app, 'GET', '/v1/invoices/preview.pdf?period=2026-13', { key: t.adminKey })).status).toBe(400);
  });
});
