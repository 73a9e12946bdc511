import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { XMLParser } from 'fast-xml-parser';
import { afterAll, describe, expect, it } from 'vitest';
import { rerate } from '../../services/cdrs/rerate.js';
import { runInvoices } from '../../services/invoices/run.js';
import { TariffIndexCache } from '../../services/tariffs/tariffs.js';
import { call, testApp, testDb } from '../support/app.js';
import { testIssuer } from '../support/issuer.js';
import { cdrTenant, cdrUser, putTariff, TARIFF_CSV } from '../cdrs/helpers.js';
import { enabledSince, postCdrs } from '../invoices/helpers.js';

/**
 * Issue 17, point 4: each invoice and credit note PDF is a Factur-X document.
 * The XML is read back out of the PDF by poppler's pdfdetach (not by the code
 * that put it there), parsed, and every total compared with the JSON.
 */
const run = promisify(execFile);
const app = testApp();
const { db, sql } = testDb();
let dir = '';
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function pdfOf(key: string, id: string): Promise<string> {
  const res = await app.app.request(`/v1/invoices/${id}.pdf`, { headers: { authorization: `Bearer ${key}` } });
  expect(res.status).toBe(200);
  const file = path.join(dir, `${id}.pdf`);
  await writeFile(file, Buffer.from(await res.arrayBuffer()));
  return file;
}

const parser = new XMLParser({ ignoreAttributes: false, removeNSPrefix: true, parseTagValue: false });
const money = (v: unknown) => String(typeof v === 'object' && v !== null ? (v as Record<string, unknown>)['#text'] : v);
const positive = (v: string) => (v.startsWith('-') ? v.slice(1) : v);

describe('Factur-X (issue 17)', () => {
  it('embeds the CII XML in every invoice and credit note PDF, declared in its metadata, with the totals of the JSON', async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'forfait-fx-'));
    const t = await cdrTenant(app, { locale: 'fr' });
    await call(app, 'PATCH', `/v1/tenants/${t.id}`, { key: t.resellerKey, json: { billingAddress: ['Acme SARL', '5 quai du Port', '13002 Marseille'] } });
    const u = await cdrUser(t.id, { balance: '50' });
    await enabledSince(t.id, '2026-10-01T00:00:00Z');
    const c = { identifiant: u.identifiant, direction: 'out', disposition: 'answered' };
    await postCdrs(app, t.adminKey, [{ ...c, callId: 'o1', callee: '0612345678', startedAt: '2026-10-10T10:00:00+02:00', durationSeconds: 120 }]);
    const oct = await runInvoices(db, { tenantId: t.id }, '2026-10', { issuer: testIssuer, now: new Date('2026-11-01T03:00:00Z') });
    // after October's invoice: a late fixed call (owed more) and mobiles re-rated down (owed less)
    await postCdrs(app, t.adminKey, [{ ...c, callId: 'o2', callee: '0142000000', startedAt: '2026-10-30T10:00:00+01:00', durationSeconds: 600 }]);
    await putTariff(app, TARIFF_CSV.replace('336,France mobile,mobile,0.20,0.40,60,1,false,0.10,', '336,France mobile,mobile,0.10,0,60,1,false,0.10,'), t.tariffId);
    await rerate({ db, sql, tariffs: new TariffIndexCache(db) }, t.id, { from: '2026-10', to: '2026-11' }, 'test', { now: new Date('2026-11-15T10:00:00Z') });
    const nov = await runInvoices(db, { tenantId: t.id }, '2026-11', { issuer: testIssuer, now: new Date('2026-12-01T03:00:00Z') });
    expect(nov.created).toHaveLength(1);
    expect(nov.creditNotes).toHaveLength(1);

    for (const id of [oct.created[0]!, nov.created[0]!, nov.creditNotes[0]!]) {
      const json = (await call(app, 'GET', `/v1/invoices/${id}`, { key: t.adminKey })).json;
      const file = await pdfOf(t.adminKey, id);
      // the attachment, as an independent reader sees it
      const list = (await run('pdfdetach', ['-list', file])).stdout;
      const entry = /^(\d+): factur-x\.xml$/m.exec(list);
      expect(entry, list).not.toBeNull();
      const out = path.join(dir, `${id}.xml`);
      await run('pdfdetach', ['-save', entry![1]!, '-o', out, file]);
      const xml = await readFile(out, 'utf8');
      // the PDF declares it: PDF/A-3 identification and the Factur-X extension, EN 16931 profile
      const meta = (await run('pdfinfo', ['-meta', file])).stdout;
      expect(meta).toMatch(/<pdfaid:part>3<\/pdfaid:part>/);
      expect(meta).toMatch(/<fx:ConformanceLevel>EN 16931<\/fx:ConformanceLevel>/);
      expect(meta).toMatch(/<fx:DocumentFileName>factur-x.xml<\/fx:DocumentFileName>/);
      // GET {id}.xml serves the same XML alone
      const served = await call(app, 'GET', `/v1/invoices/${id}.xml`, { key: t.adminKey });
      expect(served.status).toBe(200);
      expect(served.headers.get('content-type')).toContain('application/xml');
      expect(served.text).toBe(xml);

      const doc = parser.parse(xml).CrossIndustryInvoice;
      expect(doc.ExchangedDocumentContext.GuidelineSpecifiedDocumentContextParameter.ID).toBe('urn:cen.eu:en16931:2017');
      expect(doc.ExchangedDocument.ID).toBe(json.number);
      expect(doc.ExchangedDocument.TypeCode).toBe(json.kind === 'credit_note' ? '381' : '380');
      const settlement = doc.SupplyChainTradeTransaction.ApplicableHeaderTradeSettlement;
      const sums = settlement.SpecifiedTradeSettlementHeaderMonetarySummation;
      // a credit note's amounts are positive in the XML (type 381 carries the sign), negative in the JSON
      expect(money(sums.TaxBasisTotalAmount)).toBe(positive(json.totalExclVat));
      expect(money(sums.TaxTotalAmount)).toBe(positive(json.vat));
      expect(money(sums.GrandTotalAmount)).toBe(positive(json.total));
      expect(money(sums.DuePayableAmount)).toBe(positive(json.total));
      expect(money(settlement.ApplicableTradeTax.BasisAmount)).toBe(positive(json.totalExclVat));
      expect(money(settlement.ApplicableTradeTax.CalculatedAmount)).toBe(positive(json.vat));
      const items = [doc.SupplyChainTradeTransaction.IncludedSupplyChainTradeLineItem].flat();
      expect(items.map((i: Record<string, any>) => money(i.SpecifiedLineTradeSettlement.SpecifiedTradeSettlementLineMonetarySummation.LineTotalAmount))).toEqual(
        json.lines.map((l: { amount: string }) => positive(l.amount)),
      );
      expect(items.map((i: Record<string, any>) => i.SpecifiedTradeProduct.Name)).toEqual(json.lines.map((l: { label: string }) => l.label));
      expect(doc.SupplyChainTradeTransaction.ApplicableHeaderTradeAgreement.BuyerTradeParty.PostalTradeAddress).toMatchObject({ PostcodeCode: '13002', CityName: 'Marseille', CountryID: 'FR' });
    }
    // another tenant's key cannot read the XML
    expect((await call(app, 'GET', `/v1/invoices/${nov.creditNotes[0]}.xml`, { key: (await cdrTenant(app)).adminKey })).status).toBe(404);
  });
});
