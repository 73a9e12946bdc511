/**
 * Factur-X (issue 17, point 4): every invoice and credit note is also an
 * EN 16931 e-invoice. The document is described once, as the UBL-shaped JSON
 * @e-invoice-eu/core takes; that library writes the CII XML (never written by
 * hand here) and, for the PDF, embeds it in the PDF pdfkit drew (`factur-x.xml`,
 * AFRelationship Alternative), with the XMP metadata that declares it (Factur-X
 * extension schema, conformance level EN 16931, pdfaid part 3 / B) and an sRGB
 * output intent.
 *
 * What is and is not conformant is said in docs/invoices.md: the XML passes the
 * EN 16931 CII schematron; the PDF meets the PDF/A-3b requirements that poppler
 * and qpdf can check (its fonts are embedded: reports/pdf.ts), no validator has
 * run on it. Three faults of the library (2.3.4) are corrected at its seams below.
 *
 * A credit note is type 381 with positive amounts (the sign is in the type),
 * and refers to the invoice it corrects (BT-25). Amounts come from the stored
 * document as decimal strings; nothing is recomputed through a float.
 */
import { InvoiceService, type FormatFactoryService, type Invoice, type Logger } from '@e-invoice-eu/core';
import { DateTime } from 'luxon';
import { ratePercent } from '../../engine/money.js';
import type { Issuer } from './issuer.js';
import type { InvoiceRecord } from './read.js';

export interface FacturXTenant {
  name: string;
  country: string;
  timezone: string;
  billingAddress: string[];
}

/** The library's warnings go nowhere: the document is checked by its tests, not by a log. */
const quiet: Logger = { log: () => undefined, warn: () => undefined, error: () => undefined };

/** A preceding invoice reference (BG-3) as the library's input and as its 2.3.4 CII mapping reads it. */
interface BillingReference {
  'cac:InvoiceDocumentReference'?: { 'cbc:ID'?: string };
  'cbc:ID'?: string;
}

/**
 * The document with each preceding invoice's number (BT-25) also where
 * @e-invoice-eu/core 2.3.4 maps it from. Its input schema (UBL's shape) takes
 * the number at `cac:BillingReference/cac:InvoiceDocumentReference/cbc:ID` and
 * refuses anything else there, but its CII mapping reads `cac:BillingReference/cbc:ID`,
 * so a credit note's reference to the invoice it corrects never reached the XML.
 * The library fixed its mapping in 3.0.0 (its issue 455), a version the package
 * registry here does not serve; a later version simply ignores the copy.
 */
function withPrecedingInvoiceIds(invoice: Invoice): Invoice {
  const refs = (invoice['ubl:Invoice'] as { 'cac:BillingReference'?: BillingReference[] })['cac:BillingReference'];
  for (const ref of refs ?? []) {
    const id = ref['cac:InvoiceDocumentReference']?.['cbc:ID'];
    if (id !== undefined) ref['cbc:ID'] = id;
  }
  return invoice;
}

/**
 * The library's invoice service, its formats given the document with BT-25
 * where its mapping reads it (withPrecedingInvoiceIds): after the library has
 * validated the input against its schema, before it maps it to CII.
 */
function invoiceService(): InvoiceService {
  const service = new InvoiceService(quiet);
  const factory = (service as unknown as { formatFactoryService?: FormatFactoryService }).formatFactoryService;
  if (typeof factory?.createFormatService !== 'function') throw new Error('@e-invoice-eu/core: no formatFactoryService to carry BT-25 through (see withPrecedingInvoiceIds)');
  const create = factory.createFormatService.bind(factory);
  factory.createFormatService = (format, logger) => {
    const formatter = create(format, logger);
    const generate = formatter.generate.bind(formatter);
    formatter.generate = (invoice, options) => generate(withPrecedingInvoiceIds(invoice), options);
    const pdfa = formatter as unknown as {
      createPDFA?: (doc: PdfLibDocument, options: unknown, invoice: Invoice) => Promise<void>;
      addMetadata?: (doc: PdfLibDocument, xmp: string) => void;
    };
    const createPDFA = pdfa.createPDFA?.bind(formatter);
    const addMetadata = pdfa.addMetadata?.bind(formatter);
    if (createPDFA && addMetadata) {
      pdfa.addMetadata = (doc, xmp) => addMetadata(doc, utf8Bytes(xmp));
      pdfa.createPDFA = async (doc, options, invoice) => {
        await createPDFA(doc, options, invoice);
        infoAsXmp(doc);
      };
    }
    return formatter;
  };
  return service;
}

/**
 * The XMP packet as the UTF-8 bytes PDF/A requires, one byte per character of
 * the string the library stores (pdf-lib writes a string's char codes as bytes).
 * The library writes the packet's byte-order mark as the three characters of
 * its UTF-8 bytes and every other character as one Latin-1 byte, so an issuer
 * "Téléphonie …" made an XMP packet that is not UTF-8.
 */
