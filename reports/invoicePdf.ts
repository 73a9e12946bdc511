// The invoice as a PDF (SPEC §9), in the tenant's locale: issuer, client and
// reference, period, the lines (a table that breaks across pages with its header
// repeated), totals excl. VAT, VAT and total, legal mentions, page numbers; then
// an annex with the calls of each user. Every amount is printed from its decimal
// string, never through a float.
import PDFDocument from 'pdfkit';
import { DateTime } from 'luxon';
import type { FacturXTenant } from '../services/invoices/facturx.js';
import type { Issuer } from '../services/invoices/issuer.js';
import type { InvoiceRecord, UserCalls } from '../services/invoices/read.js';
import { ratePercent } from '../engine/money.js';
import { collect, colors, fonts, pt } from './pdf.js';

type Locale = 'fr' | 'en';

const words = {
  fr: {
    invoice: 'FACTURE',
    creditNote: 'AVOIR',
    corrects: 'Facture corrigée',
    specimen: 'SPECIMEN',
    specimenNote: 'SPECIMEN — aperçu non émis : ce document n’a pas de numéro, n’est pas enregistré et n’est pas dû.',
    creditNoteText: (number: string, period: string) =>
      `Avoir sur la facture n° ${number} (${period}) : les montants ci-dessus, TVA comprise, sont déduits de ce qui vous est facturé et imputés sur votre prochain règlement, ou remboursés sur demande.`,
    number: 'N°',
    issued: 'Date d’émission',
    period: 'Période',
    billTo: 'Facturé à',
    reference: 'Référence',
    clientId: 'Identifiant client',
    vatId: 'N° TVA',
    description: 'Désignation',
    quantity: 'Quantité',
    unitPrice: 'Prix unitaire HT',
    amount: 'Montant HT',
    totalExcl: 'Total HT',
    vat: (rate: string) => `TVA ${rate} %`,
    total: 'Total TTC',
    notBilled: 'NON FACTURÉ',
    notBilledNote: 'Système interne : facture établie pour information, tous les montants sont ramenés à zéro. Aucun paiement n’est dû.',
    callsNote:
      'Appels : chaque ligne est un lot (quantité 1, prix = montant) ; son libellé donne le nombre d’appels et la durée facturée ; chaque montant est la somme des coûts des appels, arrondie une fois au centime. Une ligne « appels de <mois> reçus après facturation » facture les appels d’un mois déjà facturé, arrivés ou recalculés depuis.',
    terms: 'Paiement à réception. Pas d’escompte pour paiement anticipé. Tout retard de paiement entraîne des pénalités au taux de la BCE majoré de 10 points et une indemnité forfaitaire de 40 € pour frais de recouvrement.',
    annex: 'Annexe — appels par utilisateur',
    annexNote: (n: number, shown: number) => (n > shown ? `Les ${shown} premiers utilisateurs sur ${n} ; le détail complet est dans le CSV de la facture.` : 'Montants avant l’arrondi par ligne de la facture.'),
    identifiant: 'Identifiant',
    user: 'Utilisateur',
    calls: 'Appels',
    minutes: 'Minutes facturées',
    page: (i: number, n: number) => `Page ${i} / ${n}`,
    min: 'min',
  },
  en: {
    invoice: 'INVOICE',
    creditNote: 'CREDIT NOTE',
    corrects: 'Corrects invoice',
    specimen: 'SPECIMEN',
    specimenNote: 'SPECIMEN — a preview, not issued: this document has no number, is not recorded and nothing is payable.',
    creditNoteText: (number: string, period: string) =>
      `Credit note on invoice no. ${number} (${period}): the amounts above, VAT included, are deducted from what you are invoiced and set against your next payment, or refunded on request.`,
    number: 'No.',
    issued: 'Date of issue',
    period: 'Period',
    billTo: 'Bill to',
    reference: 'Reference',
    clientId: 'Client id',
    vatId: 'VAT no.',
    description: 'Description',
    quantity: 'Quantity',
    unitPrice: 'Unit price excl. VAT',
    amount: 'Amount excl. VAT',
    totalExcl: 'Total excl. VAT',
    vat: (rate: string) => `VAT ${rate}%`,
    total: 'Total incl. VAT',
    notBilled: 'NOT BILLED',
    notBilledNote: 'Internal system: this invoice is issued for information, every amount is zero-rated. Nothing is payable.',
    callsNote:
      'Calls: each line is one lot (quantity 1, price = amount); its label gives the number of calls and the time charged; each amount is the sum of the calls’ costs, rounded once to the cent. A line “<month> calls received after invoicing” bills calls of a month already invoiced that arrived or were re-rated since.',
    terms: 'Payable on receipt. No discount for early payment. Late payments bear interest at the ECB rate plus 10 points and a fixed €40 recovery fee.',
    annex: 'Annex — calls by user',
    annexNote: (n: number, shown: number) => (n > shown ? `The first ${shown} users of ${n}; the invoice's CSV lists them all.` : 'Amounts before the invoice’s rounding per line.'),
    identifiant: 'Identifiant',
    user: 'User',
    calls: 'Calls',
    minutes: 'Charged minutes',
    page: (i: number, n: number) => `Page ${i} of ${n}`,
    min: 'min',
  },
} as const;

