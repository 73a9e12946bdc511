/**
 * Who issues the invoices: the operator running Forfait. Read from the
 * environment (documented in docs/invoices.md), never written in the PDF code.
 */
export interface Issuer {
  name: string;
  /** Postal address, one entry per printed line. */
  address: string[];
  /** Intra-community VAT number. */
  vatId: string;
  /** Company registration (SIREN/SIRET, RCS…), printed in the footer. */
  registration: string;
  email: string;
  /** The issuer's zone: the year of an invoice number is the year of issue there. */
  timezone: string;
}

export const defaultIssuer: Issuer = {
  name: 'Forfait Télécom SAS',
  address: ['12 rue de la Paix', '75002 Paris', 'France'],
  vatId: 'FR00123456789',
  registration: 'SAS au capital de 10 000 € · RCS Paris 123 456 789',
  email: 'facturation@forfait.example',
  timezone: 'Europe/Paris',
};

export function issuerFromEnv(env: NodeJS.ProcessEnv = process.env): Issuer {
  const pick = (v: string | undefined, d: string) => (v !== undefined && v.trim() !== '' ? v.trim() : d);
  return {
    name: pick(env.FORFAIT_ISSUER_NAME, defaultIssuer.name),
    address: env.FORFAIT_ISSUER_ADDRESS?.trim()
      ? env.FORFAIT_ISSUER_ADDRESS.split('|').map((l) => l.trim()).filter(Boolean)
      : defaultIssuer.address,
    vatId: pick(env.FORFAIT_ISSUER_VAT_ID, defaultIssuer.vatId),
    registration: pick(env.FORFAIT_ISSUER_REGISTRATION, defaultIssuer.registration),
    email: pick(env.FORFAIT_ISSUER_EMAIL, defaultIssuer.email),
    timezone: pick(env.FORFAIT_ISSUER_TIMEZONE, defaultIssuer.timezone),
  };
}

/** Hours after a tenant's month ends before the scheduled job invoices it (late CDRs). */
export function invoiceGraceHoursFromEnv(env: NodeJS.ProcessEnv = process.env): number {
  const n = Number(env.FORFAIT_INVOICE_GRACE_HOURS ?? '2');
  return Number.isFinite(n) && n >= 0 ? n : 2;
}
