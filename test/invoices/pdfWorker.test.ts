// Issue #24: a large invoice PDF (a 1,000-user annex) is drawn by a report
// worker, not by the thread that answers the PBX. Work is counted (pdfkit
// calls on this thread), never timed.
import PDFDocument from 'pdfkit';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { drawInvoicePdf, renderInvoicePdf, type InvoicePdfInput } from '../../reports/invoicePdf.js';
import { closeRenderPool, renderPool } from '../../reports/renderPool.js';
import { drawUserSheet, renderUserSheet } from '../../reports/userSheet.js';
import { defaultIssuer } from '../../services/invoices/issuer.js';
import type { DirectoryTenant, UserView } from '../../services/users/fields.js';
import { pageCount, pdfText } from './helpers.js';

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
    issuer: defaultIssuer,
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
