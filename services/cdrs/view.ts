/** Reading CDRs: the §2 JSON shape of a rated CDR, one by call id, and the filtered list. */
import type postgres from 'postgres';
import { formatNumber, parseInstant, type CountryCode } from '../../engine/index.js';
import { ValidationError } from '../shared/errors.js';
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
export interface TenantDisplay {
  country: string;
  timezone: string;
  numberDisplay: 'international' | 'national';
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
  };
}

/** numeric(20,4) text → exactly 4 decimals ("0.6417"). */
function money4(s: string): string {
  const [int = '0', frac = ''] = s.split('.');
  return `${int}.${frac.padEnd(4, '0').slice(0, 4)}`;
}

export const CDR_COLUMNS = `id, call_id AS "callId", user_id AS "userId", identifiant, caller, callee, direction,
  started_at AS "startedAt", answered_at AS "answeredAt", duration_seconds AS "durationSeconds", disposition, site, line,
  rate_id AS "rateId", destination, class, billable_seconds AS "billableSeconds", forfait_seconds AS "forfaitSeconds",
  charged_seconds AS "chargedSeconds", cost, original_cost AS "originalCost", reservation_id AS "reservationId",
  rated_at AS "ratedAt", rerated_at AS "reratedAt"`;

/** One CDR of the tenant by its call id, or undefined. */
export async function getCdrByCallId(sql: postgres.Sql, tenantId: string, callId: string): Promise<CdrRow | undefined> {
  const rows = await sql<CdrRow[]>`SELECT ${sql.unsafe(CDR_COLUMNS)} FROM cdrs WHERE tenant_id = ${tenantId} AND call_id = ${callId}`;
  return rows[0];
}

export interface CdrFilters {
  from?: string;
  to?: string;
  identifiant?: string;
  site?: string;
  line?: string;
  class?: string;
  direction?: Direction;
  limit: number;
  cursor?: string;
}

/** A period bound: a date (midnight) or a date-time, in the tenant's zone when it has no offset. */
export function periodBound(value: string, field: string, zone: string): Date {
  const ms = parseInstant(value, zone);
  if (ms === undefined) throw new ValidationError(`invalid ${field}`, [{ field, value, message: 'an ISO 8601 date or date-time' }]);
  return new Date(ms);
}

function decodeCursor(cursor: string): { at: Date; id: string } {
  const [at, id] = Buffer.from(cursor, 'base64url').toString('utf8').split('|');
  const ms = at === undefined ? NaN : Date.parse(at);
  if (Number.isNaN(ms) || id === undefined || !/^\d{1,19}$/.test(id)) {
    throw new ValidationError('invalid cursor', [{ field: 'cursor', value: cursor, message: 'not a cursor of this list' }]);
  }
  return { at: new Date(ms), id };
}

/** SPEC §7 GET /v1/cdrs: newest first, by pages. */
export async function listCdrs(sql: postgres.Sql, tenant: TenantDisplay & { id: string }, f: CdrFilters): Promise<{ items: CdrView[]; nextCursor: string | null }> {
  const from = f.from === undefined ? undefined : periodBound(f.from, 'from', tenant.timezone);
  const to = f.to === undefined ? undefined : periodBound(f.to, 'to', tenant.timezone);
  const cursor = f.cursor === undefined ? undefined : decodeCursor(f.cursor);
  const rows = await sql<CdrRow[]>`
    SELECT ${sql.unsafe(CDR_COLUMNS)} FROM cdrs
     WHERE tenant_id = ${tenant.id}
       ${from ? sql`AND started_at >= ${from}` : sql``}
       ${to ? sql`AND started_at < ${to}` : sql``}
       ${f.identifiant !== undefined ? sql`AND identifiant = ${f.identifiant}` : sql``}
       ${f.site !== undefined ? sql`AND site = ${f.site}` : sql``}
       ${f.line !== undefined ? sql`AND line = ${f.line}` : sql``}
       ${f.class !== undefined ? sql`AND class = ${f.class}` : sql``}
       ${f.direction !== undefined ? sql`AND direction = ${f.direction}` : sql``}
       ${cursor ? sql`AND (started_at, id) < (${cursor.at}, ${cursor.id}::bigint)` : sql``}
     ORDER BY started_at DESC, id DESC
     LIMIT ${f.limit + 1}`;
  const page = rows.slice(0, f.limit);
  const last = page[page.length - 1];
  const nextCursor = rows.length > f.limit && last ? Buffer.from(`${last.startedAt.toISOString()}|${last.id}`).toString('base64url') : null;
  return { items: page.map((r) => cdrView(r, tenant)), nextCursor };
}
