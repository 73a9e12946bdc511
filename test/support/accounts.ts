import { randomInt } from 'node:crypto';
import { appendLedgerEntry } from '../../services/ledger/ledger.js';
import { call, testDb } from './app.js';
import type { App } from '../../api/app.js';
import { newTenant, resellerKey, type TenantFixture } from './factory.js';

let counter = randomInt(1_000_000);

/** A distinct 7-digit identifiant (or the one given) and 14-digit matricule. */
export function nextIds(given?: string): { identifiant: string; matricule: string } {
  counter = (counter + 1) % 10_000_000;
  const identifiant = given ?? String(counter).padStart(7, '0');
  return { identifiant, matricule: `9${String(randomInt(1e9)).padStart(9, '0')}${identifiant.slice(3)}` };
}

export interface UserSpec {
  /** 7 digits; a fresh one when absent */
  identifiant?: string;
  balance?: string;
  forfaitMinutes?: number;
  usedSeconds?: number;
  billingEnabled?: boolean;
  accountStatus?: 'enabled' | 'disabled';
  /** E.164 numbers by slot (1–10). */
  numbers?: Record<number, string>;
}

/**
 * A user written straight to the database, its money given through the ledger.
 * With an app, its account book re-reads the tenant before this returns.
 */
export async function newUser(tenantId: string, spec: UserSpec = {}, app?: App): Promise<{ id: string; identifiant: string }> {
  const { db } = testDb();
  const ids = nextIds(spec.identifiant);
  const slots: (string | null)[] = Array.from({ length: 10 }, (_, i) => spec.numbers?.[i + 1] ?? null);
  const row = await db
    .insertInto('users')
    .values({
      tenantId,
      fullName: `User ${ids.identifiant}`,
      matricule: ids.matricule,
      identifiant: ids.identifiant,
      forfaitMinutes: spec.forfaitMinutes ?? 0,
      usedSeconds: spec.usedSeconds ?? 0,
      billingEnabled: spec.billingEnabled ?? true,
      accountStatus: spec.accountStatus ?? 'enabled',
      authorizedNumbers: slots,
      balance: '0',
    })
    .returning('id')
    .executeTakeFirstOrThrow();
  if (spec.balance && spec.balance !== '0') {
    await db.transaction().execute((trx) =>
      appendLedgerEntry(trx, { tenantId, userId: row.id, kind: 'topup', amount: spec.balance!, idempotencyKey: `seed-${row.id}` }),
    );
  }
  if (app) await settle(app);
  return { id: row.id, identifiant: ids.identifiant };
}

/** Lets the app's account book catch up with changes made behind its back. */
export async function settle(app: App): Promise<void> {
  await app.authorization.book.barrier();
}

export const tariffHeader =
  'prefix,destination,class,price_per_minute,connection_fee,first_increment,next_increment,forfait_eligible,next_price_per_minute,valid_from';

/** Uploads a tariff (CSV lines after the header) and returns its id. */
export async function newTariff(app: App, resellerKey: string, lines: string[]): Promise<string> {
  const id = `tariff-${randomInt(1e12)}`;
  const res = await call(app, 'PUT', `/v1/tariffs/${id}`, {
    key: resellerKey,
    body: [tariffHeader, ...lines].join('\n'),
    headers: { 'content-type': 'text/csv' },
  });
  if (res.status !== 200) throw new Error(`tariff upload failed: ${res.status} ${res.text}`);
  return id;
}

export async function pbxKey(app: App, t: TenantFixture): Promise<string> {
  const res = await call(app, 'POST', '/v1/keys', { key: t.adminKey, json: { name: 'pbx', principal: 'pbx' } });
  if (res.status !== 201) throw new Error(`pbx key: ${res.status} ${res.text}`);
  return res.json.key;
}

/** A tenant on a tariff of its own (CSV lines after the header), and a PBX key of it. */
export async function tenantWithPbx(app: App, tariffLines: string[]): Promise<{ t: TenantFixture; pbx: string }> {
  const r = await resellerKey();
  const tariffId = await newTariff(app, r.key, tariffLines);
  const t = await newTenant(app, { tariffId });
  return { t, pbx: await pbxKey(app, t) };
}
