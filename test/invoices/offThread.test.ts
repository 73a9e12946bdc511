// Issue #24: a large invoice PDF (a 1,000-user annex) and the pages of a
// large details CSV are made by a report worker, not by the thread that
// answers the PBX. Work is counted (pdfkit and luxon calls on this thread),
// never timed.
import { DateTime } from 'luxon';
import PDFDocument from 'pdfkit';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { drawInvoicePdf, type InvoicePdfInput } from '../../reports/invoicePdf.js';
import { closeRenderPool, detailsPageOffThread, renderInvoicePdf, renderPool, renderUserSheet } from '../../reports/renderPool.js';
import { detailsPage, type ItemRow } from '../../services/invoices/details.js';
import { drawUserSheet } from '../../reports/userSheet.js';
import { testIssuer } from '../support/issuer.js';
import type { UserView } from '../../services/users/fields.js';
import type { DirectoryTenant } from '../../services/users/repo.js';
import { pageCount, parseCsv, pdfText } from './helpers.js';

afterAll(() => closeRenderPool());

/** An invoice of 1,200 users' calls: the PDF's annex lists the first 1,000. */
function largeInvoice(): InvoicePdfInput {
  const users = Array.from({ length: 1000 }, (_, i) => ({
    identifiant: String(2_000_000 + i),
    fullName: `Utilisateur n° ${i} — équipe ${i % 17}`,
    calls: 10 + (i % 40),
    chargedSeconds: 600 + i * 7,
    amount: `${(i * 0.3712).toFixed(4)}`,
  }));
  return {
    invoice: {
      id: '6f1c9a52-3d0b-4c55-9a0e-1f2e3d4c5b6a',
      kind: 'invoice',
      corrects: null,
      number: '2026-000042',
      tenantId: '0b7c1d2e-3f40-4a5b-8c6d-7e8f9a0b1c2d',
      reference: 'ACME-PARIS',
      period: '2026-10',
      status: 'issued',
      currency: 'EUR',
      lines: [
        { kind: 'licence', label: 'Licences Forfait — 1 200 utilisateurs', quantity: '1200', unitPrice: '5.00', amount: '6000.00' },
        { kind: 'calls', label: 'Appels vers les mobiles — 12 000 appels', quantity: '14123.4167', unitPrice: '0.0512', amount: '723.12' },
        { kind: 'calls', label: 'Appels internationaux — 3 400 appels', quantity: '4210.5', unitPrice: '0.2100', amount: '884.21' },
      ],
      totalExclVat: '7607.33',
      vat: '1521.47',
      total: '9128.80',
      issuedAt: '2026-11-01T06:00:00.000Z',
      locale: 'fr',
      vatRate: '0.2000',
      lineNos: [1, 2, 3],
    },
    tenant: { name: 'ACME Paris', timezone: 'Europe/Paris' },
    issuer: testIssuer,
    userCalls: { users, total: 1200 },
    compress: false,
  };
}

describe('invoice PDFs off the server’s thread', () => {
  it('a 1,000-user annex is drawn by a report worker: no pdfkit work on this thread, and the same bytes', async () => {
    const input = { ...largeInvoice(), createdAt: new Date('2026-11-01T07:00:00Z') };
    const text = vi.spyOn(PDFDocument.prototype, 'text');
    const pdf = await renderInvoicePdf(input);
    expect(text).not.toHaveBeenCalled();
    text.mockRestore();
    expect(renderPool().load.threads).toBeGreaterThanOrEqual(1);
    expect(pageCount(pdf)).toBeGreaterThan(25);
    expect(pdfText(pdf)).toContain('Utilisateur n° 999 — équipe 13');
    // what the worker draws is what drawing here gives, to the byte (same creation date)
    expect(pdf.equals(await drawInvoicePdf(input))).toBe(true);
  });

  it('the user sheet too', async () => {
    const user: UserView = {
      id: '5a4b3c2d-1e0f-4a9b-8c7d-6e5f4a3b2c1d',
      tenantId: '0b7c1d2e-3f40-4a5b-8c6d-7e8f9a0b1c2d',
      fullName: 'Zoë Martin',
      matricule: '20260000000001',
      identifiant: '1234567',
      generalState: null,
      accountStatus: 'enabled',
      billingEnabled: true,
      balance: '12.5000',
      forfaitMinutes: 60,
      forfaitPeriod: '2026-10',
      usedSeconds: 754,
      totalCallSeconds: 9001,
      authorizedNumbers: ['+33612345678', null, null, null, null, null, null, null, null, null],
      createdAt: '2026-10-01T08:00:00.000Z',
      updatedAt: '2026-10-02T08:00:00.000Z',
    };
    // what the sheet reads of its tenant
    const tenant = { name: 'ACME Paris', timezone: 'Europe/Paris', locale: 'fr', currency: 'EUR' } as DirectoryTenant;
    const now = new Date('2026-11-01T07:00:00Z');
    const text = vi.spyOn(PDFDocument.prototype, 'text');
    const sheet = await renderUserSheet(user, tenant, now);
    expect(text).not.toHaveBeenCalled();
    text.mockRestore();
    expect(sheet.equals(await drawUserSheet(user, tenant, now))).toBe(true);
  });
});

describe('invoice details CSV off the server’s thread', () => {
  it('its pages are written by a report worker, and joined they are the file written at once', async () => {
    const { invoice } = largeInvoice();
    const ctx = { invoice, tenant: { country: 'FR', timezone: 'Europe/Paris', numberDisplay: 'national' as const } };
    const items: ItemRow[] = Array.from({ length: 2600 }, (_, i) => ({
      lineNo: i < 600 ? 1 : 2 + (i % 2),
      kind: i < 600 ? 'licence' : 'call',
      chargedSeconds: i < 600 ? 0 : 30 + i,
      cost: i < 600 ? '5.0000' : `${(i * 0.0137).toFixed(4)}`,
      amount: i < 600 ? '5.0000' : `${(i * 0.0137).toFixed(4)}`,
      matricule: String(20260000000000 + (i % 1200)),
      identifiant: String(2_000_000 + (i % 1200)),
      fullName: i % 97 === 0 ? '=HYPERLINK("x")' : `Nom ${i}, "dit ${i % 13}"`,
      callId: i < 600 ? null : `call-${i}`,
      startedAt: i < 600 ? null : new Date(Date.UTC(2026, 9, 1) + i * 997_000),
      callee: i < 600 ? null : `+3361234${String(i).padStart(4, '0')}`,
      destination: i < 600 ? null : 'France mobile',
      class: i < 600 ? null : 'mobile',
    }));
    const toISO = vi.spyOn(DateTime.prototype, 'toISO');
    const pages: string[] = [];
    for (let k = 0; k < items.length; k += 1000) pages.push(await detailsPageOffThread(ctx, items.slice(k, k + 1000), { first: k === 0, last: false }));
    pages.push(await detailsPageOffThread(ctx, [], { first: false, last: true }));
    expect(toISO).not.toHaveBeenCalled();
    toISO.mockRestore();
    const whole = await detailsPage(ctx, items, { first: true, last: true });
    expect(pages.join('')).toBe(whole);
    const rows = await parseCsv(whole);
    expect(rows).toHaveLength(2600 + 3 + 3);
    expect(rows[600]).toMatchObject({ record: 'call', callee: '06 12 34 06 00', started_at: '2026-10-08T00:10:00+02:00' });
    expect(rows[0]!.full_name).toBe("'=HYPERLINK(\"x\")");
    expect(rows.at(-1)).toMatchObject({ record: 'total', amount: '9128.80' });
  });
});