const symbols: Record<string, string> = { EUR: '€', USD: '$', GBP: '£' };

/** "1234.5" → "1 234,50 €" (fr) / "€1,234.50" (en); `decimals` at least, more if the value has them. */
export function formatAmount(value: string, currency: string | null, locale: Locale, decimals = 2): string {
  const m = /^(-?)(\d+)(?:\.(\d+))?$/.exec(value.trim());
  if (!m) return value;
  let frac = (m[3] ?? '').replace(/0+$/, '');
  if (frac.length < decimals) frac = frac.padEnd(decimals, '0');
  const int = m[2]!.replace(/\B(?=(\d{3})+(?!\d))/g, locale === 'fr' ? '\u00a0' : ',');
  const number = `${int}${frac ? (locale === 'fr' ? ',' : '.') + frac : ''}`;
  if (currency === null) return `${m[1]}${number}`;
  const sym = symbols[currency];
  if (locale === 'fr') return `${m[1]}${number}\u00a0${sym ?? currency}`;
  return sym ? `${m[1]}${sym}${number}` : `${m[1]}${number} ${currency}`;
}

/** "0.2000" → "20", "0.055" → "5,5" / "5.5". */
function percent(rate: string, locale: Locale): string {
  const p = ratePercent(rate);
  return locale === 'fr' ? p.replace('.', ',') : p;
}

function minutes(seconds: number, locale: Locale): string {
  const whole = Math.floor(seconds / 60);
  const rest = seconds % 60;
  return `${formatAmount(String(whole), null, locale, 0)} min ${String(rest).padStart(2, '0')} s`;
}

export interface InvoicePdfInput {
  invoice: InvoiceRecord;
  tenant: { name: string; timezone: string; billingAddress?: string[] };
  issuer: Issuer;
  userCalls: { users: UserCalls[]; total: number };
  /** false writes the page content uncompressed (tests read its text). */
  compress?: boolean;
  /** The document's creation date (its metadata and file id); now by default. */
  createdAt?: Date;
  /** When given, the PDF is also made a Factur-X document for this billed tenant
   * (services/invoices/facturx.ts), in the same report worker: pdf-lib's load and
   * save of a long annex are seconds of CPU, never for the thread that answers the PBX. */
  facturX?: FacturXTenant;
}

interface Column {
  title: string;
  width: number;
  align: 'left' | 'right';
}