function utf8Bytes(xmp: string): string {
  return Buffer.from(xmp.replace('\u00EF\u00BB\u00BF', '\uFEFF'), 'utf8').toString('latin1');
}

/** What infoAsXmp uses of the pdf-lib document the library hands its PDF/A step (@cantoo/pdf-lib). */
interface PdfLibDocument {
  getSubject(): string | undefined;
  setTitle(title: string): void;
  context: { trailerInfo: { Info?: unknown }; lookup(ref: unknown): unknown };
}

/**
 * PDF/A (ISO 19005-3, 6.6.2.3) requires each entry of the document information
 * dictionary that has an XMP equivalent to say what the XMP metadata says. The
 * library's XMP titles the document with its subject ("Invoice AV-2026-000001
 * dated … issued by …"), names the issuer as pdf:Producer, itself as
 * xmp:CreatorTool with its version, and has no pdf:Keywords, while it writes a
 * different Title, Producer, Creator and Keywords in the information dictionary.
 * The XMP is the PDF/A metadata: Title is set to its title (the Subject, which
 * is already its dc:description), and Creator, Producer and Keywords, optional
 * there, are removed. Author stays: it is the XMP's dc:creator.
 */
function infoAsXmp(doc: PdfLibDocument): void {
  const subject = doc.getSubject();
  if (subject !== undefined) doc.setTitle(subject);
  const info = doc.context.lookup(doc.context.trailerInfo.Info) as { keys(): { toString(): string }[]; delete(key: unknown): boolean } | undefined;
  for (const key of info?.keys() ?? []) if (['/Creator', '/Producer', '/Keywords'].includes(key.toString())) info?.delete(key);
}

/** "-2.09" → "2.09" on a credit note (type 381 carries the sign). */
function unsigned(value: string, negate: boolean): string {
  if (!negate) return value;
  return value.startsWith('-') ? value.slice(1) : value === '0.00' || /^0(\.0+)?$/.test(value) ? value : `-${value}`;
}

/** A postal address given as lines: the line with a postcode gives postcode and city, the others the street. */
function postal(lines: readonly string[], country: string) {
  const cityLine = lines.findIndex((l) => /^\d{4,5}\s+\S/.test(l.trim()));
  const m = cityLine >= 0 ? /^(\d{4,5})\s+(.+)$/.exec(lines[cityLine]!.trim()) : null;
  const street = lines.filter((_, i) => i !== cityLine && i < (cityLine >= 0 ? cityLine : lines.length));
  return {
    ...(street[0] ? { 'cbc:StreetName': street[0] } : {}),
    ...(street[1] ? { 'cbc:AdditionalStreetName': street[1] } : {}),
    ...(m ? { 'cbc:CityName': m[2]!, 'cbc:PostalZone': m[1]! } : {}),
    'cac:Country': { 'cbc:IdentificationCode': country as 'FR' },
  };
}

/** The issuer's country: its address's last line when it is a country name or code we know, else France. */
function issuerCountry(issuer: Issuer): string {
  const last = issuer.address[issuer.address.length - 1]?.trim().toLowerCase() ?? '';
  const known: Record<string, string> = { france: 'FR', belgique: 'BE', belgium: 'BE', suisse: 'CH', switzerland: 'CH', luxembourg: 'LU' };
  return known[last] ?? (/^[a-z]{2}$/.test(last) ? last.toUpperCase() : 'FR');
}

