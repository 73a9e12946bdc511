/** Reading CDRs: the §2 JSON shape of a rated CDR, one by call id, and the filtered list. */
import { Kysely, sql } from 'kysely';
import type postgres from 'postgres';
import { kyselyOn, type Db } from '../../db/connection.js';
import type { Tenant } from '../../db/schema.js';
import { cdrByCallId, selectCdrs } from '../../db/repositories/cdrs.js';
import { INSTANT_RANGE_MESSAGE, formatNumber, isInstantInRange, parseInstant, type CountryCode } from '../../engine/index.js';
import { NotFoundError, ValidationError } from '../shared/errors.js';
import { tenantCountry } from '../../engine/index.js';
import { formatInZone } from './time.js';
import type { CdrRow, Direction } from './types.js';

/** A CDR row with its times as ISO 8601 strings in the tenant's zone (numbers in its display). */
export type CdrView = Omit<CdrRow, 'startedAt' | 'answeredAt' | 'ratedAt' | 'reratedAt'> & {
  startedAt: string;
  answeredAt: string | null;
  ratedAt: string;
  reratedAt: string | null;
};

/** What a view needs of the tenant. */
export type TenantDisplay = Pick<Tenant, 'country' | 'timezone' | 'numberDisplay'>;

/** The tenant as CDR lists and exports show it (its reference is printed on exports); 404 when absent. */
export async function loadTenantDisplay(db: Db, tenantId: string): Promise<Pick<Tenant, 'id' | 'reference' | 'country' | 'timezone' | 'numberDisplay'>> {
  const tenant = await db.selectFrom('tenants').select(['id', 'reference', 'country', 'timezone', 'numberDisplay']).where('id', '=', tenantId).executeTakeFirst();
  if (!tenant) throw new NotFoundError('tenant');
  return tenant;
}

/** SPEC §2/§7: camelCase, money with 4 decimals, times with the tenant's offset, numbers in its display. */
export function cdrView(row: CdrRow, tenant: TenantDisplay): CdrView {
  const country: CountryCode = tenantCountry(tenant.country);
  const show = (n: string | null) => (n === null ? null : formatNumber(n, tenant.numberDisplay, country));
  const at = (d: Date | null) => (d === null ? null : formatInZone(d, tenant.timezone));
  return {
    id: String(row.id),
    callId: row.callId,
    userId: row.userId,
    identifiant: row.identifiant,
    caller: show(row.caller),
    callee: show(row.callee)!,
    direction: row.direction,
    startedAt: at(row.startedAt)!,
    answeredAt: at(row.answeredAt),
    durationSeconds: row.durationSeconds,
    disposition: row.disposition,
    site: row.site,
    line: row.line,
    rateId: row.rateId === null ? null : String(row.rateId),
    destination: row.destination,
    class: row.class,
    billableSeconds: row.billableSeconds,
    forfaitSeconds: row.forfaitSeconds,
    chargedSeconds: row.chargedSeconds,
    cost: money4(row.cost),
    originalCost: row.originalCost === null ? null : money4(row.originalCost),
    reservationId: row.reservationId,
    ratedAt: at(row.ratedAt)!,
    reratedAt: at(row.reratedAt),
    numberCheck: row.numberCheck,
  };
}

/** numeric(20,4) text → exactly 4 decimals ("0.6417"). */
function money4(s: string): string {
  const [int = '0', frac = ''] = s.split('.');
  return `${int}.${frac.padEnd(4, '0').slice(0, 4)}`;
}

/**
 * One CDR of the tenant by its call id, or undefined (db/repositories/cdrs.ts
 * cdrByCallId). Also takes the postgres.js pool, which is what
 * services/authorization/endCall.ts hands it: the pool's own Kysely then runs it.
 */
export async function getCdrByCallId(db: Db | postgres.Sql, tenantId: string, callId: string): Promise<CdrRow | undefined> {
  return cdrByCallId(db instanceof Kysely ? db : kyselyOn(db), tenantId, callId);
}

