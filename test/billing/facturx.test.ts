import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { XMLParser } from 'fast-xml-parser';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rerate } from '../../services/cdrs/rerate.js';
import { runInvoices } from '../../services/invoices/run.js';
import { TariffIndexCache } from '../../services/tariffs/tariffs.js';
import { call, testApp, testDb } from '../support/app.js';
import { testIssuer } from '../support/issuer.js';
import { en16931Schematron, type Schematron } from '../support/schematron.js';
import { cdrTenant, cdrUser, putTariff, TARIFF_CSV } from '../cdrs/helpers.js';
import { enabledSince, postCdrs } from '../invoices/helpers.js';

/**
 * Issue 17, point 4: each invoice and credit note PDF is a Factur-X document.
 * The XML is read back out of the PDF by poppler's pdfdetach (not by the code
 * that put it there), parsed, and every total compared with the JSON; the PDF's
 * PDF/A-3b requirements are read by poppler (pdffonts, pdfinfo) and qpdf; the XML
 * is run through the official EN 16931 CII schematron (SaxonJS).
 */
const run = promisify(execFile);
const app = testApp();
const { db, sql } = testDb();
let dir = '';
let schematron: Schematron | undefined;
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
  await schematron?.close();
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

/** October's invoice, November's with a late line of October, and the credit note of October's re-rating. */
interface Doc {
  name: string;
  id: string;
  json: Record<string, any>;
  pdf: string;
  xml: string;
}
const docs: Doc[] = [];
let tenant: Awaited<ReturnType<typeof cdrTenant>>;
let userId = '';

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'forfait-fx-'));
  const t = await cdrTenant(app, { locale: 'fr' });
  tenant = t;
  await call(app, 'PATCH', `/v1/tenants/${t.id}`, { key: t.resellerKey, json: { billingAddress: ['Acme SARL', '5 quai du Port', '13002 Marseille'] } });
  const u = await cdrUser(t.id, { balance: '50' });
  userId = u.id;
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
  for (const [name, id] of [
    ['invoice', oct.created[0]!],
    ['invoice with late lines', nov.created[0]!],
    ['credit note', nov.creditNotes[0]!],
  ] as const) {
    const json = (await call(app, 'GET', `/v1/invoices/${id}`, { key: t.adminKey })).json;
    const pdf = await pdfOf(t.adminKey, id);
    // the attachment, as an independent reader sees it
    const list = (await run('pdfdetach', ['-list', pdf])).stdout;
    const entry = /^(\d+): factur-x\.xml$/m.exec(list);
    expect(entry, list).not.toBeNull();
    const out = path.join(dir, `${id}.xml`);
    await run('pdfdetach', ['-save', entry![1]!, '-o', out, pdf]);
    docs.push({ name, id, json, pdf, xml: await readFile(out, 'utf8') });
  }
  expect(docs[1]!.json.lines.some((l: { period?: string }) => l.period === '2026-10')).toBe(true);
});