/** The document as @e-invoice-eu/core's input (EN 16931 business terms in UBL's names). */
export function eInvoiceOf(invoice: InvoiceRecord, issuer: Issuer, tenant: FacturXTenant): Invoice {
  const credit = invoice.kind === 'credit_note';
  const currency = invoice.currency as 'EUR';
  const amount = (v: string) => unsigned(v, credit);
  const [y, mo] = invoice.period.split('-').map(Number) as [number, number];
  const month = DateTime.fromObject({ year: y, month: mo, day: 1 }, { zone: tenant.timezone });
  const rate = ratePercent(invoice.vatRate);
  const category = { 'cbc:ID': 'S' as const, 'cbc:Percent': rate, 'cac:TaxScheme': { 'cbc:ID': 'VAT' as const } };
  const issuerStreet = issuer.address.slice(0, -1);
  const doc = {
    'cbc:CustomizationID': 'urn:cen.eu:en16931:2017',
    'cbc:ID': invoice.number,
    'cbc:IssueDate': DateTime.fromISO(invoice.issuedAt).setZone(issuer.timezone).toISODate()!,
    'cbc:InvoiceTypeCode': credit ? '381' : '380',
    'cbc:Note': [credit ? `Avoir sur la facture ${invoice.corrects?.number ?? ''}` : 'Paiement à réception.'],
    'cbc:DocumentCurrencyCode': currency,
    'cbc:BuyerReference': invoice.reference,
    'cac:InvoicePeriod': { 'cbc:StartDate': month.toISODate()!, 'cbc:EndDate': month.endOf('month').toISODate()! },
    ...(invoice.corrects ? { 'cac:BillingReference': [{ 'cac:InvoiceDocumentReference': { 'cbc:ID': invoice.corrects.number } }] } : {}),
    'cac:AccountingSupplierParty': {
      'cac:Party': {
        'cbc:EndpointID': issuer.email,
        'cbc:EndpointID@schemeID': 'EM',
        'cac:PartyName': { 'cbc:Name': issuer.name },
        'cac:PostalAddress': postal(issuerStreet, issuerCountry(issuer)),
        'cac:PartyTaxScheme': [{ 'cbc:CompanyID': issuer.vatId, 'cac:TaxScheme': { 'cbc:ID': 'VAT' } }],
        'cac:PartyLegalEntity': { 'cbc:RegistrationName': issuer.name, 'cbc:CompanyLegalForm': issuer.registration },
        'cac:Contact': { 'cbc:ElectronicMail': issuer.email },
      },
    },
    'cac:AccountingCustomerParty': {
      'cac:Party': {
        'cac:PartyIdentification': { 'cbc:ID': invoice.tenantId },
        'cac:PartyName': { 'cbc:Name': tenant.name },
        'cac:PostalAddress': postal(tenant.billingAddress, tenant.country),
        'cac:PartyLegalEntity': { 'cbc:RegistrationName': tenant.name },
      },
    },
    'cac:PaymentTerms': { 'cbc:Note': credit ? 'Imputé sur le prochain règlement ou remboursé sur demande.' : 'Paiement à réception.' },
    'cac:TaxTotal': [
      {
        'cbc:TaxAmount': amount(invoice.vat),
        'cbc:TaxAmount@currencyID': currency,
        'cac:TaxSubtotal': [
          {
            'cbc:TaxableAmount': amount(invoice.totalExclVat),
            'cbc:TaxableAmount@currencyID': currency,
            'cbc:TaxAmount': amount(invoice.vat),
            'cbc:TaxAmount@currencyID': currency,
            'cac:TaxCategory': category,
          },
        ],
      },
    ],
    'cac:LegalMonetaryTotal': {
      'cbc:LineExtensionAmount': amount(invoice.totalExclVat),
      'cbc:LineExtensionAmount@currencyID': currency,
      'cbc:TaxExclusiveAmount': amount(invoice.totalExclVat),
      'cbc:TaxExclusiveAmount@currencyID': currency,
      'cbc:TaxInclusiveAmount': amount(invoice.total),
      'cbc:TaxInclusiveAmount@currencyID': currency,
      'cbc:PayableAmount': amount(invoice.total),
      'cbc:PayableAmount@currencyID': currency,
    },
    'cac:InvoiceLine': invoice.lines.map((l, i) => ({
      'cbc:ID': String(invoice.lineNos[i] ?? i + 1),
      'cbc:InvoicedQuantity': l.quantity,
      // C62: one (users, or one lot of calls)
      'cbc:InvoicedQuantity@unitCode': 'C62',
      'cbc:LineExtensionAmount': amount(l.amount),
      'cbc:LineExtensionAmount@currencyID': currency,
      ...(l.period ? { 'cac:InvoicePeriod': { 'cbc:StartDate': `${l.period}-01`, 'cbc:EndDate': DateTime.fromISO(`${l.period}-01`).endOf('month').toISODate()! } } : {}),
      'cac:Item': { 'cbc:Name': l.label, 'cac:ClassifiedTaxCategory': category },
      'cac:Price': { 'cbc:PriceAmount': amount(l.unitPrice), 'cbc:PriceAmount@currencyID': currency },
    })),
  };
  return { 'ubl:Invoice': doc } as unknown as Invoice;
}

/** The CII XML of the document (Factur-X EN 16931 profile). */
export async function facturXml(invoice: InvoiceRecord, issuer: Issuer, tenant: FacturXTenant): Promise<string> {
  const out = await invoiceService().generate(eInvoiceOf(invoice, issuer, tenant), { format: 'CII', lang: invoice.locale, noWarnings: true });
  return typeof out === 'string' ? out : Buffer.from(out).toString('utf8');
}

/** The PDF pdfkit drew, made a Factur-X document: the CII XML embedded and declared in its metadata. */
export async function facturXPdf(pdf: Uint8Array, invoice: InvoiceRecord, issuer: Issuer, tenant: FacturXTenant): Promise<Uint8Array> {
  const out = await invoiceService().generate(eInvoiceOf(invoice, issuer, tenant), {
    format: 'Factur-X-EN16931',
    lang: invoice.locale,
    noWarnings: true,
    pdf: { buffer: pdf, filename: `${invoice.number}.pdf`, mimetype: 'application/pdf' },
  });
  if (typeof out === 'string') throw new Error('Factur-X: the library returned XML where a PDF was expected');
  return out;
}
