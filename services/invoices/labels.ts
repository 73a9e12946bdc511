/** Words of an invoice in the tenant's locale (SPEC §2: fr or en). Labels are stored on the lines at issue. */
import { DateTime } from 'luxon';
export type Locale = 'fr' | 'en';
export type CallClass = 'fixed' | 'mobile' | 'special' | 'international' | 'free';

/** Invoice line numbers: licences first, then one line per destination class in this order. */
export const CLASS_LINES: readonly { cls: CallClass; lineNo: number }[] = [
  { cls: 'fixed', lineNo: 2 },
  { cls: 'mobile', lineNo: 3 },
  { cls: 'special', lineNo: 4 },
  { cls: 'international', lineNo: 5 },
  { cls: 'free', lineNo: 6 },
];
export const LICENCE_LINE = 1;

const classNames: Record<Locale, Record<CallClass, string>> = {
  fr: { fixed: 'fixes', mobile: 'mobiles', special: 'numéros spéciaux', international: 'l’international', free: 'numéros gratuits' },
  en: { fixed: 'landlines', mobile: 'mobiles', special: 'special numbers', international: 'international', free: 'free numbers' },
};

function plural(n: number, one: string, many: string): string {
  return `${n} ${n === 1 ? one : many}`;
}

export function licenceLabel(locale: Locale, productName: string): string {
  return locale === 'fr'
    ? `Licences ${productName} — utilisateurs activés au cours du mois`
    : `${productName} licences — users enabled during the month`;
}

export function callsLabel(locale: Locale, cls: CallClass, calls: number, chargedSeconds: number): string {
  const m = Math.floor(chargedSeconds / 60);
  const s = chargedSeconds % 60;
  const time = `${m} min ${String(s).padStart(2, '0')} s`;
  return locale === 'fr'
    ? `Appels vers ${classNames.fr[cls]} — ${plural(calls, 'appel', 'appels')}, ${time} facturées`
    : `Calls to ${classNames.en[cls]} — ${plural(calls, 'call', 'calls')}, ${time} charged`;
}

/** "octobre 2026" / "October 2026": the month of a period in the locale. */
export function periodName(locale: Locale, period: string): string {
  const [y, m] = period.split('-').map(Number) as [number, number];
  return DateTime.fromObject({ year: y, month: m, day: 1 }).setLocale(locale === 'fr' ? 'fr' : 'en-GB').toFormat('LLLL yyyy');
}

/** "d'octobre 2026", "de novembre 2026": French elision before a vowel. */
function ofPeriodFr(period: string): string {
  const name = periodName('fr', period);
  return /^[aeiouéèêh]/i.test(name) ? `d’${name}` : `de ${name}`;
}

/** Why a month's calls are billed again: CDRs received late, re-rated, or both. */
export interface CorrectionCounts {
  late: number;
  rerated: number;
}

function why(locale: Locale, c: CorrectionCounts): string {
  if (locale === 'fr') return c.rerated === 0 ? 'reçus après facturation' : c.late === 0 ? 'recalculés après facturation' : 'reçus ou recalculés après facturation';
  return c.rerated === 0 ? 'received after invoicing' : c.late === 0 ? 're-rated after invoicing' : 'received or re-rated after invoicing';
}

function countText(locale: Locale, c: CorrectionCounts): string {
  const n = c.late + c.rerated;
  return locale === 'fr' ? plural(n, 'appel', 'appels') : plural(n, 'call', 'calls');
}

/** A line of the next invoice: "Appels d’octobre 2026 reçus après facturation — vers mobiles, 2 appels". */
export function lateCallsLabel(locale: Locale, period: string, cls: CallClass, c: CorrectionCounts): string {
  return locale === 'fr'
    ? `Appels ${ofPeriodFr(period)} ${why('fr', c)} — vers ${classNames.fr[cls]}, ${countText('fr', c)}`
    : `${periodName('en', period)} calls ${why('en', c)} — to ${classNames.en[cls]}, ${countText('en', c)}`;
}

/** A credit note's line: "Avoir sur les appels d’octobre 2026 vers mobiles — recalculés après facturation, 3 appels". */
export function creditLabel(locale: Locale, period: string, cls: CallClass, c: CorrectionCounts): string {
  return locale === 'fr'
    ? `Avoir sur les appels ${ofPeriodFr(period)} vers ${classNames.fr[cls]} — ${why('fr', c)}, ${countText('fr', c)}`
    : `Credit on ${periodName('en', period)} calls to ${classNames.en[cls]} — ${why('en', c)}, ${countText('en', c)}`;
}

/** The class of a call line: stored on the line since migration 0020, else read from its line number. */
export function classOfLine(lineNo: number, stored: string | null): CallClass | undefined {
  if (stored !== null) return CLASS_LINES.find((c) => c.cls === stored)?.cls;
  return CLASS_LINES.find((c) => c.lineNo === lineNo)?.cls;
}
