/** Words of an invoice in the tenant's locale (SPEC §2: fr or en). Labels are stored on the lines at issue. */
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
