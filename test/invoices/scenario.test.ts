import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Decimal } from 'decimal.js';
import { describe, expect, it } from 'vitest';
import { renderInvoicePdf } from '../../reports/renderPool.js';
import { testIssuer } from '../support/issuer.js';
import { getInvoice, invoiceUserCalls } from '../../services/invoices/read.js';
import { runInvoices } from '../../services/invoices/run.js';
import { call, testApp, testDb } from '../support/app.js';
import { pbxKey } from '../support/accounts.js';
import { cdrTenant } from '../cdrs/helpers.js';
import { random } from '../fixtures/random.js';
import { pageCount, parseCsv, pdfText, postCdrs, round2, statusEventsAt } from './helpers.js';

/**
 * A month of a client as finance lives it: a reseller provisions the tenant, its
 * administrator imports 60 users, tops them up, the PBX sends the month's CDRs;
 * one user is disabled and one removed during the month, one is created disabled.
 * The test runs on any date: what it does today is moved into the story's dates
 * (users provisioned in late October, the changes on 16 November).
 * On 1 December the month is invoiced; the invoice, its PDF and its details CSV
 * are checked against totals computed here from the rated CDRs with decimal.js.
 */
const app = testApp();
const { db } = testDb();
const december = new Date('2026-12-01T03:00:00Z'); // after November ended in Paris
const novemberParis = { start: Date.parse('2026-10-31T23:00:00Z'), end: Date.parse('2026-11-30T23:00:00Z') };

const classOrder = ['fixed', 'mobile', 'special', 'international', 'free'];

