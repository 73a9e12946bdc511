import { expect } from 'vitest';
import type { App } from '../../api/app.js';
import { call } from '../support/app.js';
import { cdr, cdrUser, TARIFF_CSV } from '../cdrs/helpers.js';

/**
 * The draft of the tests: mobile cheaper without a fee and forfait-eligible
 * (its calls now take what their month's forfait has left), fixed dearer, the
 * United Kingdom gone (those calls are skipped: left at their cost).
 */
export const DRAFT = TARIFF_CSV.replace('33,France fixe,fixed,0.06,0,60,60,true,,', '33,France fixe,fixed,0.10,0,60,60,true,,')
  .replace('336,France mobile,mobile,0.20,0.40,60,1,false,0.10,', '336,France mobile,mobile,0.30,0,60,1,true,0.30,')
  .replace('44,Royaume-Uni,international,0.50,0,1,1,false,,\n', '');

/** Calls of October and November for three users: forfait used and charged, billing off, unanswered, abroad. */
export async function seedCalls(app: App, t: { id: string; adminKey: string }, batch = 'a') {
  const u1 = await cdrUser(t.id, { balance: '50', forfaitMinutes: 3 });
  const u2 = await cdrUser(t.id, { balance: '50' });
  const u3 = await cdrUser(t.id, { balance: '50', forfaitMinutes: 2, billingEnabled: false });
  const oct = (d: number, h: number) => `2026-10-${String(d).padStart(2, '0')}T${String(h).padStart(2, '0')}:00:00+02:00`;
  const nov = (d: number, h: number) => `2026-11-${String(d).padStart(2, '0')}T${String(h).padStart(2, '0')}:00:00+01:00`;
  const res = await call(app, 'POST', '/v1/cdrs', {
    key: t.adminKey,
    json: [
      cdr(`${t.id}-${batch}-1`, u1.identifiant, '0142000000', 100, oct(2, 9)),
      cdr(`${t.id}-${batch}-2`, u1.identifiant, '0612345678', 85, oct(3, 9)),
      cdr(`${t.id}-${batch}-3`, u1.identifiant, '0142000001', 90, oct(4, 9)),
      cdr(`${t.id}-${batch}-4`, u2.identifiant, '0612345678', 20, oct(5, 9)),
      cdr(`${t.id}-${batch}-5`, u3.identifiant, '0142000000', 200, oct(6, 9)),
      cdr(`${t.id}-${batch}-6`, u1.identifiant, '0142000000', 30, nov(2, 9)),
      cdr(`${t.id}-${batch}-7`, u1.identifiant, '0612345678', 85, nov(3, 9)),
      cdr(`${t.id}-${batch}-8`, u1.identifiant, '0142000001', 240, nov(4, 9)),
      cdr(`${t.id}-${batch}-9`, u2.identifiant, '+442079460958', 10, nov(5, 9)),
      cdr(`${t.id}-${batch}-10`, u2.identifiant, '0712345678', 45, nov(5, 10)),
      cdr(`${t.id}-${batch}-11`, u2.identifiant, '0612345678', 0, nov(6, 9)),
      cdr(`${t.id}-${batch}-12`, u3.identifiant, '0612345678', 120, nov(7, 9)),
      cdr(`${t.id}-${batch}-13`, u1.identifiant, '0612345678', 61, nov(8, 9)),
    ],
  });
  expect(res.status, res.text).toBe(200);
  expect(res.json.accepted).toBe(13);
  return { u1, u2, u3 };
}