export interface CdrFilters {
  from?: string;
  to?: string;
  identifiant?: string;
  site?: string;
  line?: string;
  class?: string;
  direction?: Direction;
  /** One user's calls. */
  userId?: string;
  limit: number;
  cursor?: string;
}

/** A period bound: a date (midnight) or a date-time, in the tenant's zone when it has no offset. */
export function periodBound(value: string, field: string, zone: string): Date {
  const ms = parseInstant(value, zone);
  if (ms === undefined) throw new ValidationError(`invalid ${field}`, [{ field, value, message: `an ISO 8601 date or date-time, ${INSTANT_RANGE_MESSAGE}` }]);
  return new Date(ms);
}

/**
 * The one check of a date range, for every route that takes one (CDR list and
 * export, rerate, indicators): a reversed or empty range is the same 400.
 */
export function checkRange(from: Date | undefined, to: Date | undefined, given: { from?: string; to?: string }): void {
  if (from === undefined || to === undefined || from < to) return;
  const fromText = given.from ?? from.toISOString();
  const toText = given.to ?? to.toISOString();
  throw new ValidationError('empty period', [
    { field: 'to', value: toText, message: `\`to\` must be after \`from\` (from is inclusive, to exclusive): got from \`${fromText}\` and to \`${toText}\`` },
  ]);
}

/** A range's two bounds read in the tenant's zone, and checked (checkRange). */
export function periodRange(given: { from?: string; to?: string }, zone: string): { from: Date | undefined; to: Date | undefined } {
  const from = given.from === undefined ? undefined : periodBound(given.from, 'from', zone);
  const to = given.to === undefined ? undefined : periodBound(given.to, 'to', zone);
  checkRange(from, to, given);
  return { from, to };
}

function decodeCursor(cursor: string): { at: Date; id: string } {
  const [at, id] = Buffer.from(cursor, 'base64url').toString('utf8').split('|');
  const ms = at === undefined ? NaN : Date.parse(at);
  if (Number.isNaN(ms) || !isInstantInRange(ms) || id === undefined || !/^\d{1,19}$/.test(id)) {
    throw new ValidationError('invalid cursor', [{ field: 'cursor', value: cursor, message: 'not a cursor of this list' }]);
  }
  return { at: new Date(ms), id };
}

/** SPEC §7 GET /v1/cdrs: newest first, by pages. */
export async function listCdrs(db: Db, tenantId: string, f: CdrFilters): Promise<{ items: CdrView[]; nextCursor: string | null }> {
  const tenant = await loadTenantDisplay(db, tenantId);
  const { from, to } = periodRange(f, tenant.timezone);
  const cursor = f.cursor === undefined ? undefined : decodeCursor(f.cursor);
  let q = selectCdrs(db, tenant.id);
  if (from) q = q.where('startedAt', '>=', from);
  if (to) q = q.where('startedAt', '<', to);
  if (f.identifiant !== undefined) q = q.where('identifiant', '=', f.identifiant);
  if (f.site !== undefined) q = q.where('site', '=', f.site);
  if (f.line !== undefined) q = q.where('line', '=', f.line);
  if (f.class !== undefined) q = q.where('class', '=', f.class);
  if (f.direction !== undefined) q = q.where('direction', '=', f.direction);
  if (f.userId !== undefined) q = q.where('userId', '=', f.userId);
  if (cursor) q = q.where((eb) => eb(eb.refTuple('startedAt', 'id'), '<', eb.tuple(cursor.at, sql<string>`${cursor.id}::bigint`)));
  const rows = await q.orderBy('startedAt', 'desc').orderBy('id', 'desc').limit(f.limit + 1).execute();
  const page = rows.slice(0, f.limit);
  const last = page[page.length - 1];
  const nextCursor = rows.length > f.limit && last ? Buffer.from(`${last.startedAt.toISOString()}|${last.id}`).toString('base64url') : null;
  return { items: page.map((r) => cdrView(r, tenant)), nextCursor };
}