/** The invoice's PDF drawn on the calling thread: what the report worker runs (the server calls ./renderPool.ts renderInvoicePdf). */
export function drawInvoicePdf(input: InvoicePdfInput): Promise<Buffer> {
  const { invoice, tenant, issuer } = input;
  const locale: Locale = invoice.locale;
  const t = words[locale];
  const title = invoice.kind === 'credit_note' ? t.creditNote : t.invoice;
  const doc = new PDFDocument({
    size: 'A4',
    margin: 50,
    font: fonts.regular, // never pdfkit's default Helvetica, which is not embedded
    pdfVersion: '1.7', // PDF/A-3's base (ISO 32000-1); the Factur-X step writes object streams (1.5+)
    bufferPages: true,
    compress: input.compress ?? true,
    info: { Title: `${title} ${invoice.number}`, Author: issuer.name, Subject: `${tenant.name} ${invoice.period}`, CreationDate: input.createdAt ?? new Date() },
  });
  const finished = collect(doc);

  const left = 50;
  const width = doc.page.width - 100;
  const bottom = doc.page.height - 95; // room for the footer
  const { ink, muted, rule, brand } = colors;
  const money = (v: string) => formatAmount(v, invoice.currency, locale);
  const issuedAt = DateTime.fromISO(invoice.issuedAt).setZone(tenant.timezone).setLocale(locale === 'fr' ? 'fr' : 'en-GB');
  const [year, month] = invoice.period.split('-').map(Number) as [number, number];
  const periodText = DateTime.fromObject({ year, month, day: 1 }).setLocale(locale === 'fr' ? 'fr' : 'en-GB').toFormat('LLLL yyyy');

  // ---- header: issuer left, invoice title right ------------------------------
  doc.rect(0, 0, doc.page.width, 8).fill(brand);
  doc.fillColor(brand).font(fonts.bold).fontSize(pt(15)).text(issuer.name, left, 40, { width: width / 2 });
  doc.font(fonts.regular).fontSize(pt(9)).fillColor(muted);
  for (const line of issuer.address) doc.text(line, { width: width / 2 });
  doc.text(`${t.vatId} ${issuer.vatId}`, { width: width / 2 });
  doc.text(issuer.email, { width: width / 2 });
  const issuerBottom = doc.y;

  doc.fillColor(ink).font(fonts.bold).fontSize(pt(24)).text(title, left + width / 2, 38, { width: width / 2, align: 'right' });
  const meta = (label: string, value: string, y: number) => {
    doc.font(fonts.regular).fontSize(pt(9.5)).fillColor(muted).text(label, left + width / 2, y, { width: width / 2 - 110, align: 'right', lineBreak: false });
    doc.font(fonts.bold).fontSize(pt(9.5)).fillColor(ink).text(value, left + width - 105, y, { width: 105, align: 'right', lineBreak: false });
  };
  meta(t.number, invoice.number, 72);
  meta(t.issued, issuedAt.toFormat('d LLLL yyyy'), 86);
  meta(t.period, periodText, 100);
  doc.y = 114;
  if (invoice.corrects) {
    meta(t.corrects, invoice.corrects.number, 114);
    doc.y = 128;
  }

  // ---- client block ------------------------------------------------------------
  // the bill-to box: name, postal address (French B2B invoices require it), reference, client id
  const boxTop = Math.max(issuerBottom, doc.y) + 22;
  const boxX = left + width / 2;
  const address = tenant.billingAddress ?? [];
  const boxHeight = 74 + address.length * 11;
  doc.roundedRect(boxX, boxTop, width / 2, boxHeight, 4).lineWidth(0.8).strokeColor(rule).stroke();
  doc.fillColor(muted).fontSize(pt(8)).text(t.billTo.toUpperCase(), boxX + 12, boxTop + 10, { width: width / 2 - 24, characterSpacing: 0.5 });
  doc.fillColor(ink).font(fonts.bold).fontSize(pt(12)).text(tenant.name, { width: width / 2 - 24 });
  doc.font(fonts.regular).fontSize(pt(9)).fillColor(ink);
  for (const line of address) doc.text(line, { width: width / 2 - 24, lineBreak: false });
  doc.text(`${t.reference}${locale === 'fr' ? '\u00a0:' : ':'} ${invoice.reference}`, { width: width / 2 - 24 });
  doc.fillColor(muted).fontSize(pt(8)).text(`${t.clientId} ${invoice.tenantId}`, { width: width / 2 - 24 });

  const stamp = invoice.specimen ? t.specimen : invoice.status === 'not_billed' ? t.notBilled : undefined;
  if (stamp !== undefined) {
    const stampY = boxTop + 8;
    doc.save();
    doc.rotate(-8, { origin: [left + 110, stampY + 28] });
    doc.roundedRect(left + 10, stampY + 8, 200, 40, 4).lineWidth(2.5).strokeColor('#c62828').stroke();
    doc.fillColor('#c62828').font(fonts.bold).fontSize(pt(18)).text(stamp, left + 10, stampY + 19, { width: 200, align: 'center' });
    doc.restore();
  }
  doc.y = boxTop + boxHeight + 26;

  // ---- a table that breaks across pages ---------------------------------------------
  const table = (columns: Column[], rows: string[][], options: { zebra?: boolean; pad?: number } = {}) => {
    const pad = options.pad ?? 6;
    const header = () => {
      const y = doc.y;
      doc.rect(left, y, width, 22).fill(brand);
      let x = left;
      doc.font(fonts.bold).fontSize(pt(8)).fillColor('#ffffff');
      for (const c of columns) {
        doc.text(c.title, x + pad, y + 7, { width: c.width - 2 * pad, align: c.align, lineBreak: false });
        x += c.width;
      }
      doc.y = y + 22;
    };
    header();
    rows.forEach((cells, i) => {
      doc.font(fonts.regular).fontSize(pt(9));
      const height = Math.max(...cells.map((cell, j) => doc.heightOfString(cell, { width: columns[j]!.width - 2 * pad }))) + 2 * pad;
      if (doc.y + height > bottom) {
        doc.addPage();
        doc.y = 60;
        header();
        doc.font(fonts.regular).fontSize(pt(9));
      }
      const y = doc.y;
      if (options.zebra !== false && i % 2 === 1) doc.rect(left, y, width, height).fill('#f5f7fa');
      let x = left;
      doc.fillColor(ink);
      cells.forEach((cell, j) => {
        const c = columns[j]!;
        doc.text(cell, x + pad, y + pad, { width: c.width - 2 * pad, align: c.align });
        x += c.width;
      });
      doc.moveTo(left, y + height).lineTo(left + width, y + height).lineWidth(0.5).strokeColor(rule).stroke();
      doc.y = y + height;
    });
  };

  const lineColumns: Column[] = [
    { title: t.description, width: 245, align: 'left' },
    { title: t.quantity, width: 70, align: 'right' },
    { title: t.unitPrice, width: 90, align: 'right' },
    { title: t.amount, width: width - 405, align: 'right' },
  ];
  table(
    lineColumns,
    invoice.lines.map((l) => [
      l.label,
      // call lines are one lot since issue 17; earlier invoices' call lines counted minutes
      l.kind === 'calls' && l.quantity !== '1' ? `${formatAmount(l.quantity, null, locale, 2)} ${t.min}` : formatAmount(l.quantity, null, locale, 0),
      formatAmount(l.unitPrice, invoice.currency, locale),
      money(l.amount),
    ]),
  );

  // ---- totals ---------------------------------------------------------------------
  if (doc.y + 100 > bottom) {
    doc.addPage();
    doc.y = 60;
  }
  doc.y += 12;
  const totalsX = left + width - 230;
  const totalRow = (label: string, value: string, strong = false) => {
    const y = doc.y;
    if (strong) doc.rect(totalsX, y - 4, 230, 22).fill(brand);
    doc.font(strong ? fonts.bold : fonts.regular).fontSize(pt(strong ? 11 : 10)).fillColor(strong ? '#ffffff' : ink);
    doc.text(label, totalsX + 8, y + (strong ? 1 : 0), { width: 120, lineBreak: false });
    doc.text(value, totalsX + 110, y + (strong ? 1 : 0), { width: 112, align: 'right', lineBreak: false });
    doc.y = y + (strong ? 24 : 18);
  };
  totalRow(t.totalExcl, money(invoice.totalExclVat));
  totalRow(t.vat(percent(invoice.vatRate, locale)), money(invoice.vat));
  totalRow(t.total, money(invoice.total), true);

  // ---- notes ------------------------------------------------------------------------
  doc.y += 14;
  const note = (text: string, color = muted) => {
    doc.font(fonts.regular).fontSize(pt(8)).fillColor(color);
    if (doc.y + doc.heightOfString(text, { width }) > bottom) {
      doc.addPage();
      doc.y = 60;
    }
    doc.text(text, left, doc.y, { width });
    doc.moveDown(0.5);
  };
  if (invoice.specimen) note(t.specimenNote, '#c62828');
  if (invoice.corrects) note(t.creditNoteText(invoice.corrects.number, periodText), ink);
  if (invoice.status === 'not_billed') note(t.notBilledNote, '#c62828');
  if (invoice.lines.some((l) => l.kind === 'calls')) note(t.callsNote);
  // payment terms and late-payment penalties are for what is payable, not for a credit note
  if (invoice.status !== 'not_billed' && invoice.kind !== 'credit_note') note(t.terms);

  // ---- annex: calls by user ---------------------------------------------------------------
  if (input.userCalls.total > 0) {
    doc.addPage();
    doc.y = 60;
    doc.font(fonts.bold).fontSize(pt(13)).fillColor(brand).text(t.annex, left, doc.y, { width });
    doc.font(fonts.regular).fontSize(pt(8)).fillColor(muted).text(t.annexNote(input.userCalls.total, input.userCalls.users.length), { width });
    doc.moveDown(0.8);
    table(
      [
        { title: t.identifiant, width: 75, align: 'left' },
        { title: t.user, width: 190, align: 'left' },
        { title: t.calls, width: 55, align: 'right' },
        { title: t.minutes, width: 90, align: 'right' },
        { title: t.amount, width: width - 410, align: 'right' },
      ],
      input.userCalls.users.map((u) => [u.identifiant, u.fullName, formatAmount(String(u.calls), null, locale, 0), minutes(u.chargedSeconds, locale), formatAmount(u.amount, invoice.currency, locale, 4)]),
      { pad: 4 },
    );
  }

  // ---- footer on every page ------------------------------------------------------------------
  const range = doc.bufferedPageRange();
  for (let i = range.start; i < range.start + range.count; i++) {
    doc.switchToPage(i);
    const savedBottom = doc.page.margins.bottom;
    doc.page.margins.bottom = 0; // writing below the bottom margin must not open a new page
    const y = doc.page.height - 60;
    doc.moveTo(left, y - 8).lineTo(left + width, y - 8).lineWidth(0.5).strokeColor(rule).stroke();
    doc.font(fonts.regular).fontSize(pt(7.5)).fillColor(muted);
    // a long registration wraps onto a second line: the document's number goes below it
    doc.text(`${issuer.name} · ${issuer.registration} · ${t.vatId} ${issuer.vatId}`, left, y, { width: width - 90, height: 20 });
    doc.text(`${title} ${invoice.number}`, left, y + 21, { width: width - 90, lineBreak: false });
    doc.font(fonts.bold).fillColor(ink).text(t.page(i - range.start + 1, range.count), left + width - 90, y, { width: 90, align: 'right', lineBreak: false });
    doc.page.margins.bottom = savedBottom;
  }
  doc.end();
  return finished;
}