describe('invoice scenario: provisioning to PDF', () => {
  it('invoices November to the cent, in French, with a details CSV that sums to it', async () => {
    const t = await cdrTenant(app, { reference: 'ACME-42', locale: 'fr', vatRate: '0.20', productType: 'pro' });
    // 60 users by CSV import, one created disabled through the API
    const draw = random(15);
    const lines = Array.from({ length: 60 }, (_, i) => {
      const ident = String(3_100_000 + i + Math.floor(draw() * 1000) * 100).padStart(7, '0');
      return `Utilisateur ${String(i + 1).padStart(2, '0')} Dupré,${`5${ident}`.padEnd(14, '0')},${ident},,,,,,,,,,`;
    });
    const imported = await call(app, 'POST', '/v1/users/import?mode=append', { key: t.adminKey, body: lines.join('\r\n'), headers: { 'content-type': 'text/csv' } });
    expect(imported.status, imported.text).toBe(200);
    const users = (await call(app, 'GET', '/v1/users?limit=100', { key: t.adminKey })).json.items as { id: string; identifiant: string; fullName: string }[];
    expect(users).toHaveLength(60);
    const sleeper = await call(app, 'POST', '/v1/users', { key: t.adminKey, json: { fullName: 'Jamais Activé', matricule: '77777777777777', identifiant: '7777777', accountStatus: 'disabled' } });
    expect(sleeper.status).toBe(201);
    await statusEventsAt(t.id, '2026-10-28T09:00:00+01:00'); // provisioned before November
    for (const u of users) {
      const top = await call(app, 'POST', `/v1/users/${u.id}/ledger`, { key: t.adminKey, json: { kind: 'topup', amount: '50', idempotencyKey: `topup-${u.id}` } });
      expect(top.status).toBe(201);
    }

    // the month's calls: every user calls; SPEC §4's examples among them
    const pbx = await pbxKey(app, t);
    const callees = ['0612345678', '0755123456', '0142000000', '+442079460958'];
    const cdrs: unknown[] = [];
    users.forEach((u, i) => {
      for (let k = 0; k < 3; k++) {
        const day = String(1 + ((i + k * 7) % 20)).padStart(2, '0');
        cdrs.push({ callId: `scn-${u.identifiant}-${k}`, identifiant: u.identifiant, caller: '+33142000000', callee: callees[(i + k) % 4], direction: 'out', startedAt: `2026-11-${day}T09:${String(10 + k).padStart(2, '0')}:00+01:00`, durationSeconds: [20, 85, 120, 45, 61, 300][(i + k) % 6], disposition: 'answered' });
      }
    });
    const [a, b] = [users[0]!, users[1]!];
    cdrs.push(
      // the first minutes of November in Paris are still 31 October in UTC: invoiced
      { callId: 'scn-edge-in', identifiant: a.identifiant, callee: '0612345678', direction: 'out', startedAt: '2026-11-01T00:30:00+01:00', durationSeconds: 20, disposition: 'answered' },
      // the last minutes of October in Paris: not in November's invoice
      { callId: 'scn-edge-out', identifiant: a.identifiant, callee: '0612345678', direction: 'out', startedAt: '2026-10-31T23:30:00+01:00', durationSeconds: 85, disposition: 'answered' },
      // unanswered and incoming calls are not invoiced
      { callId: 'scn-missed', identifiant: b.identifiant, callee: '0612345678', direction: 'out', startedAt: '2026-11-05T10:00:00+01:00', durationSeconds: 0, disposition: 'no_answer' },
      { callId: 'scn-incoming', caller: '0612345678', callee: '+33142000000', direction: 'in', startedAt: '2026-11-05T11:00:00+01:00', durationSeconds: 200, disposition: 'answered' },
      // a free number: on the invoice at 0
      { callId: 'scn-112', identifiant: b.identifiant, callee: '112', direction: 'out', startedAt: '2026-11-06T11:00:00+01:00', durationSeconds: 40, disposition: 'answered' },
    );
    await postCdrs(app, pbx, cdrs);

    // during the month: one user disabled, one removed (both still count for November)
    expect((await call(app, 'PATCH', `/v1/users/${users[2]!.id}`, { key: t.adminKey, json: { accountStatus: 'disabled' } })).status).toBe(200);
    expect((await call(app, 'DELETE', `/v1/users/${users[3]!.id}`, { key: t.adminKey })).status).toBe(200);
    await statusEventsAt(t.id, '2026-11-16T10:00:00+01:00', { statuses: ['disabled', 'deleted'], userIds: [users[2]!.id, users[3]!.id] });

    // expected, from the rated CDRs as the API shows them
    const listed: { callId: string; direction: string; startedAt: string; billableSeconds: number; chargedSeconds: number; class: string; cost: string }[] = [];
    let cursor: string | null = null;
    do {
      const page = await call(app, 'GET', `/v1/cdrs?limit=1000${cursor ? `&cursor=${cursor}` : ''}`, { key: t.adminKey });
      listed.push(...page.json.items);
      cursor = page.json.nextCursor;
    } while (cursor);
    const billed = listed.filter((c) => c.direction === 'out' && c.billableSeconds > 0 && Date.parse(c.startedAt) >= novemberParis.start && Date.parse(c.startedAt) < novemberParis.end);
    expect(billed.map((c) => c.callId)).toContain('scn-edge-in');
    expect(billed.map((c) => c.callId)).not.toContain('scn-edge-out');
    // every CDR sent is listed, and the ones the invoice must leave out are filtered here, not lost
    expect(listed).toHaveLength(cdrs.length);
    expect(billed.map((c) => c.callId)).not.toContain('scn-missed');
    expect(billed.map((c) => c.callId)).not.toContain('scn-incoming');
    const byClass = new Map<string, { n: number; seconds: number; cost: Decimal }>();
    for (const c of billed) {
      const g = byClass.get(c.class) ?? { n: 0, seconds: 0, cost: new Decimal(0) };
      g.n++;
      g.seconds += c.chargedSeconds;
      g.cost = g.cost.plus(c.cost);
      byClass.set(c.class, g);
    }
    const expectedLines = [
      { kind: 'licence', quantity: '60', unitPrice: '4.00', amount: '240.00' }, // pro: 4.00 per user, 60 enabled during November
      ...classOrder.filter((k) => byClass.has(k)).map((k) => ({ kind: 'calls', amount: round2(byClass.get(k)!.cost) })),
    ];
    const totalExcl = expectedLines.reduce((s, l) => s.plus(l.amount), new Decimal(0));
    const vat = round2(totalExcl.times('0.20'));
    const total = totalExcl.plus(vat).toFixed(2);

    // 1 December: the month is invoiced
    const run = await runInvoices(db, { tenantId: t.id }, '2026-11', { issuer: testIssuer, now: december });
    expect(run.skipped).toEqual([]);
    expect(run.created).toHaveLength(1);
    const id = run.created[0]!;

    const invoice = (await call(app, 'GET', `/v1/invoices/${id}`, { key: t.adminKey })).json;
    expect(invoice).toMatchObject({ id, tenantId: t.id, reference: 'ACME-42', period: '2026-11', status: 'issued', currency: 'EUR', totalExclVat: totalExcl.toFixed(2), vat, total });
    expect(invoice.number).toMatch(/^2026-\d{6}$/);
    expect(invoice.lines).toHaveLength(expectedLines.length);
    for (const [i, l] of (invoice.lines as Record<string, string>[]).entries()) expect(l).toMatchObject(expectedLines[i]!);
    // an accountant recomputes every line: quantity × unit price = amount, to the cent (issue 17)
    for (const l of invoice.lines as Record<string, string>[]) expect(round2(new Decimal(l.quantity!).times(l.unitPrice!))).toBe(l.amount);
    for (const l of invoice.lines.filter((x: { kind: string }) => x.kind === 'calls')) expect(l.label).toMatch(/^Appels vers .+ — \d+ appels?, \d+ min \d{2} s facturées$/);
    expect(invoice.lines.find((l: { label: string }) => l.label.includes('numéros gratuits'))?.amount).toBe('0.00');

    // the details CSV: every licence and every CDR, summing to the lines and totals
    const details = await call(app, 'GET', `/v1/invoices/${id}/details.csv`, { key: t.adminKey });
    expect(details.status).toBe(200);
    expect(details.headers.get('content-type')).toContain('text/csv');
    const rows = await parseCsv(details.text);
    const licences = rows.filter((r) => r.record === 'licence');
    const calls = rows.filter((r) => r.record === 'call');
    expect(licences).toHaveLength(60);
    expect(licences.map((r) => r.full_name)).toContain(users[3]!.fullName); // removed since, still on the invoice
    expect(licences.map((r) => r.full_name)).not.toContain('Jamais Activé');
    expect(calls.map((r) => r.call_id).sort()).toEqual(billed.map((c) => c.callId).sort());
    const lineRows = rows.filter((r) => r.record === 'line');
    for (const line of lineRows) {
      const sum = [...licences, ...calls].filter((r) => r.line_no === line.line_no).reduce((s, r) => s.plus(r.amount!), new Decimal(0));
      expect(round2(sum), `line ${line.line_no}`).toBe(line.amount);
    }
    expect(rows.find((r) => r.record === 'total_excl_vat')?.amount).toBe(totalExcl.toFixed(2));
    expect(rows.find((r) => r.record === 'vat')?.amount).toBe(vat);
    expect(rows.find((r) => r.record === 'total')?.amount).toBe(total);

    // the same for French Excel (issue 18): a BOM, ';', decimal commas, the same rows
    const excel = await app.app.request(`/v1/invoices/${id}/details.csv?excel=1`, { headers: { authorization: `Bearer ${t.adminKey}` } });
    const excelBytes = Buffer.from(await excel.arrayBuffer());
    expect([...excelBytes.subarray(0, 3)]).toEqual([0xef, 0xbb, 0xbf]);
    const excelRows = await parseCsv(excelBytes.subarray(3).toString('utf8'), ';');
    expect(excelRows).toHaveLength(rows.length);
    expect(excelRows.find((r) => r.record === 'total')?.amount).toBe(total.replace('.', ','));
    expect(excelRows.find((r) => r.record === 'call')?.started_at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d$/);

    // the PDF through the API: a real PDF of 3 pages (lines and totals, then the annex of 60 users)
    const pdf = await app.app.request(`/v1/invoices/${id}.pdf`, { headers: { authorization: `Bearer ${t.adminKey}` } });
    expect(pdf.status).toBe(200);
    expect(pdf.headers.get('content-type')).toBe('application/pdf');
    const bytes = Buffer.from(await pdf.arrayBuffer());
    const record = await getInvoice(db, t.id, id);
    const tenant = { name: t.tenant.name as string, timezone: 'Europe/Paris' };
    if (process.env.INVOICE_PDF_DIR) {
      // to look at the pages: INVOICE_PDF_DIR=/tmp/inv npx vitest run test/invoices/scenario.test.ts; pdftoppm -png -r 70 …
      await mkdir(process.env.INVOICE_PDF_DIR, { recursive: true });
      await writeFile(path.join(process.env.INVOICE_PDF_DIR, 'scenario-fr.pdf'), bytes);
      const en = await renderInvoicePdf({ invoice: { ...record, locale: 'en' }, tenant, issuer: testIssuer, userCalls: await invoiceUserCalls(db, record, 1000) });
      await writeFile(path.join(process.env.INVOICE_PDF_DIR, 'scenario-en.pdf'), en);
    }

    expect(bytes.subarray(0, 5).toString()).toBe('%PDF-');
    expect(pageCount(bytes)).toBe(3);

    // its text (the same rendering, uncompressed): totals, reference, page numbers
    const plain = await renderInvoicePdf({ invoice: record, tenant, issuer: testIssuer, userCalls: await invoiceUserCalls(db, record, 1000), compress: false });
    const text = pdfText(plain);
    const fr = (v: string) => `${v.replace('.', ',').replace(/\B(?=(\d{3})+(?!\d),)/g, ' ')} €`;
    expect(text).toContain('FACTURE');
    expect(text).toContain(invoice.number);
    expect(text).toContain('ACME-42');
    expect(text).toContain(testIssuer.name);
    expect(text).toContain('novembre 2026');
    expect(text).toMatch(new RegExp(`Total HT\\s+${fr(totalExcl.toFixed(2))}`));
    expect(text).toMatch(new RegExp(`TVA 20 %\\s+${fr(vat)}`));
    expect(text).toMatch(new RegExp(`Total TTC\\s+${fr(total)}`));
    expect(text).toContain('Page 1 / 3');
    expect(text).toContain('Page 3 / 3');
    expect(text).not.toContain('NON FACTURÉ');

    // running November again creates nothing, and the invoice never changes
    const again = await runInvoices(db, { tenantId: t.id }, '2026-11', { issuer: testIssuer, now: december });
    expect(again).toEqual({ created: [], creditNotes: [], skipped: [{ tenantId: t.id, period: '2026-11', reason: 'ALREADY_INVOICED', invoiceId: id }] });
    expect((await call(app, 'GET', `/v1/invoices/${id}`, { key: t.adminKey })).json).toEqual(invoice);
  });
});