describe('Factur-X (issue 17)', () => {
  it('embeds the CII XML in every invoice and credit note PDF, declared in its metadata, with the totals of the JSON', async () => {
    for (const { id, json, pdf: file, xml } of docs) {
      // the PDF declares it: PDF/A-3 identification and the Factur-X extension, EN 16931 profile
      const meta = (await run('pdfinfo', ['-meta', file])).stdout;
      expect(meta).toMatch(/<pdfaid:part>3<\/pdfaid:part>/);
      expect(meta).toMatch(/<fx:ConformanceLevel>EN 16931<\/fx:ConformanceLevel>/);
      expect(meta).toMatch(/<fx:DocumentFileName>factur-x.xml<\/fx:DocumentFileName>/);
      // GET {id}.xml serves the same XML alone
      const served = await call(app, 'GET', `/v1/invoices/${id}.xml`, { key: tenant.adminKey });
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
      // BT-25: a credit note names the invoice it corrects (BG-3 preceding invoice reference); an invoice names none
      if (json.kind === 'credit_note') {
        expect(json.corrects.number).toBe(docs[0]!.json.number);
        expect(settlement.InvoiceReferencedDocument).toEqual({ IssuerAssignedID: json.corrects.number });
      } else {
        expect(settlement.InvoiceReferencedDocument).toBeUndefined();
      }
    }
    // another tenant's key cannot read the XML
    expect((await call(app, 'GET', `/v1/invoices/${docs[2]!.id}.xml`, { key: (await cdrTenant(app)).adminKey })).status).toBe(404);
  });

  it('is a PDF/A-3b as far as poppler and qpdf can tell: fonts embedded, XMP identification, sRGB output intent, no encryption, /ID, the XML an Alternative', async () => {
    const sheet = path.join(dir, 'sheet.pdf');
    const res = await app.app.request(`/v1/users/${userId}.pdf`, { headers: { authorization: `Bearer ${tenant.adminKey}` } });
    expect(res.status).toBe(200);
    await writeFile(sheet, Buffer.from(await res.arrayBuffer()));
    // every font of the invoices, credit note and user sheet is embedded (pdfkit's Helvetica never is)
    for (const file of [...docs.map((d) => d.pdf), sheet]) {
      const rows = (await run('pdffonts', [file])).stdout.trim().split('\n').slice(2);
      expect(rows.length, file).toBeGreaterThan(0);
      for (const row of rows) {
        // name type encoding emb sub uni object-id: the three yes/no columns come before the id
        const [emb] = /\s(yes|no)\s+(yes|no)\s+(yes|no)\s+\d+\s+\d+\s*$/.exec(row)!.slice(1);
        expect(emb, row).toBe('yes');
        expect(row).not.toMatch(/Helvetica|Type 1 /);
      }
    }
    for (const { pdf } of docs) {
      // the XMP packet is UTF-8 (the issuer's name has accents)
      const meta = new TextDecoder('utf-8', { fatal: true }).decode((await run('pdfinfo', ['-meta', pdf], { encoding: 'buffer' })).stdout);
      expect(meta).toMatch(/^<\?xpacket begin="\uFEFF"/);
      expect(meta).toContain(`<dc:creator>\n\t\t\t\t<rdf:Seq>\n\t\t\t\t\t<rdf:li>${testIssuer.name}</rdf:li>`);
      expect(meta).toMatch(/<pdfaid:part>3<\/pdfaid:part>/);
      expect(meta).toMatch(/<pdfaid:conformance>B<\/pdfaid:conformance>/);
      const info = (await run('pdfinfo', [pdf])).stdout;
      expect(info).toMatch(/^Encrypted:\s+no$/m);
      // PDF/A-3 is built on PDF 1.7 (and the file has object streams, 1.5+)
      expect(info).toMatch(/^PDF version:\s+1\.7$/m);
      // the file's structure as qpdf reads it
      expect((await run('qpdf', ['--check', pdf])).stdout).toContain('No syntax or stream encoding errors found');
      const q = JSON.parse((await run('qpdf', ['--json=2', '--json-key=qpdf', '--json-key=encrypt', pdf], { maxBuffer: 64 * 1024 * 1024 })).stdout);
      expect(q.encrypt.encrypted).toBe(false);
      const objects = q.qpdf[1] as Record<string, { value?: Record<string, any>; stream?: { dict: Record<string, any> } }>;
      const value = (ref: string) => objects[`obj:${ref}`]!.value!;
      const trailer = objects.trailer!.value!;
      expect(trailer['/Encrypt']).toBeUndefined();
      // /ID: two byte strings
      expect(trailer['/ID']).toHaveLength(2);
      for (const id of trailer['/ID']) expect(id).toMatch(/^b:[0-9a-f]{32,}$/);
      // the information dictionary says what the XMP says, entry by entry (ISO 19005-3, 6.6.2.3)
      const xmp = (name: string) => new RegExp(`<${name}>\\s*(?:<rdf:(?:Alt|Seq)>\\s*<rdf:li[^>]*>)?([^<]*)<`).exec(meta)?.[1];
      const docInfo = value(trailer['/Info']);
      const text = (v: unknown) => (typeof v === 'string' ? v.replace(/^u:/, '') : undefined);
      expect(xmp('dc:title')).toMatch(/AV-|\d{4}-\d{6}/);
      for (const [key, equivalent] of [
        ['/Title', 'dc:title'],
        ['/Author', 'dc:creator'],
        ['/Subject', 'dc:description'],
        ['/Creator', 'xmp:CreatorTool'],
        ['/Producer', 'pdf:Producer'],
        ['/Keywords', 'pdf:Keywords'],
      ] as const) {
        if (docInfo[key] !== undefined) expect(text(docInfo[key]), key).toBe(xmp(equivalent));
      }
      expect(docInfo['/Title']).toBeDefined();
      const catalog = value(trailer['/Root']);
      // the XMP metadata stream
      expect(objects[`obj:${catalog['/Metadata']}`]!.stream!.dict).toMatchObject({ '/Type': '/Metadata', '/Subtype': '/XML' });
      // the sRGB output intent, with its ICC profile
      const [intentRef] = catalog['/OutputIntents'];
      const intent = value(intentRef);
      expect(intent).toMatchObject({ '/Type': '/OutputIntent', '/S': '/GTS_PDFA1', '/OutputConditionIdentifier': 'u:sRGB' });
      expect(objects[`obj:${intent['/DestOutputProfile']}`]!.stream).toBeDefined();
      // the CII XML: an associated file of the document (/AF), relationship Alternative (Factur-X), text/xml
      expect(catalog['/AF']).toHaveLength(1);
      const spec = value(catalog['/AF'][0]);
      expect(spec).toMatchObject({ '/Type': '/Filespec', '/F': 'u:factur-x.xml', '/UF': 'u:factur-x.xml', '/AFRelationship': '/Alternative' });
      expect(objects[`obj:${spec['/EF']['/F']}`]!.stream!.dict).toMatchObject({ '/Type': '/EmbeddedFile', '/Subtype': '/text/xml' });
    }
  });

  it('passes the official EN 16931 CII schematron (model and syntax rules): no fatal assertion for an invoice, one with late lines, a credit note', { timeout: 300_000 }, async () => {
    schematron ??= await en16931Schematron();
    for (const { name, xml } of docs) {
      const { failed, firedRules } = await schematron.validate(xml);
      expect(firedRules, name).toBeGreaterThan(20);
      expect(failed.filter((a) => a.flag === 'fatal'), name).toEqual([]);
      // no warning either, today
      expect(failed, name).toEqual([]);
    }
    // the rules do fire: a total that does not add up is BR-CO-15 (grand total = total excl. VAT + VAT)
    const broken = docs[1]!.xml.replace(/<ram:GrandTotalAmount>([^<]+)</, '<ram:GrandTotalAmount>999.99<');
    expect(broken).not.toBe(docs[1]!.xml);
    const { failed } = await schematron.validate(broken);
    expect(failed.map((a) => [a.id, a.flag])).toContainEqual(['BR-CO-15', 'fatal']);
  });
});
