import type { Issuer } from '../../services/invoices/issuer.js';

/** An issuer whose settings are set (not the placeholders): tests issue real invoices with it. */
export const testIssuer: Issuer = {
  name: 'Téléphonie Exemple SAS',
  address: ['8 avenue des Essais', '69002 Lyon', 'France'],
  vatId: 'FR44732829320',
  registration: 'SAS au capital de 50 000 € · RCS Lyon 732 829 320 · SIRET 732 829 320 00074',
  email: 'factures@telephonie-exemple.test',
  timezone: 'Europe/Paris',
};
