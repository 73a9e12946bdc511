/**
 * Who issues the invoices: the operator running Forfait. Set by the
 * FORFAIT_ISSUER_* variables (read in cli/config.ts, documented in
 * docs/invoices.md) and handed to the invoice code, never written in it.
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


/** The settings an invoice's legal mentions come from, by the variable that sets each. */
const issuerVariables = {
  name: 'FORFAIT_ISSUER_NAME',
  address: 'FORFAIT_ISSUER_ADDRESS',
  vatId: 'FORFAIT_ISSUER_VAT_ID',
  registration: 'FORFAIT_ISSUER_REGISTRATION',
  email: 'FORFAIT_ISSUER_EMAIL',
} as const satisfies Partial<Record<keyof Issuer, string>>;

/** The variables whose value is still the placeholder default: a real invoice cannot carry it (issue 17). */
export function issuerPlaceholders(issuer: Issuer): string[] {
  return (Object.keys(issuerVariables) as (keyof typeof issuerVariables)[])
    .filter((k) => JSON.stringify(issuer[k]) === JSON.stringify(defaultIssuer[k]))
    .map((k) => issuerVariables[k]);
}
