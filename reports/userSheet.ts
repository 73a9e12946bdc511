// The user's one-page account sheet, what the portal's "Imprimer" gives:
// identity, account settings, forfait and balance, the 10 authorized numbers.
import PDFDocument from 'pdfkit';
import type { UserView } from '../services/users/fields.js';
import type { DirectoryTenant } from '../services/users/repo.js';
import { collect, colors, fonts, pt } from './pdf.js';

const labels = {
  fr: {
    title: 'Fiche utilisateur',
    identity: 'Identité',
    fullName: 'Nom complet',
    matricule: 'Matricule',
    identifiant: 'Identifiant',
    generalState: 'État général',
    account: 'Compte',
    accountStatus: 'Statut du compte',
    enabled: 'activé',
    disabled: 'désactivé',
    billing: 'Calcul billing',
    yes: 'activé',
    no: 'désactivé',
    forfait: 'Forfait',
    forfaitMinutes: 'Minutes par période',
    period: 'Période en cours',
    used: 'Consommé sur la période',
    total: 'Durée totale des appels',
    balance: 'Solde',
    numbers: 'Numéros autorisés',
    empty: '—',
    printed: 'Imprimé le',
    created: 'Créé le',
    updated: 'Modifié le',
    tenant: 'Client',
  },
  en: {
    title: 'User sheet',
    identity: 'Identity',
    fullName: 'Full name',
    matricule: 'Matricule',
    identifiant: 'Identifiant',
    generalState: 'General state',
    account: 'Account',
    accountStatus: 'Account status',
    enabled: 'enabled',
    disabled: 'disabled',
    billing: 'Billing',
    yes: 'enabled',
    no: 'disabled',
    forfait: 'Forfait',
    forfaitMinutes: 'Minutes per period',
    period: 'Current period',
    used: 'Used this period',
    total: 'Total call time',
    balance: 'Balance',
    numbers: 'Authorized numbers',
    empty: '—',
    printed: 'Printed on',
    created: 'Created on',
    updated: 'Updated on',
    tenant: 'Client',
  },
} as const;

function duration(seconds: number): string {
  const h = Math.floor(seconds / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = seconds % 60;
  return `${h} h ${String(m).padStart(2, '0')} min ${String(s).padStart(2, '0')} s`;
}

function dateIn(iso: string, tenant: Pick<DirectoryTenant, 'timezone' | 'locale'>): string {
  return new Intl.DateTimeFormat(tenant.locale === 'fr' ? 'fr-FR' : 'en-GB', {
    timeZone: tenant.timezone,
    dateStyle: 'long',
    timeStyle: 'short',
  }).format(new Date(iso));
}

/** A balance string ("-12.5000") shown with 2 decimals at least and its currency, never via a float. */
function money(balance: string, currency: string, locale: 'fr' | 'en'): string {
  const m = /^(-?)(\d+)(?:\.(\d+))?$/.exec(balance);
  if (!m) return `${balance} ${currency}`;
  const frac = (m[3] ?? '').replace(/0+$/, '').padEnd(2, '0');
  const int = m[2]!.replace(/\B(?=(\d{3})+(?!\d))/g, locale === 'fr' ? '\u00a0' : ',');
  return `${m[1]}${int}${locale === 'fr' ? ',' : '.'}${frac} ${currency}`;
}

/** The user's sheet drawn on the calling thread: what the report worker runs (the server calls ./renderPool.ts renderUserSheet); `now` is printed and is its creation date. */
export function drawUserSheet(user: UserView, tenant: DirectoryTenant, now: Date = new Date()): Promise<Buffer> {
  const t = labels[tenant.locale];
  const doc = new PDFDocument({ size: 'A4', margin: 50, font: fonts.regular, info: { Title: `${t.title} — ${user.fullName}`, Author: 'Forfait', CreationDate: now } });
  const finished = collect(doc);

  const left = 50;
  const width = doc.page.width - 100;
  const { ink, muted, rule, brand } = colors;

  // header band
  doc.rect(0, 0, doc.page.width, 90).fill(brand);
  doc.fillColor('#ffffff').font(fonts.bold).fontSize(pt(20)).text(t.title, left, 30, { width });
  doc.font(fonts.regular).fontSize(pt(10)).text(`${t.tenant} : ${tenant.name}`, left, 58, { width: width / 2 });
  doc.text(`${t.printed} ${dateIn(now.toISOString(), tenant)}`, left + width / 2, 58, { width: width / 2, align: 'right' });

  doc.fillColor(ink).font(fonts.bold).fontSize(pt(18)).text(user.fullName, left, 115, { width });
  doc.moveDown(0.2);

  const section = (title: string) => {
    doc.moveDown(0.8);
    const y = doc.y;
    doc.font(fonts.bold).fontSize(pt(12)).fillColor(brand).text(title.toUpperCase(), left, y, { width, characterSpacing: 0.5 });
    doc.moveTo(left, doc.y + 2).lineTo(left + width, doc.y + 2).lineWidth(0.7).strokeColor(rule).stroke();
    doc.moveDown(0.5);
  };
  const row = (label: string, value: string) => {
    const y = doc.y;
    doc.font(fonts.regular).fontSize(pt(10)).fillColor(muted).text(label, left, y, { width: 190 });
    doc.font(fonts.bold).fontSize(pt(10)).fillColor(ink).text(value, left + 200, y, { width: width - 200 });
    doc.moveDown(0.35);
  };

  section(t.identity);
  row(t.matricule, user.matricule);
  row(t.identifiant, user.identifiant);
  row(t.generalState, user.generalState ?? t.empty);
  row(t.created, dateIn(user.createdAt, tenant));
  row(t.updated, dateIn(user.updatedAt, tenant));

  section(t.account);
  row(t.accountStatus, user.accountStatus === 'enabled' ? t.enabled : t.disabled);
  row(t.billing, user.billingEnabled ? t.yes : t.no);
  row(t.balance, money(user.balance, tenant.currency, tenant.locale));

  section(t.forfait);
  row(t.forfaitMinutes, `${user.forfaitMinutes} min`);
  row(t.period, user.forfaitPeriod ?? t.empty);
  row(t.used, duration(user.usedSeconds));
  row(t.total, duration(user.totalCallSeconds));

  section(t.numbers);
  const top = doc.y;
  const colWidth = width / 2;
  user.authorizedNumbers.forEach((n, i) => {
    const col = i < 5 ? 0 : 1;
    const y = top + (i % 5) * 22;
    const x = left + col * colWidth;
    doc.roundedRect(x, y - 3, 26, 16, 3).fill(n ? brand : '#e4e7eb');
    doc.font(fonts.bold).fontSize(pt(9)).fillColor(n ? '#ffffff' : muted).text(String(i + 1), x, y + 1, { width: 26, align: 'center' });
    doc.font(n ? fonts.regular : fonts.italic).fontSize(pt(10)).fillColor(n ? ink : muted).text(n ?? t.empty, x + 36, y, { width: colWidth - 40 });
  });
  doc.y = top + 5 * 22 + 10;

  doc.font(fonts.regular).fontSize(pt(8)).fillColor(muted).text(`Forfait · ${tenant.name} · ${user.id}`, left, doc.page.height - 70, { width, align: 'center', lineBreak: false });
  doc.end();
  return finished;
}
